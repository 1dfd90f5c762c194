// Prometheus Alertmanager and tocsin side by side: the same HTTPS sink, the
// same offered loads, one run. Alertmanager (Debian's package, installed by
// scripts/install-bench-deps.sh) is set up to send one webhook per alert as
// soon as it arrives (group_by ['...'], group_wait 0s, repeat 24h); tocsin
// has one webhook endpoint. Each load runs on a fresh daemon (fresh storage)
// and a fresh sink, which records when each alert or event arrived; that is
// matched to the time it was POSTed (Alertmanager: the alert's unique label
// `id`; tocsin: webhook-id, the event id its 202 answered):
//   (a) open loop: single alerts at --rate POSTs per second for --seconds;
//   (b) closed loop: --events alerts in batches of --batch on --connections
//       connections;
//   (c) SIGKILL: --kill-events posted while the sink is down, the daemon
//       killed 2 s later and restarted on its storage, then the sink comes up:
//       how many arrive within --recover-seconds.
// First, the sink's own ceiling: tocsin's HTTPS client POSTing straight at
// it, so that the figures can be read against it.
//
//   alertmanager_bench [--rate N] [--seconds S] [--batch B] [--connections C]
//                      [--events N] [--kill-events K] [--recover-seconds S]
//                      [--in-flight M] [--group-interval D] [--alertmanager P]
//
// Exits 1 if tocsin lost an event (Alertmanager losing alerts is a result,
// not a failure) or a daemon did not start.
#include "bench/bench_util.hpp"
#include "bench/http_load.hpp"
#include "bench/sample_event.hpp"
#include "bench/sink_ceiling.hpp"
#include "tests/support/daemon_process.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/https_receiver.hpp"
#include "tests/support/run_command.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/test_ca.hpp"

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include <unistd.h>

#include <nlohmann/json.hpp>

using namespace tocsin::test;
using namespace tocsin::bench;
using clock_type = std::chrono::steady_clock;
namespace fs = std::filesystem;

