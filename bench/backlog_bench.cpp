// Riding out an outage: events pile up for an endpoint that is down, the
// daemon is killed with SIGKILL, started again, and the endpoint comes back.
// Reports what that costs: the daemon's memory while the backlog waits, the
// time from restart to answering /healthz, the time to the first delivery
// once the endpoint is back, the drain rate, and that every accepted event
// arrived (lost 0), with the duplicates counted.
//
//   backlog_bench [--events N] [--batch B] [--connections C]
//                 [--in-flight M] [--window W]
//                 [--store rocksdb|postgres] [--pg-clients N]
//
// --store postgres: the backlog waits in PostgreSQL instead of the embedded
// RocksDB (the default): a PostgreSQL 15 cluster that the bench starts for
// itself with the server's defaults, nothing tuned (bench_store.hpp; run as
// root, apt-get install postgresql-15). It is not restarted: the SIGKILL is
// the daemon's alone. The report adds PostgreSQL's own commit ceiling on
// that cluster, measured before the daemon starts (pg_ceiling.hpp; --pg-clients
// connections, default 8, for its one-row phase), PostgreSQL's CPU per event
// while draining beside the daemon's, the database's size instead of the
// data_dir's, and what the database did per event.
//
// Each row with RocksDB and with PostgreSQL: the same command with and
// without --store postgres, e.g.
//   build-release/bench/backlog_bench --events 1000000 [--store postgres]
//   build-release/bench/backlog_bench --events 10000000 [--store postgres]
#include "bench/bench_store.hpp"
#include "bench/bench_util.hpp"
#include "bench/http_load.hpp"
#include "bench/sample_event.hpp"
#include "tests/support/daemon_process.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/https_receiver.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/test_ca.hpp"

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>
#include <thread>
#include <unordered_set>

#include <nlohmann/json.hpp>

using namespace tocsin::test;
using namespace tocsin::bench;
using clock_type = std::chrono::steady_clock;

namespace {

struct options {
  int events = 1000000;
  int batch = 1000;
  int connections = 4;
  int in_flight = 64;
  int window = 0;                ///< delivery.queue_window; 0: the default
  std::string store = "rocksdb"; ///< or "postgres"
  int pg_clients = 8;            ///< the PostgreSQL ceiling's connections
};

options parse(int argc, char** argv) {
  options o;
  auto usage = std::string{"usage: backlog_bench [--events N] [--batch B] "
                           "[--connections C] [--in-flight M] [--window W] "} +
               bench_store::usage;
  parse_flags(argc, argv, usage.c_str(),
              {{"--events", &o.events},
               {"--batch", &o.batch},
               {"--connections", &o.connections},
               {"--in-flight", &o.in_flight},
               {"--window", &o.window},
               {"--store", &o.store},
               {"--pg-clients", &o.pg_clients}});
  bench_store::check_flags(o.store, o.pg_clients);
  return o;
}

double seconds_since(clock_type::time_point t) {
  return std::chrono::duration<double>(clock_type::now() - t).count();
}

/// Polls GET /healthz until it answers 200; the seconds that took.
bool wait_healthy(std::uint16_t port, std::chrono::seconds timeout) {
  auto deadline = clock_type::now() + timeout;
  http_client client{"127.0.0.1", port};
  while (clock_type::now() < deadline) {
    if (client.request("GET", "/healthz").status == 200)
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds{5});
  }
  return false;
}

double mib(long kib) {
  return static_cast<double>(kib) / 1024.0;
}

