// How tocsin treats a receiver of limited capacity (issue 27): a small app
// server (tests/support/app_server: 20 workers, 20 ms a request, up to 20
// more waiting, 503 at once beyond; 1,000 requests/s at most) behind the
// test HTTPS receiver (a real TLS server on loopback, in this process), and
// tocsin as a child process (TOCSIN_BINARY) with one webhook endpoint to it.
// Every variant of a run gets a fresh daemon, store and receiver; with
// --rounds R the variants are alternated, the order reversed every other
// round.
//
//   receiver_bench [--scenario app-server|recovery] [--rounds R]
//                  [--variants LIST] [--series 0|1]
//                  app-server: [--rate R] [--seconds S] [--settle T]
//                              [--connections C] [--ceiling-in-flight N]
//                  recovery:   [--events N] [--batch B] [--down D]
//                              [--drain-timeout S] [--breaker-cooldown S]
//
// --scenario app-server (the default): events are POSTed one per request
// at --rate a second (default 1,200, above the receiver's 1,000), open loop
// on --connections connections, for --seconds (40); over what follows the
// first --settle seconds (10) it reports, at the receiver: deliveries/s
// (answered 200), the share of attempts answered 503, the requests the
// receiver held (served + waiting, at each arrival) p50/p95/max; the
// endpoint's limit (GET /v1/endpoints/app once a second) min/median/max;
// the daemon's CPU and peak RSS. Variants (--variants, comma-separated):
//   adaptive   tocsin's delivery defaults, nothing about concurrency set;
//   fixed-N    [delivery] concurrency = "fixed", max_in_flight = N;
//   ceiling    no tocsin: tocsin_net's HTTPS client straight at a fresh app
//              server, closed loop with --ceiling-in-flight (40: all it
//              holds without refusing) outstanding, for --seconds - --settle.
// Default: adaptive,fixed-16,fixed-64,ceiling. The issue's targets, for
// the defaults: >= 850 deliveries/s, < 1 % of attempts 503, held p95 <= 30.
// A steady rate above capacity, rather than a backlog posted up front, is
// what an overloaded receiver meets in production (the events keep coming;
// the backlog grows by 200/s); the backlog alone is the recovery scenario.
// A 503'd delivery is retried by the default schedule 60 s later, after the
// window.
//
// --scenario recovery: the receiver is down (nothing listens on its port:
// connections refused) while --events (100,000) are accepted for it in
// batches of --batch (1,000) on 4 connections; once tocsin's circuit for it
// is open (tocsin_circuit_open in /metrics) it stays down --down seconds
// more (5), then comes back on the same port (a new https_receiver with a
// fresh app server). The circuit's next probe finds it: from that first
// request (t0) it reports the requests of the first second (200 and 503),
// the requests/s over seconds 10-20 (steady state) and their ratio (target
// <= 2x), the 503 share in the first second and overall, the drain rate
// (events delivered / time from t0 until the backlog is empty: each event
// delivered or dead-lettered, against the receiver's 1,000/s) and the time
// to 99 % delivered and to empty, the limit (min/median/max, once a second),
// daemon CPU and peak RSS. Waits at most --drain-timeout seconds (960) after
// t0: by then every event first tried at t0 has been delivered or
// dead-lettered (the retry window is the schedule's sum, 900 s). Variants:
// adaptive,fixed-256 (what a user who had raised the fixed setting for a fast
// receiver would have had). The daemon keeps its defaults, retry schedule (60,
// 120, 240, 480 s) and circuit breaker (5 failures, 30 s cooldown) included,
// unless --breaker-cooldown S sets [delivery] breaker_cooldown (the report says
// so).
//
// --series 1 also prints, per run, a line per second: 200s, 503s, the limit.
//
//   build-release/bench/receiver_bench --rounds 2
//   build-release/bench/receiver_bench --scenario recovery --rounds 2
#include "bench/bench_util.hpp"
#include "bench/http_load.hpp"
#include "bench/sample_event.hpp"
#include "bench/sink_ceiling.hpp"
#include "tests/support/app_server.hpp"
#include "tests/support/daemon_process.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/https_receiver.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/test_ca.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

using namespace tocsin::test;
using namespace tocsin::bench;
using clock_type = std::chrono::steady_clock;
namespace fs = std::filesystem;

