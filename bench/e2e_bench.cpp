// End-to-end throughput and latency: N producer connections (one thread,
// like wrk) POST events to a real tocsin daemon, which signs and delivers them
// over HTTPS to a local sink. Prints events/s delivered, ingest-to-delivery
// latency percentiles and the daemon's peak RSS, with the command that
// reproduces the run.
//
//   e2e_bench [--events N] [--connections C] [--batch B] [--in-flight M]
//             [--queue-window W]
//             [--io-threads T] [--rate R] [--endpoints E --fanout K]
//             [--stream-idle I] [--stream-stalled S]
//
// --rate R offers R requests/s open loop (latency counts from when each
// request was due); without it every connection sends as fast as answers
// come. --endpoints E --fanout K: E endpoints on the sink in E / K groups of
// K (routed by agent), the events of a batch spread over the groups, so that
// each event goes to K endpoints. --stream-idle I --stream-stalled S: I
// websocket clients of GET /v1/stream that take no frames (a filter nothing
// matches) and S that take every frame and never read one, open during the
// run.
#include "bench/bench_util.hpp"
#include "bench/http_load.hpp"
#include "bench/sample_event.hpp"
#include "bench/sink_ceiling.hpp"
#include "tests/support/daemon_process.hpp"
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

namespace {

struct options {
  int events = 50000;
  int connections = 32;
  int batch = 1;
  int in_flight = 64;
  int queue_window = 0; ///< 0: the daemon's default
  int io_threads = 1;
  int rate = 0;
  int endpoints = 1;
  int fanout = 1;
  int stream_idle = 0;
  int stream_stalled = 0;
};

options parse(int argc, char** argv) {
  options o;
  parse_flags(argc, argv,
              "usage: e2e_bench [--events N] [--connections C] [--batch B] "
              "[--in-flight M] [--queue-window W] [--io-threads T] [--rate R] "
              "[--endpoints E --fanout K] [--stream-idle I] "
              "[--stream-stalled S]",
              {{"--events", &o.events},
               {"--connections", &o.connections},
               {"--batch", &o.batch},
               {"--in-flight", &o.in_flight},
               {"--queue-window", &o.queue_window},
               {"--io-threads", &o.io_threads},
               {"--rate", &o.rate},
               {"--endpoints", &o.endpoints},
               {"--fanout", &o.fanout},
               {"--stream-idle", &o.stream_idle},
               {"--stream-stalled", &o.stream_stalled}});
  if (o.fanout < 1 || o.endpoints < o.fanout || o.endpoints % o.fanout != 0) {
    std::cerr << "--endpoints must be a multiple of --fanout\n";
    std::exit(2);
  }
  return o;
}

} // namespace