int run(const options& opt) {
  temp_dir dir;
  test_ca ca{dir.path()};
  auto cert = ca.issue("sink", {"localhost"}, {"127.0.0.1"});
  const std::string secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

  // A port nothing listens on yet: the endpoint is down (connections refused)
  // until the sink starts on it.
  std::uint16_t sink_port = 0;
  {
    https_receiver probe{receiver_options{cert.cert_file, cert.key_file}};
    sink_port = probe.port();
  }
  bench_store store{opt.store, dir.path() / "data", opt.pg_clients};
  auto store_ceiling = store.measure_ceiling();

  auto config = dir.path() / "tocsin.toml";
  {
    std::ofstream out{config};
    out << "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \""
        << (dir.path() / "data").string() << "\"\n\n[delivery]\nca_file = \""
        << ca.ca_file()
        << "\"\nallow_networks = [\"127.0.0.0/8\"]\nmax_in_flight = "
        << opt.in_flight << "\nbreaker_cooldown = 1\n";
    if (opt.window > 0)
      out << "queue_window = " << opt.window << "\n";
    out << store.config_toml();
    // Retries a second or two apart, so that the backlog moves as soon as the
    // endpoint is back (the default schedule waits minutes).
    out << "\n[[endpoints]]\nid = \"sink\"\nurl = \"https://127.0.0.1:"
        << sink_port << "/hook\"\nsecret = \"" << secret
        << "\"\nretry_schedule = [1, 1, 2, 2]\n";
  }
  std::vector<std::string> argv_daemon{TOCSIN_BINARY, "serve", "--config",
                                       config.string()};
  auto log_file = dir.path() / "daemon.log";

  // 1. The backlog builds up while the endpoint is down.
  auto daemon = std::make_unique<daemon_process>(argv_daemon, log_file);
  auto port = daemon->wait_listening();
  if (port == 0) {
    std::cerr << "daemon did not start:\n" << daemon->log();
    return 1;
  }
  auto token = admin_token(dir.path() / "data");
  auto body = batch_body(opt.batch);
  int requests = (opt.events + opt.batch - 1) / opt.batch;
  auto ingest_start = clock_type::now();
  auto load = run_load({port, token, body, opt.connections, requests});
  auto ingest_secs = seconds_since(ingest_start);
  if (load.failures)
    std::cerr << load.failures
              << " requests failed, first: " << load.first_failure << "\n";
  std::unordered_set<std::string> accepted;
  for (auto& [id, t] : load.accepted)
    accepted.insert(id);
  load.accepted.clear();
  load.accepted.shrink_to_fit();
  std::this_thread::sleep_for(std::chrono::seconds{2}); // attempts fail, settle
  auto rss_waiting = status_kib(daemon->pid(), "VmRSS");
  auto peak_before = peak_rss_kib(daemon->pid());
  auto store_bytes = store.bytes();

  // 2. SIGKILL, and a restart with the backlog in the store.
  daemon->kill9();
  auto restart_at = clock_type::now();
  daemon = std::make_unique<daemon_process>(argv_daemon, log_file);
  port = daemon->wait_listening(std::chrono::seconds{600});
  bool healthy = port != 0 && wait_healthy(port, std::chrono::seconds{600});
  auto ready_secs = seconds_since(restart_at);
  if (!healthy) {
    std::cerr << "daemon did not come back:\n" << daemon->log();
    return 1;
  }
  std::this_thread::sleep_for(std::chrono::seconds{2});
  auto rss_restarted = status_kib(daemon->pid(), "VmRSS");

  // 3. The endpoint comes back: everything accepted must arrive.
  std::mutex mtx;
  std::unordered_set<std::string> arrived;
  std::atomic<std::size_t> duplicates{0};
  std::atomic<std::int64_t> first_ns{0};
  auto back_at = clock_type::now();
  auto cpu_before = cpu_seconds(daemon->pid());
  auto store_cpu_before = store.cpu_seconds();
  https_receiver sink{
      receiver_options{.cert_file = cert.cert_file,
                       .key_file = cert.key_file,
                       .port = sink_port,
                       .keep_requests = false},
      [&](const received_request& r, std::size_t) {
        std::int64_t zero = 0;
        first_ns.compare_exchange_strong(
            zero,
            std::chrono::duration_cast<std::chrono::nanoseconds>(r.at - back_at)
                .count());
        auto it = r.headers.find("webhook-id");
        std::lock_guard g{mtx};
        if (it != r.headers.end() && !arrived.insert(it->second).second)
          ++duplicates;
        return canned_response{};
      }};
  auto deadline = clock_type::now() + std::chrono::seconds{1800};
  clock_type::time_point done_at = back_at;
  for (;;) {
    {
      std::lock_guard g{mtx};
      if (arrived.size() >= accepted.size())
        break;
    }
    if (clock_type::now() > deadline)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
    done_at = clock_type::now();
  }
  auto drain_secs = std::chrono::duration<double>(done_at - back_at).count();
  auto cpu = cpu_seconds(daemon->pid()) - cpu_before;
  auto store_cpu = store.cpu_seconds() - store_cpu_before;
  auto peak_after = peak_rss_kib(daemon->pid());
  std::size_t lost = 0;
  {
    std::lock_guard g{mtx};
    for (auto& id : accepted)
      lost += arrived.count(id) == 0;
  }
  daemon->terminate();
  auto store_work = store.work_per_event(accepted.size());

  std::ostringstream cmd;
  cmd << "build-release/bench/backlog_bench --events " << opt.events
      << " --batch " << opt.batch << " --connections " << opt.connections
      << " --in-flight " << opt.in_flight;
  if (opt.window > 0)
    cmd << " --window " << opt.window;
  cmd << store.flags();
  auto n = static_cast<double>(accepted.size());
  std::printf("tocsin backlog benchmark (endpoint down, SIGKILL, restart, "
              "endpoint back)\n");
  std::printf("  machine:           %s\n", machine().c_str());
  std::printf("  command:           %s\n", cmd.str().c_str());
  std::printf("  store:             %s\n", store.description().c_str());
  if (store.postgres())
    std::printf("  store ceiling:     PostgreSQL on the same cluster, this "
                "run, before the daemon started: %s\n",
                store_ceiling.c_str());
  std::printf("  accepted:          %zu events (%d failed requests), %.0f "
              "events/s\n",
              accepted.size(), load.failures, n / ingest_secs);
  std::printf("  while down:        RSS %.1f MiB (peak %.1f MiB), store %.1f "
              "MiB %s\n",
              mib(rss_waiting), mib(peak_before),
              static_cast<double>(store_bytes) / (1 << 20), store.bytes_note());
  std::printf("  after SIGKILL:     /healthz answered %.2f s after the "
              "restart; RSS %.1f MiB\n",
              ready_secs, mib(rss_restarted));
  std::printf("  endpoint back:     first delivery after %.2f s, all "
              "delivered after %.1f s (%.0f events/s)\n",
              static_cast<double>(first_ns.load()) / 1e9, drain_secs,
              n / drain_secs);
  std::printf("  delivered:         %zu (lost %zu, duplicates %zu)\n",
              accepted.size() - lost, lost, duplicates.load());
  std::printf("  daemon while draining: %.1f us CPU per event, peak RSS %.1f "
              "MiB\n",
              n > 0 ? cpu * 1e6 / n : 0.0, mib(peak_after));
  if (store.postgres()) {
    std::printf("  PostgreSQL while draining: %.1f us CPU per event "
                "(postmaster and all its processes, user + system)\n",
                n > 0 ? store_cpu * 1e6 / n : 0.0);
    std::printf("  PostgreSQL work:   %s, over both daemons' whole runs "
                "(pg_stat_database)\n",
                store_work.c_str());
  }
  return lost == 0 && load.failures == 0 ? 0 : 1;
}

} // namespace

int main(int argc, char** argv) {
  auto opt = parse(argc, argv);
  return exit_code_of([&] { return run(opt); });
}