namespace {

constexpr const char* secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
constexpr double capacity = 1000; // the app server's: 20 workers / 20 ms

struct options {
  std::string scenario = "app-server"; ///< or "recovery"
  int rounds = 1;
  std::string variants; ///< empty: the scenario's default
  int series = 0;
  // app-server
  int rate = 1200;
  int seconds = 40;
  int settle = 10;
  int connections = 8;
  int ceiling_in_flight = 40;
  // recovery
  int events = 100000;
  int batch = 1000;
  int down = 5;
  int drain_timeout = 960;
  int breaker_cooldown = 0; ///< 0: the daemon's default
};

const char* usage =
    R"(usage: receiver_bench [--scenario app-server|recovery] [--rounds R]
                      [--variants LIST] [--series 0|1]
         app-server:  [--rate R] [--seconds S] [--settle T] [--connections C]
                      [--ceiling-in-flight N]
         recovery:    [--events N] [--batch B] [--down D] [--drain-timeout S]
                      [--breaker-cooldown S]

How tocsin treats a receiver of limited capacity (issue 27): an app server
model (20 workers x 20 ms, 20 more may wait, 503 beyond: 1,000 requests/s)
behind a real HTTPS receiver on loopback, one webhook endpoint to it, the
daemon a child process. Variants (comma-separated): adaptive (tocsin's
delivery defaults), fixed-N (concurrency = "fixed", max_in_flight = N),
ceiling (no tocsin: tocsin_net's HTTPS client straight at the receiver,
closed loop, --ceiling-in-flight outstanding). --rounds R alternates them.

--scenario app-server (default; variants adaptive,fixed-16,fixed-64,ceiling):
  single events POSTed at --rate/s (1200, above capacity) for --seconds (40);
  after --settle (10) s: deliveries/s (200s at the receiver), share of
  attempts 503, requests held by the receiver p50/p95/max, the endpoint's
  limit (GET /v1/endpoints/app each second) min/median/max, daemon CPU and
  peak RSS. Targets for the defaults: >= 850/s, < 1 % 503, held p95 <= 30.
--scenario recovery (variants adaptive,fixed-256): the receiver refuses
  connections while --events (100000) are accepted in batches of --batch
  (1000) and the circuit opens; --down (5) s later it is back on the same
  port. From its first request back: requests in the first second, steady
  requests/s over seconds 10-20, their ratio (target <= 2x), 503 share,
  drain rate until every event is delivered or dead-lettered (at most
  --drain-timeout s, 960), time to drain. Daemon defaults (retry schedule
  60,120,240,480 s; breaker 5 failures, 30 s cooldown) unless
  --breaker-cooldown S.
--series 1: a line per second per run (200s, 503s, limit).)";

options parse(int argc, char** argv) {
  options o;
  parse_flags(argc, argv, usage,
              {{"--scenario", &o.scenario},
               {"--rounds", &o.rounds},
               {"--variants", &o.variants},
               {"--series", &o.series},
               {"--rate", &o.rate},
               {"--seconds", &o.seconds},
               {"--settle", &o.settle},
               {"--connections", &o.connections},
               {"--ceiling-in-flight", &o.ceiling_in_flight},
               {"--events", &o.events},
               {"--batch", &o.batch},
               {"--down", &o.down},
               {"--drain-timeout", &o.drain_timeout},
               {"--breaker-cooldown", &o.breaker_cooldown}});
  if (o.scenario != "app-server" && o.scenario != "recovery") {
    std::cerr << "--scenario must be app-server or recovery\n";
    std::exit(2);
  }
  if (o.rounds < 1 || o.rate < 1 || o.settle < 0 || o.seconds <= o.settle + 1 ||
      o.connections < 1 || o.ceiling_in_flight < 1 || o.events < 1 ||
      o.batch < 1 || o.down < 0 || o.drain_timeout < 21 ||
      o.breaker_cooldown < 0) {
    std::cerr << "bad value (--seconds must exceed --settle by 2 or more, "
                 "--drain-timeout at least 21)\n"
              << usage << "\n";
    std::exit(2);
  }
  if (o.variants.empty())
    o.variants = o.scenario == "app-server"
                     ? "adaptive,fixed-16,fixed-64,ceiling"
                     : "adaptive,fixed-256";
  return o;
}

std::string command_line(const options& o) {
  std::ostringstream c;
  c << "build-release/bench/receiver_bench --scenario " << o.scenario
    << " --rounds " << o.rounds << " --variants " << o.variants;
  if (o.scenario == "app-server")
    c << " --rate " << o.rate << " --seconds " << o.seconds << " --settle "
      << o.settle << " --connections " << o.connections
      << " --ceiling-in-flight " << o.ceiling_in_flight;
  else {
    c << " --events " << o.events << " --batch " << o.batch << " --down "
      << o.down << " --drain-timeout " << o.drain_timeout;
    if (o.breaker_cooldown > 0)
      c << " --breaker-cooldown " << o.breaker_cooldown;
  }
  if (o.series)
    c << " --series 1";
  return c.str();
}

