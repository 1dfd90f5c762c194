// End-to-end throughput and latency: N producer connections (one thread,
// like wrk) POST events to a real tocsin daemon, which signs and delivers them
// over HTTPS to a local sink. Prints events/s delivered, ingest-to-delivery
// latency percentiles and the daemon's peak RSS, with the command that
// reproduces the run.
//
//   e2e_bench [--events N] [--connections C] [--batch B] [--in-flight M]
//             [--concurrency adaptive|fixed] [--queue-window W]
//             [--io-threads T] [--rate R] [--endpoints E --fanout K]
//             [--stream-idle I] [--stream-stalled S]
//             [--sink builtin|nginx] [--nginx-workers N]
//             [--store rocksdb|postgres] [--pg-clients N]
//
// Delivery runs with the daemon's defaults unless --in-flight (its
// max_in_flight) or --concurrency set them; the sink's ceiling is measured
// with --in-flight in flight (64 without it).
//
// --sink-http2 1: the sink (either) offers h2 by ALPN, as well as HTTP/1.1;
// the daemon (delivery.http2 = true by default) then speaks HTTP/2 to it.
//
// --sink builtin (the default): the test receiver, in this process, which
// checks every signature, and competes with the daemon for the CPU. --sink
// nginx: Debian's nginx (apt-get install nginx-light), a child process with N
// workers (default 1), answering 200 and logging each arrival; latencies then
// have nginx's 1 ms resolution. The issue that set the throughput targets
// measured with nginx.
//
// --rate R offers R requests/s open loop (latency counts from when each
// request was due); without it every connection sends as fast as answers
// come. --endpoints E --fanout K: E endpoints on the sink in E / K groups of
// K (routed by agent), the events of a batch spread over the groups, so that
// each event goes to K endpoints. --stream-idle I --stream-stalled S: I
// websocket clients of GET /v1/stream that take no frames (a filter nothing
// matches) and S that take every frame and never read one, open during the
// run.
//
// --store postgres: the daemon stores in PostgreSQL instead of the embedded
// RocksDB (the default). The bench starts a PostgreSQL 15 cluster of its own
// (apt-get install postgresql-15; run as root, the server as user postgres)
// with the server's defaults, nothing tuned, shared_buffers and
// synchronous_commit included: the store line says which values it ran with.
// Before the daemon starts it measures PostgreSQL's own commit ceiling on
// that cluster (bench/pg_ceiling.hpp): --pg-clients connections (default 8)
// committing one-row INSERTs for 3 s, then one connection committing 100-row
// INSERTs as tocsin's group commit does, for 3 s. Beside the daemon's CPU it
// reports PostgreSQL's: the postmaster and all its processes, user + system,
// over the same window, per event; and what the database did per event
// (transactions, rows written): tocsin writes several rows per event (the
// event, its delivery, log records, the delivery again when it is done), so
// compare its events/s with the ceiling's rows/s divided by those.
//
// Each row of docs/benchmarks.md, with RocksDB and with PostgreSQL: the same
// command, with and without --store postgres, e.g.
//   build-release/bench/e2e_bench --events 200000 --connections 4 --batch 100
//       --sink nginx [--store postgres]
//   build-release/bench/e2e_bench --events 100000 --connections 32 --batch 1
//       --sink nginx [--store postgres]
//   build-release/bench/e2e_bench --events 20000 --connections 4 --batch 1
//       --rate 1000 --sink nginx [--store postgres]
// alternated in one series on a quiet machine (scripts/bench-ab.sh alternates
// daemon binaries, not stores: for the stores, a loop that runs the command
// without and then with --store postgres, round after round).
#include "bench/bench_store.hpp"
#include "bench/bench_util.hpp"
#include "bench/http_load.hpp"
#include "bench/nginx_sink.hpp"
#include "bench/sample_event.hpp"
#include "bench/sink_ceiling.hpp"
#include "tests/support/daemon_process.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/https_receiver.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/test_ca.hpp"
#include "tests/support/ws_client.hpp"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <thread>
#include <unordered_map>