int main(int argc, char** argv) {
  auto opt = parse(argc, argv);
  temp_dir dir;
  test_ca ca{dir.path()};
  auto cert = ca.issue("sink", {"localhost"}, {"127.0.0.1"});

  // The sink: records when each event id arrives at each endpoint (its
  // path), and keeps the latest arrival per event.
  std::mutex mtx;
  std::unordered_map<std::string, clock_type::time_point> arrived;
  std::unordered_map<std::string, int> copies; // per event id
  std::atomic<int> duplicates{0};
  std::set<std::pair<std::string, std::string>> seen; // (id, path)
  https_receiver sink{
      receiver_options{cert.cert_file, cert.key_file,
                       "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
      [&](const received_request& r, std::size_t) {
        auto it = r.headers.find("webhook-id");
        if (it == r.headers.end())
          return canned_response{};
        std::lock_guard g{mtx};
        if (opt.fanout > 1 && !seen.emplace(it->second, r.target).second) {
          ++duplicates;
          return canned_response{};
        }
        if (++copies[it->second] < opt.fanout)
          return canned_response{};
        if (!arrived.emplace(it->second, r.at).second)
          ++duplicates;
        return canned_response{};
      }};

  // The ceiling first, with the machine to itself, as many in flight as
  // tocsin will have: requests without a webhook-id, which the sink ignores.
  auto ceiling = sink_ceiling(sink.port(), ca.ca_file(), opt.in_flight, 3);

  auto config = dir.path() / "tocsin.toml";
  {
    std::ofstream out{config};
    out << "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \""
        << (dir.path() / "data").string()
        << "\"\nio_threads = " << opt.io_threads
        << "\n\n[delivery]\nca_file = \"" << ca.ca_file()
        << "\"\nallow_networks = [\"127.0.0.0/8\"]\nmax_in_flight = "
        << opt.in_flight << "\n";
    if (opt.queue_window > 0)
      out << "queue_window = " << opt.queue_window << "\n";
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
  auto cpu_at_start = cpu_seconds(daemon.pid());
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
    {
      std::lock_guard g{mtx};
      if (arrived.size() >= accepted)
        break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  }
  auto rss = peak_rss_kib(daemon.pid());
  auto cpu = cpu_seconds(daemon.pid()) - cpu_at_start;
  std::vector<double> latencies;
  clock_type::time_point last = start;
  std::size_t lost = 0;
  {
    std::lock_guard g{mtx};
    for (auto& [id, t] : posted) {
      auto it = arrived.find(id);
      if (it == arrived.end()) {
        ++lost;
        continue;
      }
      latencies.push_back(
          std::chrono::duration<double, std::milli>(it->second - t).count());
      last = std::max(last, it->second);
    }
  }
  daemon.terminate();
  auto secs = [](auto d) { return std::chrono::duration<double>(d).count(); };
  std::ostringstream cmd;
  cmd << "build-release/bench/e2e_bench --events " << opt.events
      << " --connections " << opt.connections << " --batch " << opt.batch
      << " --in-flight " << opt.in_flight << " --io-threads " << opt.io_threads;
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
  std::printf("tocsin end-to-end benchmark\n");
  std::printf("  machine:        %s\n", machine().c_str());
  std::printf("  command:        %s\n", cmd.str().c_str());
  std::printf("  accepted:       %zu events (%d failed requests)\n", accepted,
              failures);
  // Not arrived when the wait ended: still queued, or lost (a restart would
  // tell; the backlog benchmark does).
  std::printf("  delivered:      %zu (not delivered within 120 s: %zu, "
              "duplicates %d)\n",
              accepted - lost, lost, duplicates.load());
  std::printf("  ingest rate:    %.0f events/s (202s received)\n",
              static_cast<double>(accepted) / secs(ingest_done - start));
  auto delivered_per_s =
      static_cast<double>(accepted - lost) / secs(last - start);
  std::printf("  delivery rate:  %.0f events/s delivered, signed (first POST "
              "to last delivery)\n",
              delivered_per_s);
  std::printf("  sink ceiling:   %.0f POSTs/s (HTTPS client straight at the "
              "sink, %d in flight, 3 s, this run): delivered = %.0f%% of it\n",
              ceiling, opt.in_flight,
              ceiling > 0 ? 100 * delivered_per_s * opt.fanout / ceiling : 0.0);
  std::printf("  latency:        p50 %.1f ms, p99 %.1f ms, p99.9 %.1f ms "
              "(POST sent to delivery received)\n",
              percentile(latencies, 0.5), percentile(latencies, 0.99),
              percentile(latencies, 0.999));
  std::printf("  answer:         p50 %.1f ms, p99 %.1f ms (POST sent to "
              "202 received)\n",
              percentile(load.answer_ms, 0.5),
              percentile(load.answer_ms, 0.99));
  std::printf("  daemon CPU:     %.1f us per event (user + system, all "
              "threads)\n",
              accepted ? cpu * 1e6 / static_cast<double>(accepted) : 0.0);
  if (opt.fanout > 1)
    std::printf("  fan-out:        %d endpoints, each event to %d: %.0f "
                "deliveries/s, %.1f us CPU per delivery\n",
                opt.endpoints, opt.fanout,
                static_cast<double>((accepted - lost) * opt.fanout) /
                    secs(last - start),
                accepted
                    ? cpu * 1e6 / static_cast<double>(accepted) / opt.fanout
                    : 0.0);
  std::printf("  daemon peak RSS: %.1f MiB\n",
              static_cast<double>(rss) / 1024.0);
  return lost == 0 && failures == 0 ? 0 : 1;
}