/// One configuration compared: tocsin with some [delivery] settings, or no
/// tocsin at all (the receiver's own ceiling).
struct variant {
  std::string name;  ///< as in --variants
  std::string label; ///< for the report
  std::string delivery_toml;
  bool ceiling = false;
};

std::vector<variant> parse_variants(const options& o) {
  std::vector<variant> out;
  std::istringstream in{o.variants};
  for (std::string name; std::getline(in, name, ',');) {
    if (name == "adaptive") {
      out.push_back({name, "defaults (adaptive)", "", false});
    } else if (name == "ceiling" && o.scenario == "app-server") {
      out.push_back({name,
                     "receiver ceiling (" +
                         std::to_string(o.ceiling_in_flight) +
                         " in flight, no tocsin)",
                     "", true});
    } else if (name.rfind("fixed-", 0) == 0 &&
               std::atoi(name.c_str() + 6) > 0) {
      auto n = std::to_string(std::atoi(name.c_str() + 6));
      out.push_back({name, "fixed " + n,
                     "concurrency = \"fixed\"\nmax_in_flight = " + n + "\n",
                     false});
    } else {
      std::cerr << "unknown variant " << name
                << " (adaptive, fixed-N; ceiling with app-server)\n";
      std::exit(2);
    }
  }
  return out;
}

double secs(clock_type::duration d) {
  return std::chrono::duration<double>(d).count();
}

/// The app server with every arrival logged as this bench needs it: when,
/// and whether it was served (200) or refused (503); and, for the recovery,
/// which events were served and when each was served first.
class watched_app_server {
public:
  struct counts {
    std::size_t served = 0, refused = 0;
    std::size_t all() const { return served + refused; }
  };

  responder respond() {
    return [this, inner = model_.respond()](const received_request& r,
                                            std::size_t i) {
      auto answer = inner(r, i);
      auto now = clock_type::now();
      std::lock_guard g{mtx_};
      log_.push_back({now, answer.status == 200});
      if (answer.status == 200) {
        auto id = r.headers.find("webhook-id");
        if (id != r.headers.end() && !ids_.insert(id->second).second)
          ++duplicates_;
        else if (id != r.headers.end())
          firsts_.push_back(now);
      }
      return answer;
    };
  }

  app_server& model() { return model_; }

  counts between(clock_type::time_point from, clock_type::time_point to) const {
    std::lock_guard g{mtx_};
    counts c;
    for (auto& a : log_)
      if (a.at >= from && a.at < to)
        (a.served ? c.served : c.refused) += 1;
    return c;
  }

  /// The requests of the busiest whole second from `from` to `to`, and
  /// which second it was (0: the first).
  std::pair<std::size_t, int> busiest_second(clock_type::time_point from,
                                             clock_type::time_point to) const {
    std::lock_guard g{mtx_};
    std::vector<std::size_t> per_s;
    for (auto& a : log_) {
      if (a.at < from || a.at >= to)
        continue;
      auto i = static_cast<std::size_t>(secs(a.at - from));
      if (i >= per_s.size())
        per_s.resize(i + 1);
      ++per_s[i];
    }
    if (per_s.empty())
      return {0, 0};
    auto top = std::max_element(per_s.begin(), per_s.end());
    return {*top, static_cast<int>(top - per_s.begin())};
  }

  std::optional<clock_type::time_point> first_arrival() const {
    std::lock_guard g{mtx_};
    if (log_.empty())
      return std::nullopt;
    return log_.front().at;
  }

  /// Events served at least once.
  std::size_t distinct() const {
    std::lock_guard g{mtx_};
    return ids_.size();
  }

  std::size_t duplicates() const {
    std::lock_guard g{mtx_};
    return duplicates_;
  }

  /// When the n-th distinct event (1-based) was served.
  std::optional<clock_type::time_point> nth_first(std::size_t n) const {
    std::lock_guard g{mtx_};
    if (n == 0 || n > firsts_.size())
      return std::nullopt;
    return firsts_[n - 1];
  }

private:
  struct arrival {
    clock_type::time_point at;
    bool served;
  };
  app_server model_;
  mutable std::mutex mtx_;
  std::vector<arrival> log_;
  std::unordered_set<std::string> ids_;
  std::vector<clock_type::time_point> firsts_;
  std::size_t duplicates_ = 0;
};

