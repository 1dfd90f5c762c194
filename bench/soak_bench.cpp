// Retention under steady load: events offered at a fixed rate to an endpoint
// that takes them, with a short delivery.retention. Samples the store's size
// on disk and the daemon's RSS as it runs: once retention has started to
// remove what finished, both must stay flat instead of growing with time.
//
//   soak_bench [--rate EVENTS_PER_S] [--batch B] [--seconds S]
//              [--retention S] [--sample S] [--store rocksdb|postgres]
//
// --store postgres: the daemon stores in a PostgreSQL the benchmark starts
// (bench_store.hpp); the size sampled is the database's.
#include "bench/bench_store.hpp"
#include "bench/bench_util.hpp"
#include "bench/http_load.hpp"
#include "bench/sample_event.hpp"
#include "tests/support/daemon_process.hpp"
#include "tests/support/https_receiver.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/test_ca.hpp"

#include <atomic>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

using namespace tocsin::test;
using namespace tocsin::bench;
using clock_type = std::chrono::steady_clock;

namespace {

struct options {
  int rate = 2000;
  int batch = 20;
  int seconds = 180;
  int retention = 20;
  int sample = 10;
  std::string store = "rocksdb"; ///< or "postgres"
  int pg_clients = 8;            ///< the PostgreSQL ceiling's connections
};

options parse(int argc, char** argv) {
  options o;
  auto usage = std::string{"usage: soak_bench [--rate N] [--batch B] "
                           "[--seconds S] [--retention S] [--sample S] "} +
               bench_store::usage;
  parse_flags(argc, argv, usage.c_str(),
              {{"--rate", &o.rate},
               {"--batch", &o.batch},
               {"--seconds", &o.seconds},
               {"--retention", &o.retention},
               {"--sample", &o.sample},
               {"--store", &o.store},
               {"--pg-clients", &o.pg_clients}});
  bench_store::check_flags(o.store, o.pg_clients);
  return o;
}

double mib(double bytes) {
  return bytes / (1 << 20);
}

} // namespace

int main(int argc, char** argv) {
  auto opt = parse(argc, argv);
  temp_dir dir;
  test_ca ca{dir.path()};
  auto cert = ca.issue("sink", {"localhost"}, {"127.0.0.1"});
  const std::string secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
  std::atomic<std::size_t> delivered{0};
  https_receiver sink{receiver_options{.cert_file = cert.cert_file,
                                       .key_file = cert.key_file,
                                       .keep_requests = false},
                      [&](const received_request&, std::size_t) {
                        ++delivered;
                        return canned_response{};
                      }};

  bench_store store{opt.store, dir.path() / "data", opt.pg_clients};
  auto config = dir.path() / "tocsin.toml";
  {
    std::ofstream out{config};
    out << "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \""
        << (dir.path() / "data").string() << "\"\n\n[delivery]\nca_file = \""
        << ca.ca_file()
        << "\"\nallow_networks = [\"127.0.0.0/8\"]\nretention = "
        << opt.retention << "\n\n[[endpoints]]\nid = \"sink\"\nurl = "
        << "\"https://127.0.0.1:" << sink.port() << "/hook\"\nsecret = \""
        << secret << "\"\n";
    out << store.config_toml();
  }
  daemon_process daemon{{TOCSIN_BINARY, "serve", "--config", config.string()},
                        dir.path() / "daemon.log"};
  auto port = daemon.wait_listening();
  if (port == 0) {
    std::cerr << "daemon did not start:\n" << daemon.log();
    return 1;
  }
  auto token = admin_token(dir.path() / "data");
  auto body = batch_body(opt.batch);

  std::ostringstream cmd;
  cmd << "build-release/bench/soak_bench --rate " << opt.rate << " --batch "
      << opt.batch << " --seconds " << opt.seconds << " --retention "
      << opt.retention << " --sample " << opt.sample << store.flags();
  std::printf("tocsin retention soak (steady load, short retention)\n");
  std::printf("  machine:   %s\n", machine().c_str());
  std::printf("  command:   %s\n", cmd.str().c_str());
  std::printf("  store:     %s\n", store.description().c_str());
  std::printf("  %6s %12s %12s %10s %9s\n", "t (s)", "accepted~", "delivered",
              "store MiB", "RSS MiB");
  std::fflush(stdout);

  int requests = opt.rate * opt.seconds / opt.batch;
  std::atomic<bool> load_done{false};
  load_result load;
  auto start = clock_type::now();
  std::thread producer{[&] {
    load = run_load({port, token, body, 16, requests,
                     static_cast<double>(opt.rate) / opt.batch});
    load_done = true;
  }};
  // Sample through the load and two retention periods after it (a minute at
  // most).
  auto end_at = start + std::chrono::seconds{opt.seconds +
                                             std::min(2 * opt.retention, 60)};
  std::vector<double> sizes;
  for (auto t = start + std::chrono::seconds{opt.sample}; t <= end_at;
       t += std::chrono::seconds{opt.sample}) {
    std::this_thread::sleep_until(t);
    auto secs = std::chrono::duration<double>(t - start).count();
    auto offered = std::min<double>(secs, opt.seconds) * opt.rate;
    auto bytes = static_cast<double>(store.bytes());
    sizes.push_back(bytes);
    std::printf("  %6.0f %12.0f %12zu %10.1f %9.1f\n", secs, offered,
                delivered.load(), mib(bytes),
                static_cast<double>(status_kib(daemon.pid(), "VmRSS")) / 1024);
    std::fflush(stdout);
  }
  producer.join();
  auto cpu = cpu_seconds(daemon.pid());
  auto peak = peak_rss_kib(daemon.pid());
  daemon.terminate();

  // Flat: the store at the end of the load against the store one retention
  // period (plus a sample) into it, when the first removals had begun.
  auto at = [&](int second) {
    auto i = static_cast<std::size_t>(std::max(1, second / opt.sample)) - 1;
    return sizes.at(std::min(i, sizes.size() - 1));
  };
  auto early = at(opt.retention * 2 + opt.sample);
  auto late = at(opt.seconds);
  std::printf("  accepted %zu events (%d failed requests), delivered %zu\n",
              load.accepted.size(), load.failures, delivered.load());
  std::printf("  store: %.1f MiB at %d s, %.1f MiB at %d s (%.2fx), %.1f MiB "
              "after the load\n",
              mib(early), opt.retention * 2 + opt.sample, mib(late),
              opt.seconds, late / early, mib(sizes.back()));
  std::printf("  daemon: %.1f us CPU per event, peak RSS %.1f MiB\n",
              cpu * 1e6 / static_cast<double>(load.accepted.size()),
              static_cast<double>(peak) / 1024);
  return load.failures == 0 ? 0 : 1;
}