#include <nlohmann/json.hpp>
#include <sys/utsname.h>
#include <unistd.h>

using namespace tocsin::test;
using namespace tocsin::bench;
using clock_type = std::chrono::steady_clock;
namespace fs = std::filesystem;

namespace {

struct options {
  int events = 50000;
  int connections = 32;
  int batch = 1;
  int in_flight = 0;       ///< max_in_flight; 0: the daemon's default
  std::string concurrency; ///< "adaptive", "fixed"; empty: the default
  int queue_window = 0;    ///< 0: the daemon's default
  int io_threads = 1;
  int rate = 0;
  int endpoints = 1;
  int fanout = 1;
  int stream_idle = 0;
  int stream_stalled = 0;
  std::string sink = "builtin"; ///< or "nginx"
  int sink_http2 = 0;           ///< 1: the sink offers h2 by ALPN
  int nginx_workers = 1;
  std::string store = "rocksdb"; ///< or "postgres"
  int pg_clients = 8;            ///< the PostgreSQL ceiling's connections
};

options parse(int argc, char** argv) {
  options o;
  auto usage =
      std::string{"usage: e2e_bench [--events N] [--connections C] "
                  "[--batch B] [--in-flight M] [--concurrency adaptive|fixed] "
                  "[--queue-window W] "
                  "[--io-threads T] [--rate R] [--endpoints E --fanout K] "
                  "[--stream-idle I] [--stream-stalled S] "
                  "[--sink builtin|nginx] [--nginx-workers N] "
                  "[--sink-http2 0|1] "} +
      bench_store::usage;
  parse_flags(argc, argv, usage.c_str(),
              {{"--events", &o.events},
               {"--connections", &o.connections},
               {"--batch", &o.batch},
               {"--in-flight", &o.in_flight},
               {"--concurrency", &o.concurrency},
               {"--queue-window", &o.queue_window},
               {"--io-threads", &o.io_threads},
               {"--rate", &o.rate},
               {"--endpoints", &o.endpoints},
               {"--fanout", &o.fanout},
               {"--stream-idle", &o.stream_idle},
               {"--stream-stalled", &o.stream_stalled},
               {"--sink", &o.sink},
               {"--nginx-workers", &o.nginx_workers},
               {"--sink-http2", &o.sink_http2},
               {"--store", &o.store},
               {"--pg-clients", &o.pg_clients}});
  if (o.fanout < 1 || o.endpoints < o.fanout || o.endpoints % o.fanout != 0) {
    std::cerr << "--endpoints must be a multiple of --fanout\n";
    std::exit(2);
  }
  if ((o.sink != "builtin" && o.sink != "nginx") || o.nginx_workers < 1) {
    std::cerr << "--sink must be builtin or nginx, --nginx-workers at least "
                 "1\n";
    std::exit(2);
  }
  if (o.sink == "nginx" && !fs::exists(nginx_sink::binary)) {
    std::cerr << "nginx not found: apt-get install nginx-light\n";
    std::exit(2);
  }
  bench_store::check_flags(o.store, o.pg_clients);
  return o;
}

/// Deliveries, counted the same way whichever sink received them. An event
/// has arrived once `fanout` distinct endpoints (paths) got it, at the latest
/// of those times; another copy at a path that already had it is a
/// duplicate. Thread-safe: the builtin receiver records from its own thread.
class arrivals {
public:
  explicit arrivals(int fanout) : fanout_(fanout) {}

  void record(const std::string& id, const std::string& path,
              clock_type::time_point at) {
    std::lock_guard g{mtx_};
    if (fanout_ > 1 && !seen_.emplace(id, path).second) {
      ++duplicates_;
      return;
    }
    // Keep the latest: nginx's workers may log a later copy first.
    auto& copies = copies_[id];
    copies.latest = std::max(copies.latest, at);
    if (++copies.count < fanout_)
      return;
    if (!arrived_.emplace(id, copies.latest).second)
      ++duplicates_;
  }