/// A tocsin daemon for one run, with one webhook endpoint "app".
struct daemon_run {
  daemon_run(const fs::path& dir, const std::string& ca_file,
             std::uint16_t receiver_port, const std::string& delivery_toml) {
    auto config = dir / "tocsin.toml";
    {
      std::ofstream out{config};
      out << "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \""
          << (dir / "data").string() << "\"\n\n[delivery]\nca_file = \""
          << ca_file << "\"\nallow_networks = [\"127.0.0.0/8\"]\n"
          << delivery_toml << "\n[[endpoints]]\nid = \"app\"\n"
          << "url = \"https://127.0.0.1:" << receiver_port << "/hook\"\n"
          << "secret = \"" << secret << "\"\n";
    }
    process = std::make_unique<daemon_process>(
        std::vector<std::string>{TOCSIN_BINARY, "serve", "--config",
                                 config.string()},
        dir / "daemon.log");
    port = process->wait_listening();
    if (port == 0)
      throw std::runtime_error("daemon did not start:\n" + process->log());
    token = admin_token(dir / "data");
    api = std::make_unique<http_client>("127.0.0.1", port);
  }

  pid_t pid() const { return process->pid(); }

  /// GET /v1/endpoints/app's "in_flight": {limit, current}; -1s if absent.
  std::pair<int, int> limit() {
    auto r = api->request("GET", "/v1/endpoints/app", {},
                          {{"authorization", "Bearer " + token}});
    auto j = nlohmann::json::parse(r.body, nullptr, false);
    if (!j.is_object() || !j.contains("in_flight") ||
        !j["in_flight"].is_object())
      return {-1, -1};
    return {j["in_flight"].value("limit", -1),
            j["in_flight"].value("current", -1)};
  }

  /// The sum of the /metrics samples of `name` whose labels hold `label`.
  double metric(const std::string& name, const std::string& label) {
    auto r = api->request("GET", "/metrics", {},
                          {{"authorization", "Bearer " + token}});
    std::istringstream in{r.body};
    double total = 0;
    for (std::string line; std::getline(in, line);) {
      if (line.rfind(name + "{", 0) != 0 ||
          line.find(label) == std::string::npos)
        continue;
      total += std::atof(line.substr(line.rfind(' ') + 1).c_str());
    }
    return total;
  }

  std::unique_ptr<daemon_process> process;
  std::uint16_t port = 0;
  std::string token;
  std::unique_ptr<http_client> api;
};

struct spread {
  double min = 0, median = 0, max = 0;
};

spread spread_of(std::vector<double> v) {
  if (v.empty())
    return {};
  auto [lo, hi] = std::minmax_element(v.begin(), v.end());
  spread s{*lo, 0, *hi};
  s.median = percentile(v, 0.5);
  return s;
}

std::string show(const spread& s) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.0f / %.0f / %.0f", s.min, s.median, s.max);
  return buf;
}

std::string fmt(const char* f, double a) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, a);
  return buf;
}

/// "1.23", or "∞" when nothing came in the steady-state window.
std::string show_ratio(double r) {
  return std::isinf(r) ? "∞ (none in seconds 10-20)" : fmt("%.2f", r);
}

double mib(long kib) {
  return static_cast<double>(kib) / 1024.0;
}

// ---------------------------------------------------------------------------
// Scenario app-server

struct app_result {
  std::string label;
  int round = 0;
  bool ceiling = false;
  double window_s = 0;
  double delivered_per_s = 0; ///< 200s at the receiver per second
  double refused_share = 0;   ///< 503s / attempts
  std::size_t attempts = 0;
  std::size_t held_p50 = 0, held_p95 = 0, held_max = 0;
  spread limit;
  double cores = 0;      ///< daemon CPU seconds per second of the window
  double busy = 0;       ///< the machine's busy cores in the window
  double us_per_del = 0; ///< daemon CPU per delivery (ingest included)
  double peak_rss = 0;   ///< MiB
  double accepted_per_s = 0;
  int post_failures = 0;
};