namespace {

/// The ids expected at the sink, each with the time its POST was sent (or
/// due, open loop).
using sent_times = std::unordered_map<std::string, clock_type::time_point>;

struct options {
  int rate = 1000;
  int seconds = 15;
  int batch = 100;
  int connections = 4;
  int events = 20000;
  int kill_events = 2000;
  int recover_seconds = 30;
  int in_flight = 64;
  std::string group_interval = "1s";
  std::string alertmanager = "/usr/bin/prometheus-alertmanager";
};

constexpr const char* usage_text =
    "usage: alertmanager_bench [--rate N] [--seconds S] [--batch B] "
    "[--connections C]\n  [--events N] [--kill-events K] "
    "[--recover-seconds S] [--in-flight M]\n  [--group-interval D] "
    "[--alertmanager PATH]";

options parse(int argc, char** argv) {
  options o;
  parse_flags(argc, argv, usage_text,
              {{"--rate", &o.rate},
               {"--seconds", &o.seconds},
               {"--batch", &o.batch},
               {"--connections", &o.connections},
               {"--events", &o.events},
               {"--kill-events", &o.kill_events},
               {"--recover-seconds", &o.recover_seconds},
               {"--in-flight", &o.in_flight},
               {"--group-interval", &o.group_interval},
               {"--alertmanager", &o.alertmanager}});
  if (o.rate <= 0 || o.seconds <= 0 || o.batch <= 0 || o.connections <= 0 ||
      o.events < o.batch || o.kill_events <= 0 || o.in_flight <= 0) {
    std::cerr << usage_text << "\n";
    std::exit(2);
  }
  return o;
}

double ms_between(clock_type::time_point a, clock_type::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// ---------------------------------------------------------------------------
// The sink: records every request's arrival, for matching after the load.

struct arrival {
  std::string key; ///< tocsin: the webhook-id; Alertmanager: the whole body
  clock_type::time_point at;
};

class sink {
public:
  sink(const pem_files& cert, bool by_body, std::uint16_t port = 0)
      : by_body_(by_body),
        receiver_(receiver_options{.cert_file = cert.cert_file,
                                   .key_file = cert.key_file,
                                   .port = port,
                                   .keep_requests = false},
                  [this](const received_request& r, std::size_t) {
                    record(r);
                    return canned_response{};
                  }) {}

  std::uint16_t port() const { return receiver_.port(); }
  std::size_t count() const { return receiver_.count(); }

  std::vector<arrival> take() {
    std::lock_guard g{mtx_};
    return std::move(arrivals_);
  }

private:
  // Parsing waits until the load is over: the sink shares the two cores with
  // the daemon, so its per-request work is kept to a copy.
  void record(const received_request& r) {
    std::string key;
    if (by_body_) {
      key = r.body;
    } else if (auto it = r.headers.find("webhook-id"); it != r.headers.end()) {
      key = it->second;
    }
    std::lock_guard g{mtx_};
    arrivals_.push_back({std::move(key), r.at});
  }

  bool by_body_;
  std::mutex mtx_;
  std::vector<arrival> arrivals_;
  https_receiver receiver_; // last: it calls record() as soon as it exists
};

// ---------------------------------------------------------------------------
// TCP connections opened to the sink. The receiver does not count them, so
// they are read from /proc/net/tcp every 50 ms: distinct client ports of
// sockets to or from the sink's port. A connection closed between two
// samples is still seen because the side that closed first keeps it in
// TIME_WAIT for 60 s; only one reset without TIME_WAIT inside 50 ms, or a
// client port reused within the phase, is missed.

class connection_counter {
public:
  explicit connection_counter(std::uint16_t port) : port_(port) {
    sample(); // what is there before the daemon connects is not its own
    baseline_ = seen_;
    seen_.clear();
    thread_ = std::thread{[this] {
      std::unique_lock lock{mtx_};
      while (!cv_.wait_for(lock, std::chrono::milliseconds{50},
                           [this] { return stop_; })) {
        lock.unlock();
        sample();
        lock.lock();
      }
    }};
  }

  ~connection_counter() { finish(); }

  /// Stops sampling after a last sample; the distinct connections seen.
  std::size_t finish() {
    if (thread_.joinable()) {
      {
        std::lock_guard g{mtx_};
        stop_ = true;
      }
      cv_.notify_all();
      thread_.join();
      sample();
    }
    return seen_.size();
  }

private:
  void sample() {
    std::ifstream in{"/proc/net/tcp"};
    std::string line;
    std::getline(in, line); // header
    while (std::getline(in, line)) {
      std::istringstream fields{line};
      std::string slot, local, remote, state;
      fields >> slot >> local >> remote >> state;
      auto port_of = [](const std::string& a) {
        return static_cast<std::uint16_t>(
            std::stoul(a.substr(a.find(':') + 1), nullptr, 16));
      };
      auto lp = port_of(local), rp = port_of(remote);
      if (state == "0A") // the sink's listener
        continue;
      std::optional<std::uint16_t> client;
      if (lp == port_) {
        client = rp;
      } else if (rp == port_) {
        client = lp;
      }
      if (client && !baseline_.count(*client))
        seen_.insert(*client);
    }
  }

  std::uint16_t port_;
  std::set<std::uint16_t> baseline_, seen_; // sampling thread, then caller
  std::mutex mtx_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

// ---------------------------------------------------------------------------
// The two systems under test, each a child process on its own storage.

enum class kind { alertmanager, tocsin };

class contender {
public:
  contender(kind k, const options& opt, fs::path dir, const test_ca& ca,
            std::uint16_t sink_port)
      : kind_(k), dir_(std::move(dir)) {
    fs::create_directories(dir_);
    auto url = "https://127.0.0.1:" + std::to_string(sink_port) + "/hook";
    auto config = dir_ / (k == kind::tocsin ? "tocsin.toml" : "am.yml");
    std::ofstream out{config};
    if (k == kind::alertmanager) {
      // group_by '...' makes every alert its own group, so each one is a
      // notification of its own, sent group_wait (0) after it arrives.
      // group_interval does not delay that first one: it is how often each
      // group (here: each alert still active) is flushed again, which the
      // notification log turns into nothing sent, at a CPU cost per active
      // alert (compare --group-interval 5m).
      out << "route:\n  receiver: sink\n  group_by: ['...']\n"
          << "  group_wait: 0s\n  group_interval: " << opt.group_interval
          << "\n  repeat_interval: 24h\nreceivers:\n  - name: sink\n"
          << "    webhook_configs:\n      - url: " << url
          << "\n        send_resolved: false\n        http_config:\n"
          << "          tls_config:\n            ca_file: " << ca.ca_file()
          << "\n";
      port_ = free_port();
      argv_ = {opt.alertmanager, "--config.file=" + config.string(),
               "--storage.path=" + (dir_ / "data").string(),
               "--web.listen-address=127.0.0.1:" + std::to_string(port_),
               "--cluster.listen-address="}; // empty: no gossip, no peers
    } else {
      // Retries a second or two apart: after the SIGKILL the backlog must
      // move as soon as the sink is back (the default schedule waits
      // minutes). The sink never fails in the other phases.
      out << "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \""
          << (dir_ / "data").string() << "\"\n\n[delivery]\nca_file = \""
          << ca.ca_file()
          << "\"\nallow_networks = [\"127.0.0.0/8\"]\nmax_in_flight = "
          << opt.in_flight << "\nbreaker_cooldown = 1\n\n[[endpoints]]\n"
          << "id = \"sink\"\nurl = \"" << url
          << "\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\n"
          << "retry_schedule = [1, 1, 2, 2, 5, 10, 30]\n";
      argv_ = {TOCSIN_BINARY, "serve", "--config", config.string()};
    }
  }

  /// Starts the daemon (again, after a kill9, on the same storage) and waits
  /// until it serves; false if it did not.
  bool start() {
    process_ = std::make_unique<daemon_process>(argv_, dir_ / "daemon.log");
    if (kind_ == kind::tocsin) {
      port_ = process_->wait_listening();
      if (port_ == 0)
        return false;
      token_ = admin_token(dir_ / "data");
      return true;
    }
    auto deadline = clock_type::now() + std::chrono::seconds{30};
    http_client client{"127.0.0.1", port_};
    while (clock_type::now() < deadline && process_->running()) {
      if (client.request("GET", "/-/ready").status == 200)
        return true;
      std::this_thread::sleep_for(std::chrono::milliseconds{20});
    }
    return false;
  }

  void kill9() { process_->kill9(); }
  void stop() { process_->terminate(); }
  pid_t pid() const { return process_->pid(); }
  std::string log() const { return process_->log(); }
  std::uint16_t port() const { return port_; }

  /// POSTs `requests` requests of `per_request` alerts or events each.
  std::pair<load_result, sent_times> post(int requests, int per_request,
                                          int connections, double rate) {
    load_options lo{port_, token_, "", connections, requests, rate};
    if (kind_ == kind::tocsin) {
      lo.body =
          per_request == 1 ? sample_event().dump() : batch_body(per_request);
    } else {
      lo.target = "/api/v2/alerts";
      lo.expect_status = 200;
      lo.body_of = [per_request](int index) {
        auto alerts = nlohmann::json::array();
        for (int i = 0; i < per_request; ++i)
          alerts.push_back(alert(alert_id(index, i)));
        return alerts.dump();
      };
    }
    auto load = run_load(lo);
    sent_times expected;
    for (auto& [id, sent] : load.accepted) {
      if (kind_ == kind::tocsin) {
        expected.emplace(id, sent);
        continue;
      }
      for (int i = 0; i < per_request; ++i)
        expected.emplace(alert_id(std::stoi(id), i), sent);
    }
    return {std::move(load), std::move(expected)};
  }

  /// The ids an arrival at the sink carries.
  std::vector<std::string> ids_of(const arrival& a) const {
    if (kind_ == kind::tocsin)
      return {a.key};
    std::vector<std::string> ids;
    auto body = nlohmann::json::parse(a.key, nullptr, false);
    if (body.is_object() && body["alerts"].is_array())
      for (auto& al : body["alerts"])
        if (al["labels"]["id"].is_string())
          ids.push_back(al["labels"]["id"].get<std::string>());
    return ids;
  }

  /// The alerts Alertmanager holds (GET /api/v2/alerts); -1 for tocsin.
  long alerts_held() const {
    if (kind_ == kind::tocsin)
      return -1;
    http_client client{"127.0.0.1", port_};
    auto list = nlohmann::json::parse(
        client.request("GET", "/api/v2/alerts").body, nullptr, false);
    return list.is_array() ? static_cast<long>(list.size()) : -1;
  }

private:
  static std::string alert_id(int request, int i) {
    return "a-" + std::to_string(request) + "-" + std::to_string(i);
  }

  // sample_event() (what tocsin gets) as Alertmanager labels and
  // annotations.
  static nlohmann::json alert(const std::string& id) {
    return {
        {"labels",
         {{"alertname", "policy.denied"}, {"agent_id", "agent-7"}, {"id", id}}},
        {"annotations",
         {{"summary", "agent-7 tried file.delete on /etc"},
          {"action", "file.delete"},
          {"rule", "block-delete"},
          {"receipt_id", "rcpt_123"}}}};
  }

  kind kind_;
  fs::path dir_;
  std::vector<std::string> argv_;
  std::unique_ptr<daemon_process> process_;
  std::uint16_t port_ = 0;
  std::string token_;
};

// ---------------------------------------------------------------------------
// The phases.

struct load_figures {
  bool ran = false;
  std::size_t offered = 0, accepted = 0, delivered = 0, duplicates = 0;
  int failures = 0;
  std::string first_failure;
  double per_second = 0, p50_ms = 0, p99_ms = 0, cpu_us = 0, peak_mib = 0;
  std::size_t connections = 0;
  bool lost() const { return !ran || delivered < accepted; }
};

struct match {
  std::size_t delivered = 0, duplicates = 0;
  std::vector<double> latencies_ms;
  clock_type::time_point last{};
};

match match_arrivals(const contender& c, const std::vector<arrival>& arrivals,
                     const sent_times& expected) {
  match m;
  std::unordered_set<std::string> seen;
  for (auto& a : arrivals)
    for (auto& id : c.ids_of(a)) {
      auto it = expected.find(id);
      if (it == expected.end())
        continue;
      if (!seen.insert(id).second) {
        ++m.duplicates;
        continue;
      }
      ++m.delivered;
      m.latencies_ms.push_back(ms_between(it->second, a.at));
      m.last = std::max(m.last, a.at);
    }
  return m;
}

/// Waits until `expected` notifications arrived, or none came for 10 s (and
/// at most 120 s after the load).
void wait_drained(const sink& s, std::size_t expected) {
  auto deadline = clock_type::now() + std::chrono::seconds{120};
  auto last_count = s.count();
  auto last_change = clock_type::now();
  while (s.count() < expected && clock_type::now() < deadline &&
         clock_type::now() - last_change < std::chrono::seconds{10}) {
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
    if (s.count() != last_count) {
      last_count = s.count();
      last_change = clock_type::now();
    }
  }
}

/// One load against a fresh daemon and a fresh sink.
load_figures run_phase(kind k, const options& opt, const fs::path& dir,
                       const test_ca& ca, const pem_files& cert, int requests,
                       int per_request, int connections, double rate) {
  load_figures f;
  sink s{cert, k == kind::alertmanager};
  connection_counter conns{s.port()};
  contender c{k, opt, dir, ca, s.port()};
  if (!c.start()) {
    std::cerr << "daemon did not start:\n" << c.log();
    return f;
  }
  auto cpu_before = cpu_seconds(c.pid());
  auto start = clock_type::now();
  auto [load, expected] = c.post(requests, per_request, connections, rate);
  f.offered = static_cast<std::size_t>(requests) * per_request;
  f.accepted = expected.size();
  f.failures = load.failures;
  f.first_failure = load.first_failure;
  wait_drained(s, expected.size());
  f.cpu_us = (cpu_seconds(c.pid()) - cpu_before) * 1e6;
  f.peak_mib = static_cast<double>(peak_rss_kib(c.pid())) / 1024;
  f.connections = conns.finish();
  c.stop();
  auto m = match_arrivals(c, s.take(), expected);
  f.ran = true;
  f.delivered = m.delivered;
  f.duplicates = m.duplicates;
  f.cpu_us /= std::max<double>(1, static_cast<double>(m.delivered));
  if (m.delivered > 0)
    f.per_second = static_cast<double>(m.delivered) /
                   std::chrono::duration<double>(m.last - start).count();
  f.p50_ms = percentile(m.latencies_ms, 0.50);
  f.p99_ms = percentile(m.latencies_ms, 0.99);
  if (f.failures)
    std::cerr << (k == kind::tocsin ? "tocsin" : "alertmanager") << ": "
              << f.failures << " requests failed, first: " << f.first_failure
              << "\n";
  return f;
}

struct kill_figures {
  bool ran = false;
  std::size_t accepted = 0, delivered = 0;
  /// Alertmanager's GET /api/v2/alerts before the SIGKILL and after it.
  long held_before = -1, held_after = -1;
  double last_arrival = 0; ///< seconds after the sink came up
  bool lost() const { return !ran || delivered < accepted; }
};

/// The sink down, K posted, SIGKILL 2 s later, restart, the sink up.
kill_figures run_kill(kind k, const options& opt, const fs::path& dir,
                      const test_ca& ca, const pem_files& cert) {
  kill_figures f;
  // A port nothing listens on until the sink starts there: connections are
  // refused, as when a receiver is down.
  std::uint16_t sink_port = sink{cert, false}.port();
  contender c{k, opt, dir, ca, sink_port};
  if (!c.start()) {
    std::cerr << "daemon did not start:\n" << c.log();
    return f;
  }
  int batch = std::min(opt.batch, opt.kill_events);
  auto [load, expected] =
      c.post(opt.kill_events / batch, batch, opt.connections, 0);
  f.accepted = expected.size();
  std::this_thread::sleep_for(std::chrono::seconds{2});
  f.held_before = c.alerts_held();
  c.kill9();
  if (!c.start()) {
    std::cerr << "daemon did not restart:\n" << c.log();
    return f;
  }
  f.held_after = c.alerts_held();
  sink s{cert, k == kind::alertmanager, sink_port};
  auto up = clock_type::now();
  auto deadline = up + std::chrono::seconds{opt.recover_seconds};
  while (s.count() < expected.size() && clock_type::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  c.stop();
  auto m = match_arrivals(c, s.take(), expected);
  f.ran = true;
  f.delivered = m.delivered;
  if (m.delivered > 0)
    f.last_arrival = std::chrono::duration<double>(m.last - up).count();
  return f;
}

// ---------------------------------------------------------------------------
// Output.

std::string num(double v, int decimals = 0) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

void row(const std::string& label, const std::string& am,
         const std::string& tocsin) {
  std::printf("    %-34s %16s %16s\n", label.c_str(), am.c_str(),
              tocsin.c_str());
}

void print_load(const load_figures& am, const load_figures& t) {
  auto both = [&](const std::string& label, auto&& f) {
    row(label, am.ran ? f(am) : "-", t.ran ? f(t) : "-");
  };
  both("accepted / offered", [](const load_figures& f) {
    return std::to_string(f.accepted) + " / " + std::to_string(f.offered);
  });
  both("delivered (duplicates)", [](const load_figures& f) {
    return std::to_string(f.delivered) + " (" + std::to_string(f.duplicates) +
           ")";
  });
  both("delivered/s at the sink",
       [](const load_figures& f) { return num(f.per_second); });
  both("latency POST->sink p50 / p99 ms", [](const load_figures& f) {
    return num(f.p50_ms, 1) + " / " + num(f.p99_ms, 1);
  });
  both("daemon CPU per notification us",
       [](const load_figures& f) { return num(f.cpu_us); });
  both("daemon peak RSS MiB",
       [](const load_figures& f) { return num(f.peak_mib, 1); });
  both("TCP connections to the sink",
       [](const load_figures& f) { return std::to_string(f.connections); });
}

} // namespace

int main(int argc, char** argv) {
  auto opt = parse(argc, argv);
  if (::access(opt.alertmanager.c_str(), X_OK) != 0) {
    std::cerr << opt.alertmanager
              << " not found: run scripts/install-bench-deps.sh\n";
    return 2;
  }

  std::ostringstream cmd;
  cmd << "build-release/bench/alertmanager_bench --rate " << opt.rate
      << " --seconds " << opt.seconds << " --batch " << opt.batch
      << " --connections " << opt.connections << " --events " << opt.events
      << " --kill-events " << opt.kill_events << " --recover-seconds "
      << opt.recover_seconds << " --in-flight " << opt.in_flight
      << " --group-interval " << opt.group_interval;
  if (opt.alertmanager != options{}.alertmanager)
    cmd << " --alertmanager " << opt.alertmanager;

  // "alertmanager, version 0.25.0 (branch: ...": the word after "version".
  auto version_text = run_command({opt.alertmanager, "--version"});
  std::istringstream words{version_text.out + version_text.err};
  std::string am_version = "?";
  for (std::string w; words >> w;)
    if (w == "version" && words >> am_version)
      break;

  temp_dir dir;
  test_ca ca{dir.path()};
  auto cert = ca.issue("sink", {"localhost"}, {"127.0.0.1"});
  const int ceiling_in_flight = 32;
  double ceiling = 0;
  {
    sink s{cert, false};
    ceiling = sink_ceiling(s.port(), ca.ca_file(), ceiling_in_flight, 3);
  }

  std::printf("Alertmanager %s vs tocsin: one HTTPS sink, the same loads\n",
              am_version.c_str());
  std::printf("  machine:   %s\n", machine().c_str());
  std::printf("  command:   %s\n", cmd.str().c_str());
  std::printf("  Alertmanager: group_by ['...'], group_wait 0s, "
              "group_interval %s, repeat_interval 24h, no cluster\n",
              opt.group_interval.c_str());
  std::printf("  tocsin:       one webhook endpoint, max_in_flight %d\n",
              opt.in_flight);
  std::printf("  sink ceiling: %s POSTs/s answered (tocsin's HTTPS client, "
              "keep-alive, %d in flight, 3 s)\n",
              num(ceiling).c_str(), ceiling_in_flight);
  std::printf("  connections: distinct client ports seen in /proc/net/tcp, "
              "sampled every 50 ms\n\n");
  std::printf("    %-34s %16s %16s\n", "", "Alertmanager", "tocsin");
  std::fflush(stdout);

  int open_requests = opt.rate * opt.seconds;
  load_figures open_am =
      run_phase(kind::alertmanager, opt, dir.path() / "am-open", ca, cert,
                open_requests, 1, 32, opt.rate);
  load_figures open_t = run_phase(kind::tocsin, opt, dir.path() / "t-open", ca,
                                  cert, open_requests, 1, 32, opt.rate);
  std::printf("  (a) open loop: %d alerts/s for %d s, one per POST, 32 "
              "connections\n",
              opt.rate, opt.seconds);
  print_load(open_am, open_t);
  std::fflush(stdout);

  int batch_requests = opt.events / opt.batch;
  load_figures batch_am =
      run_phase(kind::alertmanager, opt, dir.path() / "am-batch", ca, cert,
                batch_requests, opt.batch, opt.connections, 0);
  load_figures batch_t =
      run_phase(kind::tocsin, opt, dir.path() / "t-batch", ca, cert,
                batch_requests, opt.batch, opt.connections, 0);
  std::printf("  (b) closed loop: %d alerts in batches of %d, %d "
              "connections\n",
              batch_requests * opt.batch, opt.batch, opt.connections);
  print_load(batch_am, batch_t);
  std::fflush(stdout);

  auto kill_am =
      run_kill(kind::alertmanager, opt, dir.path() / "am-kill", ca, cert);
  auto kill_t = run_kill(kind::tocsin, opt, dir.path() / "t-kill", ca, cert);
  std::printf("  (c) SIGKILL: %d posted with the sink down, killed 2 s later, "
              "restarted, sink up\n",
              opt.kill_events);
  auto kill_row = [](const kill_figures& f) {
    return f.ran ? std::to_string(f.delivered) + " / " +
                       std::to_string(f.accepted)
                 : std::string{"-"};
  };
  row("delivered within " + std::to_string(opt.recover_seconds) + " s",
      kill_row(kill_am), kill_row(kill_t));
  row("last one arrived after s",
      kill_am.delivered ? num(kill_am.last_arrival, 1) : "-",
      kill_t.delivered ? num(kill_t.last_arrival, 1) : "-");
  row("alerts held before kill / after",
      kill_am.ran ? std::to_string(kill_am.held_before) + " / " +
                        std::to_string(kill_am.held_after)
                  : "-",
      "-");

  bool tocsin_lost = open_t.lost() || batch_t.lost() || kill_t.lost();
  bool completed = open_am.ran && batch_am.ran && kill_am.ran;
  std::printf("\n  tocsin lost %s\n", tocsin_lost ? "EVENTS" : "nothing");
  return tocsin_lost || !completed ? 1 : 0;
}