  /// Events that have arrived at every endpoint they go to.
  std::size_t complete() const {
    std::lock_guard g{mtx_};
    return arrived_.size();
  }

  std::optional<clock_type::time_point> at(const std::string& id) const {
    std::lock_guard g{mtx_};
    auto it = arrived_.find(id);
    if (it == arrived_.end())
      return std::nullopt;
    return it->second;
  }

  int duplicates() const {
    std::lock_guard g{mtx_};
    return duplicates_;
  }

private:
  struct copies {
    int count = 0;
    clock_type::time_point latest{};
  };

  int fanout_;
  mutable std::mutex mtx_;
  std::unordered_map<std::string, clock_type::time_point> arrived_;
  std::unordered_map<std::string, copies> copies_;     // per event id
  std::set<std::pair<std::string, std::string>> seen_; // (id, path)
  int duplicates_ = 0;
};

/// Where tocsin delivers: the builtin receiver (in this process, verifying
/// each signature, recording arrivals as they come) or nginx (a child
/// process; arrivals are read back from its access log).
class webhook_sink {
public:
  webhook_sink(const options& opt, const fs::path& dir, const pem_files& cert,
               arrivals& got)
      : got_(got), http2_(opt.sink_http2 != 0) {
    if (opt.sink == "nginx") {
      nginx_.emplace(dir, cert, opt.nginx_workers, opt.sink_http2 != 0);
      return;
    }
    receiver_options ro{cert.cert_file, cert.key_file,
                        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"};
    ro.http2 = opt.sink_http2 != 0;
    builtin_.emplace(ro, [this](const received_request& r, std::size_t) {
      // Requests without a webhook-id are the ceiling's.
      if (auto it = r.headers.find("webhook-id"); it != r.headers.end())
        got_.record(it->second, r.target, r.at);
      return canned_response{};
    });
  }

  std::uint16_t port() const {
    return nginx_ ? nginx_->port() : builtin_->port();
  }

  /// How often it is worth calling collect(): nginx writes its log at most
  /// once a second, reading it costs the bench a little CPU.
  std::chrono::milliseconds poll_interval() const {
    return std::chrono::milliseconds{nginx_ ? 50 : 10};
  }

  /// Records what nginx has logged since the last call (the builtin
  /// receiver records by itself).
  void collect() {
    if (nginx_)
      for (auto& a : nginx_->take_arrivals())
        got_.record(a.webhook_id, a.path, a.at);
  }

  std::string description() const {
    if (!nginx_)
      return "builtin receiver (verifies signatures)";
    auto workers = nginx_->workers();
    return "nginx " + nginx_->version() + ", " + std::to_string(workers) +
           (workers == 1 ? " worker" : " workers") +
           (http2_ ? ", offers h2" : ", HTTP/1.1 only");
  }

  /// CPU seconds used so far by the sink: nginx's processes, or for the
  /// builtin receiver this whole process, which it shares with the
  /// producers.
  double cpu_seconds() const {
    return nginx_ ? nginx_->cpu_seconds() : self_cpu_seconds();
  }

  /// The report's line for cpu_seconds(), saying what it covers.
  void print_cpu(double us_per_event) const {
    if (nginx_)
      std::printf("  sink CPU:       %.1f us per event (nginx master + "
                  "workers, user + system)\n",
                  us_per_event);
    else
      std::printf("  bench process CPU (producers + sink): %.1f us per event "
                  "(user + system)\n",
                  us_per_event);
  }

  /// How an arrival's time was taken.
  std::string latency_note() const {
    return nginx_ ? "POST sent to delivery received; 1 ms resolution, nginx "
                    "$msec"
                  : "POST sent to delivery received";
  }

  /// Whatever nginx wrote to stderr or its error log (warnings and worse),
  /// at most `limit` characters; empty for the builtin receiver.
  std::string problems(std::size_t limit = 2000) const {
    return nginx_ ? nginx_->log().substr(0, limit) : std::string{};
  }

private:
  arrivals& got_;
  bool http2_;
  std::optional<nginx_sink> nginx_;
  std::optional<https_receiver> builtin_; // last: it calls got_ at once
};

} // namespace

int run(const options& opt) {
  temp_dir dir;
  test_ca ca{dir.path()};
  auto cert = ca.issue("sink", {"localhost"}, {"127.0.0.1"});

  arrivals got{opt.fanout};
  webhook_sink sink{opt, dir.path(), cert, got};

  // The ceiling first, with the machine to itself, as many in flight as
  // tocsin will have: requests without a webhook-id, which the sink ignores.
  auto ceiling_in_flight = opt.in_flight > 0 ? opt.in_flight : 64;
  auto ceiling = sink_ceiling(sink.port(), ca.ca_file(), ceiling_in_flight, 3,
                              opt.sink_http2 != 0);
  // PostgreSQL's (--store postgres), the same way, on the cluster the daemon
  // will use.
  bench_store store{opt.store, dir.path() / "data", opt.pg_clients};
  auto store_ceiling = store.measure_ceiling();

  auto config = dir.path() / "tocsin.toml";
  {
    std::ofstream out{config};
    out << "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \""
        << (dir.path() / "data").string()
        << "\"\nio_threads = " << opt.io_threads
        << "\n\n[delivery]\nca_file = \"" << ca.ca_file()
        << "\"\nallow_networks = [\"127.0.0.0/8\"]\n";
    if (opt.in_flight > 0)
      out << "max_in_flight = " << opt.in_flight << "\n";
    if (!opt.concurrency.empty())
      out << "concurrency = \"" << opt.concurrency << "\"\n";
    if (opt.queue_window > 0)
      out << "queue_window = " << opt.queue_window << "\n";
    out << store.config_toml();
    for (int i = 0; i < opt.endpoints; ++i) {
      out << "\n[[endpoints]]\nid = \"sink-" << i
          << "\"\nurl = \"https://127.0.0.1:" << sink.port() << "/hook/" << i
          << "\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\n";
      if (opt.fanout > 1 || opt.endpoints > 1)
        out << "agents = [\"group-" << i / opt.fanout << "\"]\n";
    }
  }
  daemon_process daemon{{TOCSIN_BINARY, "serve", "--config", config.string()},
                        dir.path() / "daemon.log"};
  auto port = daemon.wait_listening();
  if (port == 0) {
    std::cerr << "daemon did not start:\n" << daemon.log();
    return 1;
  }
  auto token = admin_token(dir.path() / "data");
  // Stream clients: idle ones (a filter that matches nothing here) and
  // stalled ones (every frame, never read).
  std::vector<std::unique_ptr<ws_client>> stream_clients;
  for (int i = 0; i < opt.stream_idle + opt.stream_stalled; ++i) {
    auto target =
        i < opt.stream_idle ? "/v1/stream?types=endpoint.health" : "/v1/stream";
    stream_clients.push_back(std::make_unique<ws_client>(
        port, target,
        std::vector<std::pair<std::string, std::string>>{
            {"Authorization", "Bearer " + token}}));
    if (!stream_clients.back()->ok()) {
      std::cerr << "stream client: " << stream_clients.back()->error() << "\n";
      return 1;
    }
  }

  // One event body per batch size, reused: the daemon parses it each time.
  int groups = opt.endpoints / opt.fanout;
  auto group = [&](int i) {
    return sample_event("group-" + std::to_string(i % groups));
  };
  auto body = opt.batch == 1 ? group(0).dump() : batch_body(opt.batch, group);

  int requests = (opt.events + opt.batch - 1) / opt.batch;
  // The first endpoint's in-flight limit, five times a second, while the
  // run lasts (what the adaptive limit settled on).
  std::vector<int> limits;
  std::atomic<bool> sampling{true};
  std::thread sampler{[&] {
    http_client api{"127.0.0.1", port};
    while (sampling) {
      auto r = api.request("GET", "/v1/endpoints/sink-0", {},
                           {{"authorization", "Bearer " + token}});
      auto j = nlohmann::json::parse(r.body, nullptr, false);
      if (j.is_object() && j.contains("in_flight") &&
          j["in_flight"].is_object())
        limits.push_back(j["in_flight"]["limit"].get<int>());
      std::this_thread::sleep_for(std::chrono::milliseconds{200});
    }
  }};
  auto cpu_at_start = cpu_seconds(daemon.pid());
  auto sink_cpu_at_start = sink.cpu_seconds();
  auto store_cpu_at_start = store.cpu_seconds();
  auto start = clock_type::now();
  auto load = tocsin::bench::run_load({.port = port,
                                       .token = token,
                                       .body = body,
                                       .connections = opt.connections,
                                       .requests = requests,
                                       .rate = static_cast<double>(opt.rate)});
  auto failures = load.failures;
  if (failures)
    std::cerr << failures << " requests failed, first: " << load.first_failure
              << "\n";
  std::unordered_map<std::string, clock_type::time_point> posted(
      load.accepted.begin(), load.accepted.end());
  auto ingest_done = clock_type::now();
  auto accepted = posted.size();
  // Wait for the deliveries to finish (bounded).
  auto deadline = clock_type::now() + std::chrono::seconds{120};
  while (clock_type::now() < deadline) {
    sink.collect();
    if (got.complete() >= accepted)
      break;
    std::this_thread::sleep_for(sink.poll_interval());
  }
  sampling = false;
  sampler.join();
  auto rss = peak_rss_kib(daemon.pid());
  auto cpu = cpu_seconds(daemon.pid()) - cpu_at_start;
  auto sink_cpu = sink.cpu_seconds() - sink_cpu_at_start;
  auto store_cpu = store.cpu_seconds() - store_cpu_at_start;
  std::vector<double> latencies;
  // The last delivery's time is when the sink received it, not when the loop
  // above noticed (up to a second later with nginx's buffered log).
  clock_type::time_point last = start;
  std::size_t lost = 0;
  for (auto& [id, t] : posted) {
    auto at = got.at(id);
    if (!at) {
      ++lost;
      continue;
    }
    latencies.push_back(
        std::chrono::duration<double, std::milli>(*at - t).count());
    last = std::max(last, *at);
  }
  daemon.terminate();
  auto store_work = store.work_per_event(accepted);
  auto secs = [](auto d) { return std::chrono::duration<double>(d).count(); };
  std::ostringstream cmd;
  cmd << "build-release/bench/e2e_bench --events " << opt.events
      << " --connections " << opt.connections << " --batch " << opt.batch
      << " --io-threads " << opt.io_threads;
  if (opt.in_flight > 0)
    cmd << " --in-flight " << opt.in_flight;
  if (!opt.concurrency.empty())
    cmd << " --concurrency " << opt.concurrency;
  if (opt.queue_window > 0)
    cmd << " --queue-window " << opt.queue_window;
  if (opt.rate > 0)
    cmd << " --rate " << opt.rate;
  if (opt.endpoints > 1)
    cmd << " --endpoints " << opt.endpoints << " --fanout " << opt.fanout;
  if (opt.stream_idle > 0)
    cmd << " --stream-idle " << opt.stream_idle;
  if (opt.stream_stalled > 0)
    cmd << " --stream-stalled " << opt.stream_stalled;
  cmd << " --sink " << opt.sink;
  if (opt.sink_http2)
    cmd << " --sink-http2 1";
  if (opt.sink == "nginx")
    cmd << " --nginx-workers " << opt.nginx_workers;
  cmd << store.flags();
  std::printf("tocsin end-to-end benchmark\n");
  std::printf("  machine:        %s\n", machine().c_str());
  std::printf("  command:        %s\n", cmd.str().c_str());
  std::printf("  sink:           %s\n", sink.description().c_str());
  std::printf("  store:          %s\n", store.description().c_str());
  std::printf("  accepted:       %zu events (%d failed requests)\n", accepted,
              failures);
  // Not arrived when the wait ended: still queued, or lost (a restart would
  // tell; the backlog benchmark does).
  std::printf("  delivered:      %zu (not delivered within 120 s: %zu, "
              "duplicates %d)\n",
              accepted - lost, lost, got.duplicates());
  std::printf("  ingest rate:    %.0f events/s (202s received)\n",
              static_cast<double>(accepted) / secs(ingest_done - start));
  auto delivered_per_s =
      static_cast<double>(accepted - lost) / secs(last - start);
  std::printf("  delivery rate:  %.0f events/s delivered, signed (first POST "
              "to last delivery)\n",
              delivered_per_s);
  std::printf("  sink ceiling:   %.0f POSTs/s (HTTPS client straight at the "
              "sink, %d in flight, 3 s, this run): delivered = %.0f%% of it\n",
              ceiling, ceiling_in_flight,
              ceiling > 0 ? 100 * delivered_per_s * opt.fanout / ceiling : 0.0);
  if (store.postgres())
    std::printf("  store ceiling:  PostgreSQL on the same cluster, this run, "
                "before the daemon started: %s\n",
                store_ceiling.c_str());
  if (!limits.empty()) {
    std::sort(limits.begin(), limits.end());
    std::printf("  in-flight limit: min %d, median %d, max %d (sink-0, sampled "
                "5 times a second)\n",
                limits.front(), limits[limits.size() / 2], limits.back());
  }
  std::printf("  latency:        p50 %.1f ms, p99 %.1f ms, p99.9 %.1f ms "
              "(%s)\n",
              percentile(latencies, 0.5), percentile(latencies, 0.99),
              percentile(latencies, 0.999), sink.latency_note().c_str());
  std::printf("  answer:         p50 %.1f ms, p99 %.1f ms (POST sent to "
              "202 received)\n",
              percentile(load.answer_ms, 0.5),
              percentile(load.answer_ms, 0.99));
  auto per_event = [&](double seconds) {
    return accepted ? seconds * 1e6 / static_cast<double>(accepted) : 0.0;
  };
  std::printf("  daemon CPU:     %.1f us per event (user + system, all "
              "threads)\n",
              per_event(cpu));
  if (store.postgres()) {
    std::printf("  PostgreSQL CPU: %.1f us per event (postmaster and all its "
                "processes, user + system, same window; with the daemon's: "
                "%.1f us)\n",
                per_event(store_cpu), per_event(cpu + store_cpu));
    std::printf("  PostgreSQL work: %s, over the daemon's whole run "
                "(pg_stat_database)\n",
                store_work.c_str());
  }
  if (opt.fanout > 1)
    std::printf("  fan-out:        %d endpoints, each event to %d: %.0f "
                "deliveries/s, %.1f us CPU per delivery\n",
                opt.endpoints, opt.fanout,
                static_cast<double>((accepted - lost) * opt.fanout) /
                    secs(last - start),
                per_event(cpu) / opt.fanout);
  sink.print_cpu(per_event(sink_cpu));
  std::printf("  daemon peak RSS: %.1f MiB\n",
              static_cast<double>(rss) / 1024.0);
  if (auto problems = sink.problems(); !problems.empty())
    std::cerr << "nginx logged:\n" << problems << "\n";
  return lost == 0 && failures == 0 ? 0 : 1;
}

int main(int argc, char** argv) {
  auto opt = parse(argc, argv);
  return exit_code_of([&] { return run(opt); });
}