app_result run_app_server(const options& o, const variant& v, int round) {
  temp_dir dir;
  test_ca ca{dir.path()};
  auto cert = ca.issue("receiver", {"localhost"}, {"127.0.0.1"});
  watched_app_server srv;
  https_receiver receiver{receiver_options{.cert_file = cert.cert_file,
                                           .key_file = cert.key_file,
                                           .keep_requests = false},
                          srv.respond()};
  app_result res;
  res.label = v.label;
  res.round = round;
  res.ceiling = v.ceiling;
  std::vector<double> limits;
  std::vector<std::string> series;
  clock_type::time_point from, to;
  if (v.ceiling) {
    auto start = clock_type::now();
    auto busy_from = machine_busy_seconds();
    sink_ceiling(receiver.port(), ca.ca_file(), o.ceiling_in_flight,
                 o.seconds - o.settle + 1);
    // The first second is connections and handshakes.
    from = start + std::chrono::seconds{1};
    to = start + std::chrono::seconds{o.seconds - o.settle + 1};
    res.busy =
        (machine_busy_seconds() - busy_from) / secs(clock_type::now() - start);
  } else {
    daemon_run d{dir.path(), ca.ca_file(), receiver.port(), v.delivery_toml};
    auto body = sample_event().dump();
    load_result load;
    auto start = clock_type::now();
    std::thread producer{[&] {
      load = run_load({.port = d.port,
                       .token = d.token,
                       .body = body,
                       .connections = o.connections,
                       .requests = o.rate * o.seconds,
                       .rate = static_cast<double>(o.rate)});
    }};
    double cpu_from = 0, busy_from = 0;
    for (int s = 1; s <= o.seconds; ++s) {
      std::this_thread::sleep_until(start + std::chrono::seconds{s});
      auto now = clock_type::now();
      auto [limit, current] = d.limit();
      if (s == o.settle || (o.settle == 0 && s == 1)) {
        from = now;
        cpu_from = cpu_seconds(d.pid());
        busy_from = machine_busy_seconds();
      }
      if (s > o.settle)
        limits.push_back(limit);
      if (o.series) {
        auto c = srv.between(now - std::chrono::seconds{1}, now);
        series.push_back(fmt("%3.0f s: ", s) + std::to_string(c.served) +
                         " x 200, " + std::to_string(c.refused) +
                         " x 503, limit " + std::to_string(limit) +
                         ", in flight " + std::to_string(current));
      }
    }
    to = clock_type::now();
    auto cpu = cpu_seconds(d.pid()) - cpu_from;
    res.busy = (machine_busy_seconds() - busy_from) / secs(to - from);
    res.peak_rss = mib(peak_rss_kib(d.pid()));
    producer.join();
    d.process->terminate();
    res.cores = cpu / secs(to - from);
    res.accepted_per_s =
        static_cast<double>(load.accepted.size()) / secs(to - start);
    res.post_failures = load.failures;
    auto served = srv.between(from, to).served;
    res.us_per_del = served ? cpu * 1e6 / static_cast<double>(served) : 0;
  }
  auto c = srv.between(from, to);
  res.window_s = secs(to - from);
  res.attempts = c.all();
  res.delivered_per_s = static_cast<double>(c.served) / res.window_s;
  res.refused_share =
      c.all() ? static_cast<double>(c.refused) / static_cast<double>(c.all())
              : 0;
  auto st = srv.model().stats(from);
  res.held_p50 = st.held_percentile(50);
  res.held_p95 = st.held_percentile(95);
  res.held_max =
      st.held.empty() ? 0 : *std::max_element(st.held.begin(), st.held.end());
  res.limit = spread_of(limits);

  std::printf("  [round %d] %s\n", round, v.label.c_str());
  std::printf("    over %.1f s: %.0f deliveries/s (%.0f%% of capacity), "
              "%zu attempts, %.2f%% answered 503; held p50 %zu, p95 %zu, max "
              "%zu\n",
              res.window_s, res.delivered_per_s,
              100 * res.delivered_per_s / capacity, res.attempts,
              100 * res.refused_share, res.held_p50, res.held_p95,
              res.held_max);
  if (!v.ceiling) {
    std::printf("    limit (GET /v1/endpoints/app, each second): %s (min / "
                "median / max)\n",
                show(res.limit).c_str());
    std::printf("    daemon: %.2f cores, %.1f us per delivery (ingest of "
                "%.0f events/s included), peak RSS %.1f MiB; %d POSTs "
                "failed\n",
                res.cores, res.us_per_del, res.accepted_per_s, res.peak_rss,
                res.post_failures);
  }
  std::printf("    machine: %.2f of %u cores busy in the window (all "
              "processes)\n",
              res.busy, std::thread::hardware_concurrency());
  for (auto& line : series)
    std::printf("      %s\n", line.c_str());
  std::fflush(stdout);
  return res;
}

int scenario_app_server(const options& o, const std::vector<variant>& vs) {
  std::printf("  receiver: app server model, 20 workers x 20 ms, 20 more "
              "waiting, 503 beyond (capacity %.0f requests/s), HTTPS on "
              "127.0.0.1, one receiver thread\n",
              capacity);
  std::printf("  load: 1 event per POST at %d/s open loop on %d connections "
              "for %d s; measured after the first %d s. A 503'd delivery "
              "retries 60 s later (default schedule), after the window.\n",
              o.rate, o.connections, o.seconds, o.settle);
  std::fflush(stdout);
  std::vector<app_result> all;
  for (int round = 1; round <= o.rounds; ++round) {
    auto order = vs;
    if (round % 2 == 0)
      std::reverse(order.begin(), order.end());
    for (auto& v : order)
      all.push_back(run_app_server(o, v, round));
  }
  std::printf("\n  summary (each round):\n\n");
  std::printf("| variant | round | deliveries/s | 503 share | held p50 / p95 "
              "/ max | limit min / median / max | daemon CPU | peak RSS | "
              "machine busy |\n");
  std::printf("| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
  for (auto& v : vs)
    for (auto& r : all) {
      if (r.label != v.label)
        continue;
      std::printf("| %s | %d | %.0f | %.2f %% | %zu / %zu / %zu | %s | %s | "
                  "%s | %.2f cores |\n",
                  r.label.c_str(), r.round, r.delivered_per_s,
                  100 * r.refused_share, r.held_p50, r.held_p95, r.held_max,
                  r.ceiling ? "—" : show(r.limit).c_str(),
                  r.ceiling ? "—"
                            : (fmt("%.2f cores, ", r.cores) +
                               fmt("%.0f us/delivery", r.us_per_del))
                                  .c_str(),
                  r.ceiling ? "—" : fmt("%.0f MiB", r.peak_rss).c_str(),
                  r.busy);
    }
  // The targets, for the defaults.
  for (auto& r : all) {
    if (r.label != "defaults (adaptive)")
      continue;
    std::printf(
        "\n  targets, defaults, round %d: %.0f deliveries/s (>= 850: "
        "%s), %.2f %% 503 (< 1 %%: %s), held p95 %zu (<= 30: %s)",
        r.round, r.delivered_per_s, r.delivered_per_s >= 850 ? "met" : "MISSED",
        100 * r.refused_share, r.refused_share < 0.01 ? "met" : "MISSED",
        r.held_p95, r.held_p95 <= 30 ? "met" : "MISSED");
  }
  std::printf("\n");
  return 0;
}

// ---------------------------------------------------------------------------
// Scenario recovery

struct recovery_result {
  std::string label;
  int round = 0;
  std::size_t accepted = 0;
  double ingest_per_s = 0;
  double open_after = 0;  ///< s from the first POST to the circuit open
  double first_after = 0; ///< s from back to its first request
  watched_app_server::counts first_second, steady, drain;
  double ratio = 0;
  std::size_t delivered = 0, dead_lettered = 0, duplicates = 0;
  bool drained = false;
  double drain_s = 0, t99_s = 0, drain_rate = 0;
  spread limit;
  std::size_t busiest = 0; ///< requests in the busiest second from t0
  int busiest_at = 0;      ///< which (s from t0; 0: the first)
  double cores = 0, us_per_del = 0, peak_rss = 0, busy = 0;
};

recovery_result run_recovery(const options& o, const variant& v, int round) {
  temp_dir dir;
  test_ca ca{dir.path()};
  auto cert = ca.issue("receiver", {"localhost"}, {"127.0.0.1"});
  std::uint16_t rport = 0;
  {
    https_receiver probe{receiver_options{cert.cert_file, cert.key_file}};
    rport = probe.port();
  } // closed: connections to it are refused
  auto toml = v.delivery_toml;
  if (o.breaker_cooldown > 0)
    toml += "breaker_cooldown = " + std::to_string(o.breaker_cooldown) + "\n";
  daemon_run d{dir.path(), ca.ca_file(), rport, toml};
  recovery_result res;
  res.label = v.label;
  res.round = round;

  auto start = clock_type::now();
  auto load = run_load({.port = d.port,
                        .token = d.token,
                        .body = batch_body(o.batch),
                        .connections = 4,
                        .requests = (o.events + o.batch - 1) / o.batch});
  res.accepted = load.accepted.size();
  res.ingest_per_s =
      static_cast<double>(res.accepted) / secs(clock_type::now() - start);
  if (load.failures)
    std::cerr << load.failures << " POSTs failed, first: " << load.first_failure
              << "\n";
  load = {};
  auto open_deadline = clock_type::now() + std::chrono::seconds{120};
  while (d.metric("tocsin_circuit_open", "endpoint=\"app\"") < 1) {
    if (clock_type::now() > open_deadline)
      throw std::runtime_error("the circuit did not open in 120 s");
    std::this_thread::sleep_for(std::chrono::milliseconds{100});
  }
  res.open_after = secs(clock_type::now() - start);
  std::this_thread::sleep_for(std::chrono::seconds{o.down});

  watched_app_server srv;
  auto cpu_from = cpu_seconds(d.pid());
  auto busy_from = machine_busy_seconds();
  auto back = clock_type::now();
  https_receiver receiver{receiver_options{.cert_file = cert.cert_file,
                                           .key_file = cert.key_file,
                                           .port = rport,
                                           .keep_requests = false},
                          srv.respond()};
  std::vector<double> limits;
  std::vector<std::string> series;
  std::optional<clock_type::time_point> t0;
  auto next_sample = clock_type::now();
  int second = 0;
  clock_type::time_point done_at{};
  double dead = 0;
  auto deadline = back + std::chrono::seconds{o.drain_timeout + 60};
  for (;;) {
    std::this_thread::sleep_for(std::chrono::milliseconds{250});
    auto now = clock_type::now();
    if (!t0) {
      t0 = srv.first_arrival();
      if (t0)
        next_sample = *t0 + std::chrono::seconds{1};
    }
    if (t0 && now >= next_sample) {
      ++second;
      auto [limit, current] = d.limit();
      limits.push_back(limit);
      if (o.series) {
        auto c =
            srv.between(next_sample - std::chrono::seconds{1}, next_sample);
        series.push_back(fmt("%3.0f s: ", second) + std::to_string(c.served) +
                         " x 200, " + std::to_string(c.refused) +
                         " x 503, limit " + std::to_string(limit) +
                         ", in flight " + std::to_string(current));
      }
      next_sample += std::chrono::seconds{1};
    }
    dead = d.metric("tocsin_deliveries_total", "outcome=\"dead_lettered\"");
    if (srv.distinct() + static_cast<std::size_t>(dead) >= res.accepted) {
      res.drained = true;
      done_at = now;
      break;
    }
    if (now > (t0 ? *t0 + std::chrono::seconds{o.drain_timeout} : deadline)) {
      done_at = now;
      break;
    }
  }
  auto cpu = cpu_seconds(d.pid()) - cpu_from;
  res.busy = (machine_busy_seconds() - busy_from) / secs(done_at - back);
  res.peak_rss = mib(peak_rss_kib(d.pid()));
  d.process->terminate();
  receiver.stop();

  res.delivered = srv.distinct();
  res.dead_lettered = static_cast<std::size_t>(dead);
  res.duplicates = srv.duplicates();
  res.limit = spread_of(limits);
  if (t0) {
    using std::chrono::seconds;
    res.first_after = secs(*t0 - back);
    res.first_second = srv.between(*t0, *t0 + seconds{1});
    res.steady = srv.between(*t0 + seconds{10}, *t0 + seconds{20});
    res.drain = srv.between(*t0, done_at);
    auto steady_per_s = static_cast<double>(res.steady.all()) / 10;
    res.ratio = steady_per_s > 0
                    ? static_cast<double>(res.first_second.all()) / steady_per_s
                    : std::numeric_limits<double>::infinity();
    std::tie(res.busiest, res.busiest_at) = srv.busiest_second(*t0, done_at);
    // Until the backlog is empty: the last event served or dead-lettered.
    auto last = res.drained && res.delivered == res.accepted
                    ? *srv.nth_first(res.delivered)
                    : done_at;
    res.drain_s = secs(last - *t0);
    res.drain_rate = static_cast<double>(res.delivered) / res.drain_s;
    auto n99 = static_cast<std::size_t>(
        std::ceil(0.99 * static_cast<double>(res.accepted)));
    if (auto t = srv.nth_first(n99))
      res.t99_s = secs(*t - *t0);
    res.cores = cpu / secs(done_at - back);
    res.us_per_del =
        res.delivered ? cpu * 1e6 / static_cast<double>(res.delivered) : 0;
  }

  auto share = [](const watched_app_server::counts& c) {
    return c.all() ? 100.0 * static_cast<double>(c.refused) /
                         static_cast<double>(c.all())
                   : 0.0;
  };
  std::printf("  [round %d] %s\n", round, v.label.c_str());
  std::printf("    accepted %zu events (%.0f/s); circuit open %.1f s after "
              "the first POST; receiver back %d s later, its first request "
              "%.1f s after that (the circuit's probe)\n",
              res.accepted, res.ingest_per_s, res.open_after, o.down,
              res.first_after);
  std::printf("    first second: %zu requests (%zu x 200, %zu x 503: %.1f%% "
              "503); seconds 10-20: %.0f requests/s (%.0f x 200/s); ratio "
              "%s; busiest second: %zu requests (second %d)\n",
              res.first_second.all(), res.first_second.served,
              res.first_second.refused, share(res.first_second),
              static_cast<double>(res.steady.all()) / 10,
              static_cast<double>(res.steady.served) / 10,
              show_ratio(res.ratio).c_str(), res.busiest, res.busiest_at + 1);
  std::printf("    %s: %zu delivered, %zu dead-lettered, %zu not yet (of "
              "%zu), %zu duplicates; %.0f deliveries/s (%.0f%% of capacity) "
              "over %.1f s; 99%% delivered after %.1f s; %zu attempts, %.1f%% "
              "503\n",
              res.drained ? "drained" : "NOT drained in time", res.delivered,
              res.dead_lettered,
              res.accepted -
                  std::min(res.accepted, res.delivered + res.dead_lettered),
              res.accepted, res.duplicates, res.drain_rate,
              100 * res.drain_rate / capacity, res.drain_s, res.t99_s,
              res.drain.all(), share(res.drain));
  std::printf("    limit (each second from the first request): %s (min / "
              "median / max); daemon %.2f cores, %.1f us per delivery, peak "
              "RSS %.1f MiB; machine %.2f of %u cores busy (all processes)\n",
              show(res.limit).c_str(), res.cores, res.us_per_del, res.peak_rss,
              res.busy, std::thread::hardware_concurrency());
  for (auto& line : series)
    std::printf("      %s\n", line.c_str());
  std::fflush(stdout);
  return res;
}

int scenario_recovery(const options& o, const std::vector<variant>& vs) {
  std::printf("  receiver: down (connections refused) while %d events are "
              "accepted (batches of %d, 4 connections) and the circuit "
              "opens, back %d s after it opened, same port: the app server "
              "model (20 workers x 20 ms, 20 more waiting, 503 beyond; "
              "capacity %.0f requests/s)\n",
              o.events, o.batch, o.down, capacity);
  if (o.breaker_cooldown > 0)
    std::printf("  daemon: delivery defaults but breaker_cooldown = %d s "
                "(default 30 s), shortened for the run\n",
                o.breaker_cooldown);
  else
    std::printf("  daemon: delivery defaults (retry schedule 60, 120, 240, "
                "480 s; breaker 5 failures, 30 s cooldown)\n");
  std::printf("  from the receiver's first request back (t0): first second, "
              "seconds 10-20, until every event is delivered or "
              "dead-lettered (at most %d s)\n",
              o.drain_timeout);
  std::fflush(stdout);
  std::vector<recovery_result> all;
  for (int round = 1; round <= o.rounds; ++round) {
    auto order = vs;
    if (round % 2 == 0)
      std::reverse(order.begin(), order.end());
    for (auto& v : order)
      all.push_back(run_recovery(o, v, round));
  }
  auto share = [](const watched_app_server::counts& c) {
    return c.all() ? 100.0 * static_cast<double>(c.refused) /
                         static_cast<double>(c.all())
                   : 0.0;
  };
  std::printf("\n  summary (each round):\n\n");
  std::printf("| variant | round | first second: requests (503 share) | "
              "seconds 10-20: requests/s | ratio | busiest second | drain: "
              "deliveries/s | 99 %% delivered / backlog empty | "
              "dead-lettered | 503 share, drain | limit min / median / max | "
              "daemon CPU | peak RSS | machine busy |\n");
  std::printf("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | "
              "--- | --- | --- | --- |\n");
  for (auto& v : vs)
    for (auto& r : all) {
      if (r.label != v.label)
        continue;
      std::printf("| %s | %d | %zu (%.1f %%) | %.0f | %s | %zu (second "
                  "%d) | %.0f (%.0f %% of capacity) | %.1f s / %s | %zu | "
                  "%.1f %% | %s | %.2f cores, %.0f us/delivery | %.0f MiB | "
                  "%.2f cores |\n",
                  r.label.c_str(), r.round, r.first_second.all(),
                  share(r.first_second),
                  static_cast<double>(r.steady.all()) / 10,
                  show_ratio(r.ratio).c_str(), r.busiest, r.busiest_at + 1,
                  r.drain_rate, 100 * r.drain_rate / capacity, r.t99_s,
                  r.drained ? fmt("%.1f s", r.drain_s).c_str()
                            : (fmt("not in %.0f s", r.drain_s)).c_str(),
                  r.dead_lettered, share(r.drain), show(r.limit).c_str(),
                  r.cores, r.us_per_del, r.peak_rss, r.busy);
    }
  for (auto& r : all)
    if (r.label == "defaults (adaptive)")
      std::printf("\n  target, defaults, round %d: first second / steady = "
                  "%s (<= 2: %s)",
                  r.round, show_ratio(r.ratio).c_str(),
                  r.ratio <= 2 ? "met" : "MISSED");
  std::printf("\n");
  return 0;
}

int run(const options& o) {
  auto vs = parse_variants(o);
  std::printf("tocsin receiver benchmark (issue 27), scenario %s\n",
              o.scenario.c_str());
  std::printf("  machine: %s\n", machine().c_str());
  std::printf("  command: %s\n", command_line(o).c_str());
  return o.scenario == "app-server" ? scenario_app_server(o, vs)
                                    : scenario_recovery(o, vs);
}

} // namespace

int main(int argc, char** argv) {
  auto opt = parse(argc, argv);
  return exit_code_of([&] { return run(opt); });
}
