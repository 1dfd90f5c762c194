// Cluster mode (issue 26) measured: tocsin nodes sharing one PostgreSQL
// store, in one run with the single-node row they are compared with, and a
// node SIGKILLed under load beside Prometheus Alertmanager's own HA mode.
//
//   cluster_bench [--parts throughput,ha] [--rounds R]
//                 [--events N] [--batch B] [--connections C]
//                 [--endpoints E] [--in-flight M] [--nginx-workers W]
//                 [--pg-clients N] [--lease-ttl S] [--single-binary PATH]
//                 [--ha-rate R] [--ha-seconds S] [--ha-kill-at K]
//                 [--ha-quiet Q] [--ha-endpoints E] [--peer-timeout D]
//                 [--group-interval D] [--alertmanager PATH]
//
// One PostgreSQL 15 cluster is started for the run (bench_store, as
// `e2e_bench --store postgres` does: server defaults, nothing tuned) and
// every configuration gets a fresh database in it.
//
// Part "throughput": the batched row of docs/benchmarks.md (events posted in
// batches of B on C connections, closed loop, delivered over HTTPS to nginx)
// with E endpoints on the sink, the events of a batch spread over them (each
// event to one endpoint, routed by agent), in three configurations:
//   single:   one node on PostgreSQL, no [cluster] table (the existing
//             row); with --single-binary, that daemon (a build from before
//             cluster mode: since it, a node alone on PostgreSQL is a
//             cluster of one, and without it this row differs from the next
//             only by the [cluster] table);
//   cluster1: one node with [cluster] node_id and lease_ttl;
//   cluster2: two nodes with [cluster], the producers' connections split
//             between them (round-robin by connection), the endpoints
//             spread over the two by their leases.
// Each reports events/s delivered (first POST to last delivery), the CPU per
// event of the daemons (all nodes, /proc) and of PostgreSQL (postmaster and
// all its processes), the p99 POST-to-delivery latency (nginx's $msec) and
// what the database did per event. With --rounds R the configurations are
// alternated, the order reversed every other round (single, cluster1,
// cluster2, then cluster2, cluster1, single). PostgreSQL's own commit ceiling
// (bench/pg_ceiling.hpp) is measured before the first round and after the
// last, and the sink's (bench/sink_ceiling.hpp) before the first; from the
// measured figures the report works out, on paper, what each further machine
// would add while one database is shared.
//
// Part "ha" (or "ha-alertmanager", "ha-tocsin" for one side): the same open
// loop, --ha-rate alerts or events a second for --ha-seconds (default 20/s:
// each alert is a notification of its own, and Alertmanager's notification
// log, gossiped in memberlist packets every 200 ms, falls behind at 100/s
// and replicas then send what they have not heard was sent, without any
// failure; the report shows its gossip queue), one SIGKILL
// --ha-kill-at seconds in, and the same HTTPS receiver (in this process,
// recording every arrival), then a wait until nothing has arrived for
// --ha-quiet seconds (late duplicates included):
//   Alertmanager: three replicas gossiping on 127.0.0.1 (--cluster.peer),
//     every alert POSTed to all three as Prometheus does; group_by ['...']
//     (each alert, unique by its label `id`, a group of its own),
//     group_wait 0s, group_interval --group-interval, repeat_interval 24h,
//     --cluster.peer-timeout --peer-timeout. The replica killed is the one
//     at position 0 (the lowest peer name), which sends while the others
//     wait position x peer_timeout and send only what the notification log
//     gossiped to them does not show as sent.
//   tocsin: three nodes over one PostgreSQL database, --ha-endpoints
//     endpoints on the receiver; event i is POSTed to node i mod 3 only,
//     with idempotency_key "k-i"; when the node does not answer (killed) it
//     is POSTed again, same key, to the next node. The node killed is the
//     one holding most endpoint leases.
// Lost: accepted (200 from a replica; 202 from a node) and never notified.
// Duplicated: notified more than once.
//
// Exits 1 if tocsin lost an event or a daemon did not start; Alertmanager
// losing or duplicating alerts is a result.
#include "bench/bench_store.hpp"
#include "bench/bench_util.hpp"
#include "bench/http_load.hpp"
#include "bench/nginx_sink.hpp"
#include "bench/sample_event.hpp"
#include "bench/sink_ceiling.hpp"
#include "common/encoding.hpp"
#include "tests/support/daemon_process.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/https_receiver.hpp"
#include "tests/support/run_command.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/test_ca.hpp"

#include <array>
#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include <nlohmann/json.hpp>
#include <unistd.h>

using namespace tocsin::test;
using namespace tocsin::bench;
using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr const char* webhook_secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// The bench's API token, configured in [[auth.tokens]] on every node (admin:
/// it posts events and reads /v1/cluster), the same on all so that an
/// idempotency key means the same on every node.
constexpr const char* api_token = "tok_cluster_bench_0123456789abcdef";

struct options {
  std::string parts = "throughput,ha";
  int rounds = 1;
  // throughput
  int events = 200000;
  int batch = 100;
  int connections = 4;
  int endpoints = 8;
  int in_flight = 0; ///< 0: the daemon's default
  int nginx_workers = 1;
  int pg_clients = 8;
  int lease_ttl = 10; ///< [cluster] lease_ttl, seconds (the default)
  /// The daemon of the "single" configuration; empty: the one built here.
  std::string single_binary;
  /// > 0: PostgreSQL loads pg_stat_statements and each configuration lists
  /// its N statements that took the most time (a diagnostic run: the
  /// extension costs the server a little).
  int pg_statements = 0;
  // ha
  int ha_rate = 20;
  int ha_seconds = 40;
  int ha_kill_at = 15;
  int ha_quiet = 40;
  int ha_endpoints = 6;
  std::string peer_timeout = "15s"; ///< Alertmanager's default
  std::string group_interval = "1s";
  std::string alertmanager = "/usr/bin/prometheus-alertmanager";

  bool part(const std::string& p) const {
    std::istringstream in{parts};
    for (std::string w; std::getline(in, w, ',');)
      if (w == p || (w == "ha" && (p == "ha-alertmanager" || p == "ha-tocsin")))
        return true;
    return false;
  }
  bool needs_postgres() const {
    return part("throughput") || part("ha-tocsin");
  }
};

constexpr const char* usage_text =
    "usage: cluster_bench [--parts throughput,ha|ha-alertmanager|ha-tocsin] "
    "[--rounds R]\n  [--events N] [--batch B] [--connections C] "
    "[--endpoints E] [--in-flight M]\n  [--nginx-workers W] [--pg-clients N] "
    "[--lease-ttl S] [--single-binary PATH] [--pg-statements N]\n  [--ha-rate "
    "R] [--ha-seconds S] "
    "[--ha-kill-at K] "
    "[--ha-quiet Q] [--ha-endpoints E]\n  [--peer-timeout D] "
    "[--group-interval D] [--alertmanager PATH]";

options parse(int argc, char** argv) {
  options o;
  parse_flags(argc, argv, usage_text,
              {{"--parts", &o.parts},
               {"--rounds", &o.rounds},
               {"--events", &o.events},
               {"--batch", &o.batch},
               {"--connections", &o.connections},
               {"--endpoints", &o.endpoints},
               {"--in-flight", &o.in_flight},
               {"--nginx-workers", &o.nginx_workers},
               {"--pg-clients", &o.pg_clients},
               {"--lease-ttl", &o.lease_ttl},
               {"--single-binary", &o.single_binary},
               {"--pg-statements", &o.pg_statements},
               {"--ha-rate", &o.ha_rate},
               {"--ha-seconds", &o.ha_seconds},
               {"--ha-kill-at", &o.ha_kill_at},
               {"--ha-quiet", &o.ha_quiet},
               {"--ha-endpoints", &o.ha_endpoints},
               {"--peer-timeout", &o.peer_timeout},
               {"--group-interval", &o.group_interval},
               {"--alertmanager", &o.alertmanager}});
  bool any =
      o.part("throughput") || o.part("ha-alertmanager") || o.part("ha-tocsin");
  if (!any || o.rounds < 1 || o.events < o.batch || o.batch < 1 ||
      o.connections < 2 || o.endpoints < 2 || o.nginx_workers < 1 ||
      o.lease_ttl < 1 || o.ha_rate < 1 || o.ha_kill_at < 1 ||
      o.ha_seconds <= o.ha_kill_at || o.ha_quiet < 1 || o.ha_endpoints < 3) {
    std::cerr << usage_text << "\n";
    std::exit(2);
  }
  if (o.part("throughput") && !fs::exists(nginx_sink::binary)) {
    std::cerr << "nginx not found: run scripts/install-bench-deps.sh\n";
    std::exit(2);
  }
  if (o.part("ha-alertmanager") && ::access(o.alertmanager.c_str(), X_OK)) {
    std::cerr << o.alertmanager
              << " not found: run scripts/install-bench-deps.sh\n";
    std::exit(2);
  }
  if (o.needs_postgres())
    bench_store::check_flags("postgres", o.pg_clients);
  return o;
}

std::string command_line(const options& o) {
  std::ostringstream c;
  c << "build-release/bench/cluster_bench --parts " << o.parts << " --rounds "
    << o.rounds;
  if (o.part("throughput")) {
    c << " --events " << o.events << " --batch " << o.batch << " --connections "
      << o.connections << " --endpoints " << o.endpoints;
    if (o.in_flight > 0)
      c << " --in-flight " << o.in_flight;
    c << " --nginx-workers " << o.nginx_workers;
    if (!o.single_binary.empty())
      c << " --single-binary " << o.single_binary;
    if (o.pg_statements > 0)
      c << " --pg-statements " << o.pg_statements;
  }
  if (o.needs_postgres())
    c << " --pg-clients " << o.pg_clients << " --lease-ttl " << o.lease_ttl;
  if (o.part("ha-alertmanager") || o.part("ha-tocsin"))
    c << " --ha-rate " << o.ha_rate << " --ha-seconds " << o.ha_seconds
      << " --ha-kill-at " << o.ha_kill_at << " --ha-quiet " << o.ha_quiet;
  if (o.part("ha-tocsin"))
    c << " --ha-endpoints " << o.ha_endpoints;
  if (o.part("ha-alertmanager")) {
    c << " --peer-timeout " << o.peer_timeout << " --group-interval "
      << o.group_interval;
    if (o.alertmanager != options{}.alertmanager)
      c << " --alertmanager " << o.alertmanager;
  }
  return c.str();
}

double secs(clock_type::duration d) {
  return std::chrono::duration<double>(d).count();
}

double ms_between(clock_type::time_point a, clock_type::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

std::string num(double v, int decimals = 0) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

/// "23.4 GiB", from /proc/meminfo.
std::string memory_total() {
  std::ifstream in{"/proc/meminfo"};
  for (std::string line; std::getline(in, line);)
    if (line.rfind("MemTotal:", 0) == 0)
      return num(std::stod(line.substr(9)) / 1024 / 1024, 1) + " GiB";
  return "?";
}

// ---------------------------------------------------------------------------
// tocsin nodes.

struct node_options {
  std::string id; ///< node_id; empty: no [cluster] table
  int lease_ttl = 10;
  int in_flight = 0;
  int endpoints = 1;
  std::uint16_t sink_port = 0;
  std::string ca_file;
  std::string storage_toml; ///< bench_store::config_toml()
  std::string binary = TOCSIN_BINARY;
};

/// One tocsin node: its own data_dir and config (the store's [storage]
/// table, [cluster], the bench's token, E endpoints on the sink routed by
/// agent "group-i"), a child process. Created on the main thread (the
/// child's PR_SET_PDEATHSIG follows the thread that forked it).
class node {
public:
  node(const fs::path& dir, const node_options& o) : dir_(dir), id_(o.id) {
    fs::create_directories(dir_);
    auto config = dir_ / "tocsin.toml";
    std::ofstream out{config};
    out << "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \""
        << (dir_ / "data").string() << "\"\n\n[delivery]\nca_file = \""
        << o.ca_file << "\"\nallow_networks = [\"127.0.0.0/8\"]\n";
    if (o.in_flight > 0)
      out << "max_in_flight = " << o.in_flight << "\n";
    out << o.storage_toml;
    if (!o.id.empty())
      out << "\n[cluster]\nnode_id = \"" << o.id
          << "\"\nlease_ttl = " << o.lease_ttl << "\n";
    out << "\n[[auth.tokens]]\nname = \"bench\"\nsha256 = \""
        << tocsin::hex_encode(tocsin::sha256(api_token))
        << "\"\nrole = \"admin\"\n";
    for (int i = 0; i < o.endpoints; ++i)
      out << "\n[[endpoints]]\nid = \"sink-" << i
          << "\"\nurl = \"https://127.0.0.1:" << o.sink_port << "/hook/" << i
          << "\"\nsecret = \"" << webhook_secret << "\"\nagents = [\"group-"
          << i << "\"]\n";
    out.close();
    process_ = std::make_unique<daemon_process>(
        std::vector<std::string>{o.binary, "serve", "--config",
                                 config.string()},
        dir_ / "daemon.log");
  }

  /// Waits until it listens; false if it did not within 30 s.
  bool wait_started() {
    port_ = process_->wait_listening();
    return port_ != 0;
  }

  const std::string& id() const { return id_; }
  std::uint16_t port() const { return port_; }
  pid_t pid() const { return process_->pid(); }
  double cpu() const { return cpu_seconds(process_->pid()); }
  bool running() { return process_->running(); }
  void kill9() { process_->kill9(); }
  int stop() { return process_->terminate(); }
  std::string log() const { return process_->log(); }

private:
  fs::path dir_;
  std::string id_;
  std::unique_ptr<daemon_process> process_;
  std::uint16_t port_ = 0;
};

std::vector<std::pair<std::string, std::string>> auth_headers() {
  return {{"authorization", std::string{"Bearer "} + api_token},
          {"content-type", "application/json"}};
}

/// Who drives which endpoint, as GET /v1/cluster on `port` says (docs/
/// cluster.md: {"nodes": [{"id", "alive", "endpoints": [...]}]}): live node
/// id -> the bench's endpoints ("sink-*") it holds the leases of; nullopt
/// when the daemon has no such route or answers otherwise than 200 with a
/// list of nodes. A node listed as not alive is left out.
std::optional<std::map<std::string, std::vector<std::string>>>
leases_of(std::uint16_t port) {
  http_client client{"127.0.0.1", port};
  auto r = client.request("GET", "/v1/cluster", "", auth_headers());
  if (r.status != 200)
    return std::nullopt;
  auto body = json::parse(r.body, nullptr, false);
  const json* nodes = nullptr;
  if (body.is_array())
    nodes = &body;
  else if (body.is_object() && body.contains("nodes") &&
           body["nodes"].is_array())
    nodes = &body["nodes"];
  if (!nodes)
    return std::nullopt;
  std::map<std::string, std::vector<std::string>> held;
  for (auto& n : *nodes) {
    if (!n.is_object() || !n.contains("id") || !n["id"].is_string())
      continue;
    if (n.contains("alive") && n["alive"].is_boolean() && !n["alive"])
      continue;
    auto& mine = held[n["id"].get<std::string>()];
    auto key = n.contains("endpoints") ? "endpoints" : "leases";
    if (!n.contains(key) || !n[key].is_array())
      continue;
    for (auto& l : n[key]) {
      std::string name;
      if (l.is_string())
        name = l.get<std::string>();
      else if (l.is_object() && l.contains("name") && l["name"].is_string())
        name = l["name"].get<std::string>();
      if (name.rfind("sink-", 0) == 0)
        mine.push_back(name);
    }
  }
  return held;
}

/// The same from the database the nodes share (tocsin_nodes,
/// tocsin_leases), for a daemon without GET /v1/cluster: live nodes (a
/// heartbeat younger than `ttl` s) and the unexpired endpoint leases they
/// hold. nullopt if the tables are not there.
std::optional<std::map<std::string, std::vector<std::string>>>
leases_in(const bench_store& store, int ttl) {
  std::string out;
  try {
    out = store.query(
        "SELECT n.id, coalesce(l.name, '') FROM tocsin_nodes n LEFT JOIN "
        "tocsin_leases l ON l.node_id = n.id AND l.expires_at > now() AND "
        "l.name LIKE 'sink-%' WHERE n.heartbeat_at > now() - interval '" +
        std::to_string(ttl) + " seconds' ORDER BY n.id, l.name");
  } catch (const std::exception&) {
    return std::nullopt;
  }
  std::map<std::string, std::vector<std::string>> held;
  std::istringstream in{out};
  for (std::string line; std::getline(in, line);) {
    auto bar = line.find('|');
    if (bar == std::string::npos)
      continue;
    auto& mine = held[line.substr(0, bar)];
    if (bar + 1 < line.size())
      mine.push_back(line.substr(bar + 1));
  }
  return held;
}

/// Who drives what: GET /v1/cluster on `port`, or else the database.
std::optional<std::map<std::string, std::vector<std::string>>>
lease_view(std::uint16_t port, const bench_store& store, int ttl) {
  if (auto v = leases_of(port))
    return v;
  return leases_in(store, ttl);
}

/// "n1: 4, n2: 4" (endpoint leases per node), or "not reported".
std::string describe_leases(
    const std::optional<std::map<std::string, std::vector<std::string>>>& l) {
  if (!l)
    return "not reported (GET /v1/cluster, tocsin_leases)";
  std::string out, sep;
  for (auto& [id, leases] : *l) {
    out += sep + id + ": " + std::to_string(leases.size());
    sep = ", ";
  }
  return out.empty() ? "no nodes listed" : out + " endpoint leases";
}

/// Waits until the live nodes (as `port` lists them) hold all `endpoints`
/// endpoint leases between them, each of `nodes` nodes at least one, or
/// `timeout` passed; the last view.
std::optional<std::map<std::string, std::vector<std::string>>>
wait_leases(std::uint16_t port, const bench_store& store, int ttl, int nodes,
            int endpoints, std::chrono::seconds timeout) {
  auto started = clock_type::now();
  auto deadline = started + timeout;
  std::optional<std::map<std::string, std::vector<std::string>>> view;
  for (;;) {
    view = lease_view(port, store, ttl);
    if (!view && clock_type::now() - started > 3s)
      return view; // nothing says: nothing to wait for
    if (view) {
      std::size_t held = 0;
      int holders = 0;
      for (auto& [id, l] : *view) {
        held += l.size();
        holders += l.empty() ? 0 : 1;
      }
      if (held == static_cast<std::size_t>(endpoints) && holders >= nodes)
        return view;
    }
    if (clock_type::now() > deadline)
      return view;
    std::this_thread::sleep_for(200ms);
  }
}

// ---------------------------------------------------------------------------
// Part 1: throughput.

struct tp_config {
  const char* name;
  const char* label;
  int nodes;
  bool cluster;
};

const tp_config tp_configs[] = {
    {"single", "1 node, PostgreSQL, no [cluster]", 1, false},
    {"cluster1", "1 node, cluster mode", 1, true},
    {"cluster2", "2 nodes, cluster mode", 2, true},
};

struct tp_result {
  bool ran = false;
  std::size_t accepted = 0, delivered = 0, duplicates = 0;
  int failures = 0;
  std::string first_failure;
  double ingest_per_s = 0, delivered_per_s = 0;
  double daemon_us = 0, pg_us = 0, sink_us = 0;
  std::vector<double> node_us; ///< each node's share
  double p50 = 0, p99 = 0, answer_p99 = 0;
  double busy_cores = 0, measured_cores = 0;
  bench_store::work_figures work;
  std::string leases;
  std::string statements; ///< --pg-statements
};

/// Arrivals at nginx by webhook-id (one endpoint per event): the first
/// time each came, and copies after it.
struct id_arrivals {
  std::unordered_map<std::string, clock_type::time_point> first;
  std::size_t duplicates = 0;
  void add(const std::vector<sink_arrival>& as) {
    for (auto& a : as)
      if (!first.emplace(a.webhook_id, a.at).second)
        ++duplicates;
  }
};

tp_result run_throughput(const tp_config& cfg, const options& opt, int round,
                         const fs::path& dir, bench_store& store,
                         nginx_sink& sink, const std::string& ca_file) {
  tp_result r;
  store.use_new_database(std::string{"tocsin_r"} + std::to_string(round) + "_" +
                         cfg.name);
  if (opt.pg_statements > 0)
    store.query("CREATE EXTENSION pg_stat_statements");
  sink.take_arrivals(); // what an earlier configuration left
  std::vector<std::unique_ptr<node>> nodes;
  for (int i = 0; i < cfg.nodes; ++i) {
    node_options no{.id = cfg.cluster ? "n" + std::to_string(i + 1) : "",
                    .lease_ttl = opt.lease_ttl,
                    .in_flight = opt.in_flight,
                    .endpoints = opt.endpoints,
                    .sink_port = sink.port(),
                    .ca_file = ca_file,
                    .storage_toml = store.config_toml()};
    if (!cfg.cluster && !opt.single_binary.empty())
      no.binary = opt.single_binary;
    nodes.push_back(
        std::make_unique<node>(dir / ("r" + std::to_string(round) + "-" +
                                      cfg.name + "-n" + std::to_string(i + 1)),
                               no));
    // One after the other: the first creates the schema.
    if (!nodes.back()->wait_started()) {
      std::cerr << cfg.name << ": node " << i + 1 << " did not start:\n"
                << nodes.back()->log();
      return r;
    }
  }
  if (cfg.cluster)
    r.leases = describe_leases(wait_leases(
        nodes[0]->port(), store, opt.lease_ttl, cfg.nodes, opt.endpoints,
        std::chrono::seconds{2 * opt.lease_ttl + 5}));

  auto group = [&](int i) {
    return sample_event("group-" + std::to_string(i % opt.endpoints));
  };
  auto body = opt.batch == 1 ? group(0).dump() : batch_body(opt.batch, group);
  int requests = (opt.events + opt.batch - 1) / opt.batch;
  std::vector<std::uint16_t> ports;
  std::vector<double> node_cpu_before;
  for (auto& n : nodes) {
    ports.push_back(n->port());
    node_cpu_before.push_back(n->cpu());
  }
  if (opt.pg_statements > 0)
    store.query("SELECT pg_stat_statements_reset()");
  auto store_cpu_before = store.cpu_seconds();
  auto sink_cpu_before = sink.cpu_seconds();
  auto self_before = self_cpu_seconds();
  auto busy_before = machine_busy_seconds();
  auto start = clock_type::now();
  auto load = run_load({.token = api_token,
                        .body = body,
                        .connections = opt.connections,
                        .requests = requests,
                        .ports = ports});
  auto ingest_done = clock_type::now();
  std::unordered_map<std::string, clock_type::time_point> posted(
      load.accepted.begin(), load.accepted.end());
  r.accepted = posted.size();
  r.failures = load.failures;
  r.first_failure = load.first_failure;
  id_arrivals got;
  auto deadline = clock_type::now() + 120s;
  while (clock_type::now() < deadline) {
    got.add(sink.take_arrivals());
    std::size_t complete = 0;
    for (auto& [id, t] : posted)
      complete += got.first.count(id);
    if (complete >= r.accepted)
      break;
    std::this_thread::sleep_for(200ms);
  }
  auto window_end = clock_type::now();
  double daemon_cpu = 0;
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    auto c = nodes[i]->cpu() - node_cpu_before[i];
    r.node_us.push_back(c);
    daemon_cpu += c;
  }
  auto store_cpu = store.cpu_seconds() - store_cpu_before;
  auto sink_cpu = sink.cpu_seconds() - sink_cpu_before;
  auto self_cpu = self_cpu_seconds() - self_before;
  auto busy = machine_busy_seconds() - busy_before;
  if (opt.pg_statements > 0) {
    // Per 1,000 events: calls, and milliseconds executing.
    auto k = static_cast<double>(std::max<std::size_t>(1, r.accepted)) / 1000;
    std::istringstream rows{store.query(
        "SELECT calls, total_exec_time, left(regexp_replace(query, "
        "'\\s+', ' ', 'g'), 110) FROM pg_stat_statements WHERE dbid = "
        "(SELECT oid FROM pg_database WHERE datname = current_database()) "
        "ORDER BY total_exec_time DESC LIMIT " +
        std::to_string(opt.pg_statements))};
    for (std::string line; std::getline(rows, line);) {
      std::istringstream f{line};
      std::string calls, ms, text;
      std::getline(f, calls, '|');
      std::getline(f, ms, '|');
      std::getline(f, text);
      r.statements += "      " + num(std::stod(calls) / k, 1) + " calls, " +
                      num(std::stod(ms) / k, 2) + " ms: " + text + "\n";
    }
  }
  for (auto& n : nodes)
    n->stop();
  got.add(sink.take_arrivals());

  std::vector<double> latencies;
  clock_type::time_point last = start;
  for (auto& [id, t] : posted) {
    auto it = got.first.find(id);
    if (it == got.first.end())
      continue;
    ++r.delivered;
    latencies.push_back(ms_between(t, it->second));
    last = std::max(last, it->second);
  }
  r.duplicates = got.duplicates;
  auto n = static_cast<double>(std::max<std::size_t>(1, r.accepted));
  r.ingest_per_s = static_cast<double>(r.accepted) / secs(ingest_done - start);
  r.delivered_per_s = static_cast<double>(r.delivered) / secs(last - start);
  r.daemon_us = daemon_cpu * 1e6 / n;
  for (auto& c : r.node_us)
    c = c * 1e6 / n;
  r.pg_us = store_cpu * 1e6 / n;
  r.sink_us = sink_cpu * 1e6 / n;
  r.p50 = percentile(latencies, 0.5);
  r.p99 = percentile(latencies, 0.99);
  r.answer_p99 = percentile(load.answer_ms, 0.99);
  auto window = secs(window_end - start);
  r.busy_cores = busy / window;
  r.measured_cores = (daemon_cpu + store_cpu + sink_cpu + self_cpu) / window;
  r.work = store.work(r.accepted);
  r.ran = true;
  return r;
}

void print_tp(const tp_config& cfg, int round, const tp_result& r,
              const std::string& single_binary) {
  std::printf("  [round %d] %s%s\n", round, cfg.label,
              !cfg.cluster && !single_binary.empty()
                  ? (" (" + single_binary + ")").c_str()
                  : "");
  if (!r.ran) {
    std::printf("    did not run\n");
    return;
  }
  std::string per_node;
  if (r.node_us.size() > 1) {
    per_node = " (";
    for (std::size_t i = 0; i < r.node_us.size(); ++i)
      per_node += (i ? " + " : "") + num(r.node_us[i], 1);
    per_node += ")";
  }
  std::printf("    accepted %zu (%d failed requests%s%s), delivered %zu, "
              "duplicates %zu\n",
              r.accepted, r.failures, r.failures ? ", first: " : "",
              r.first_failure.substr(0, 200).c_str(), r.delivered,
              r.duplicates);
  std::printf("    delivered: %.0f events/s (first POST to last delivery); "
              "ingest %.0f events/s\n",
              r.delivered_per_s, r.ingest_per_s);
  std::printf("    CPU per event: tocsin %.1f us%s + PostgreSQL %.1f us = "
              "%.1f us; nginx %.1f us\n",
              r.daemon_us, per_node.c_str(), r.pg_us, r.daemon_us + r.pg_us,
              r.sink_us);
  std::printf("    latency POST -> delivery: p50 %.1f ms, p99 %.1f ms; 202 "
              "p99 %.1f ms\n",
              r.p50, r.p99, r.answer_p99);
  std::printf("    database: %.2f rows written and %.3f transactions per "
              "event (%s)\n",
              r.work.rows_per_event, r.work.commits_per_event,
              r.work.by_table.c_str());
  if (!r.leases.empty())
    std::printf("    leases at the start: %s\n", r.leases.c_str());
  if (!r.statements.empty())
    std::printf("    PostgreSQL's statements that took longest, per 1,000 "
                "events (pg_stat_statements):\n%s",
                r.statements.c_str());
  std::printf("    machine: %.2f cores busy in the window, %.2f of them the "
              "processes measured (daemons, PostgreSQL, nginx, this bench)\n",
              r.busy_cores, r.measured_cores);
  std::fflush(stdout);
}

double mean_of(const std::vector<tp_result>& rs, double tp_result::*field) {
  double sum = 0;
  int n = 0;
  for (auto& r : rs)
    if (r.ran) {
      sum += r.*field;
      ++n;
    }
  return n ? sum / n : 0;
}

std::string each_of(const std::vector<tp_result>& rs, double tp_result::*field,
                    int decimals) {
  std::string out, sep;
  for (auto& r : rs) {
    out += sep + (r.ran ? num(r.*field, decimals) : "-");
    sep = " / ";
  }
  return out;
}

int part_throughput(const options& opt, const fs::path& dir, bench_store& store,
                    const test_ca& ca, const pem_files& cert) {
  nginx_sink sink{dir, cert, opt.nginx_workers};
  auto in_flight = opt.in_flight > 0 ? opt.in_flight : 16;
  auto ceiling = sink_ceiling(sink.port(), ca.ca_file(), in_flight, 3);
  auto pg_before = store.measure_ceiling();
  auto pg_before_figures = store.ceiling();
  std::printf("Part 1: throughput, %d events in batches of %d on %d "
              "connections, %d endpoints (each event to one)\n",
              opt.events, opt.batch, opt.connections, opt.endpoints);
  std::printf("  sink: nginx %s, %d worker(s); its ceiling %.0f POSTs/s "
              "(HTTPS client straight at it, %d in flight, 3 s)\n",
              sink.version().c_str(), sink.workers(), ceiling, in_flight);
  std::printf("  PostgreSQL ceiling before: %s\n", pg_before.c_str());
  std::fflush(stdout);

  std::map<std::string, std::vector<tp_result>> results;
  for (int round = 1; round <= opt.rounds; ++round) {
    std::vector<const tp_config*> order;
    for (auto& c : tp_configs)
      order.push_back(&c);
    if (round % 2 == 0)
      std::reverse(order.begin(), order.end());
    for (auto* cfg : order) {
      auto r = run_throughput(*cfg, opt, round, dir, store, sink, ca.ca_file());
      print_tp(*cfg, round, r, opt.single_binary);
      results[cfg->name].push_back(std::move(r));
    }
  }
  auto pg_after = store.measure_ceiling();
  auto pg_after_figures = store.ceiling();
  std::printf("  PostgreSQL ceiling after: %s\n", pg_after.c_str());

  std::printf("\n  summary (rounds in order, a / b):\n");
  std::printf("    %-34s %-22s %-26s %-18s %s\n", "", "events/s delivered",
              "tocsin + PostgreSQL us/ev", "p99 ms", "rows / commits per ev");
  for (auto& c : tp_configs) {
    auto& rs = results[c.name];
    std::string cpu, work, sep;
    for (auto& r : rs) {
      cpu += sep + (r.ran ? num(r.daemon_us, 1) + "+" + num(r.pg_us, 1) : "-");
      work += sep + (r.ran ? num(r.work.rows_per_event, 2) + "/" +
                                 num(r.work.commits_per_event, 3)
                           : "-");
      sep = " / ";
    }
    std::printf("    %-34s %-22s %-26s %-18s %s\n", c.label,
                each_of(rs, &tp_result::delivered_per_s, 0).c_str(),
                cpu.c_str(), each_of(rs, &tp_result::p99, 1).c_str(),
                work.c_str());
  }

  // On paper: each node on a machine of its own with this machine's cores,
  // the database on another of the same size. What a node and the database
  // spend per event grows with the nodes (each follows the whole shared
  // log): taken as linear in the number of nodes N through the two
  // measured points, T(N) for all the nodes together and P(N) for the
  // database. The nodes share the events evenly, so together they bound the
  // rate at N x cores / T(N); the database at cores / P(N) (CPU) and at its
  // commit ceiling (rows/s in 100-row commits, the better of the two
  // measurements of this run) over the rows an event writes.
  double cores = std::thread::hardware_concurrency();
  auto& c1 = results["cluster1"];
  auto& c2 = results["cluster2"];
  double t1 = mean_of(c1, &tp_result::daemon_us);
  double t2 = mean_of(c2, &tp_result::daemon_us);
  double p1 = mean_of(c1, &tp_result::pg_us);
  double p2 = mean_of(c2, &tp_result::pg_us);
  double rows = 0;
  int n_rows = 0;
  for (auto& r : c2)
    if (r.ran) {
      rows += r.work.rows_per_event;
      ++n_rows;
    }
  rows = n_rows ? rows / n_rows : 0;
  double ceiling_rows = std::max(pg_before_figures.batch_rows_per_s,
                                 pg_after_figures.batch_rows_per_s);
  if (t1 > 0 && t2 > 0 && p1 > 0 && p2 > 0 && rows > 0) {
    auto t_of = [&](int n) { return std::max(1.0, t1 + (t2 - t1) * (n - 1)); };
    auto p_of = [&](int n) { return std::max(1.0, p1 + (p2 - p1) * (n - 1)); };
    double commit_bound = ceiling_rows / rows;
    std::printf("\n  on paper: each node on a machine of its own (%.0f "
                "cores), the database on another (%.0f cores)\n",
                cores, cores);
    std::printf("    measured, us per event: tocsin T(1) = %.1f, T(2) = %.1f "
                "(all nodes); PostgreSQL P(1) = %.1f, P(2) = %.1f; taken as "
                "linear in N: T(N) = %.1f + %.1f (N - 1), P(N) = %.1f + %.1f "
                "(N - 1)\n",
                t1, t2, p1, p2, t1, t2 - t1, p1, p2 - p1);
    std::printf("    the database's commits: %.0f rows/s (100-row INSERTs, "
                "the better ceiling of this run) / %.2f rows per event = "
                "%.0f events/s\n",
                ceiling_rows, rows, commit_bound);
    double prev = 0;
    for (int n = 1; n <= 3; ++n) {
      double nodes_bound = n * cores * 1e6 / t_of(n);
      double db_cpu = cores * 1e6 / p_of(n);
      double total = std::min({nodes_bound, db_cpu, commit_bound});
      const char* by = total == nodes_bound ? "the nodes"
                       : total == db_cpu    ? "the database's CPU"
                                            : "the database's commits";
      std::printf("    %d node machine(s): nodes %d x %.0f x 1e6 / %.1f = "
                  "%.0f; database CPU %.0f x 1e6 / %.1f = %.0f; commits "
                  "%.0f -> %.0f events/s (%+.0f), bound by %s\n",
                  n, n, cores, t_of(n), nodes_bound, cores, p_of(n), db_cpu,
                  commit_bound, total, total - prev, by);
      prev = total;
    }
  }
  std::fflush(stdout);
  bool lost = false;
  for (auto& [name, rs] : results)
    for (auto& r : rs)
      lost |= !r.ran || r.delivered < r.accepted || r.failures > 0;
  return lost ? 1 : 0;
}

// ---------------------------------------------------------------------------
// Part 2: a kill under load. The receiver records every arrival.

struct arrival {
  std::string key; ///< tocsin: webhook-id; Alertmanager: the body
  clock_type::time_point at;
};

class receiver {
public:
  receiver(const pem_files& cert, bool by_body)
      : by_body_(by_body),
        https_(receiver_options{.cert_file = cert.cert_file,
                                .key_file = cert.key_file,
                                .keep_requests = false},
               [this](const received_request& r, std::size_t) {
                 record(r);
                 return canned_response{};
               }) {}

  std::uint16_t port() const { return https_.port(); }
  std::size_t count() const { return https_.count(); }
  std::vector<arrival> take() {
    std::lock_guard g{mtx_};
    return std::move(arrivals_);
  }

private:
  void record(const received_request& r) {
    std::string key;
    if (by_body_)
      key = r.body;
    else if (auto it = r.headers.find("webhook-id"); it != r.headers.end())
      key = it->second;
    std::lock_guard g{mtx_};
    arrivals_.push_back({std::move(key), r.at});
  }

  bool by_body_;
  std::mutex mtx_;
  std::vector<arrival> arrivals_;
  https_receiver https_; // last: it calls record() once it exists
};

/// Open loop: `jobs` jobs, job j due at start + item_of(j) / rate, run by
/// `workers` threads that each keep one blocking keep-alive client per
/// target (`ports`); `fn(j, clients)` makes the job's requests.
void paced(
    int jobs, int per_item, double rate, clock_type::time_point start,
    const std::vector<std::uint16_t>& ports, int workers,
    const std::function<void(int, std::vector<std::unique_ptr<http_client>>&)>&
        fn) {
  std::atomic<int> next{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < workers; ++w)
    threads.emplace_back([&] {
      std::vector<std::unique_ptr<http_client>> clients;
      for (auto p : ports)
        clients.push_back(std::make_unique<http_client>("127.0.0.1", p));
      for (int j; (j = next++) < jobs;) {
        std::this_thread::sleep_until(
            start + std::chrono::duration_cast<clock_type::duration>(
                        std::chrono::duration<double>((j / per_item) / rate)));
        fn(j, clients);
      }
    });
  for (auto& t : threads)
    t.join();
}

/// Waits until nothing has arrived for `quiet`, at most `limit`.
void wait_quiet(const receiver& r, std::chrono::seconds quiet,
                std::chrono::seconds limit) {
  auto deadline = clock_type::now() + limit;
  auto count = r.count();
  auto changed = clock_type::now();
  while (clock_type::now() < deadline && clock_type::now() - changed < quiet) {
    std::this_thread::sleep_for(100ms);
    if (r.count() != count) {
      count = r.count();
      changed = clock_type::now();
    }
  }
}

struct ha_result {
  bool ran = false;
  std::string setup, victim;
  std::size_t sent = 0;         ///< alerts / events offered
  std::size_t posts = 0;        ///< POSTs made
  std::size_t posts_failed = 0; ///< no answer, or not 200 / 202
  std::size_t resent = 0;       ///< tocsin: events POSTed to a second node
  std::size_t accepted = 0;     ///< answered 200 / 202 by one at least
  std::size_t notified = 0;     ///< accepted ones notified at least once
  std::size_t lost = 0;         ///< accepted, never notified
  std::size_t duplicated = 0;   ///< notified more than once
  std::size_t extra = 0;        ///< notifications beyond the first
  std::size_t unanswered_notified = 0; ///< notified, never accepted
  double p50 = 0, p99 = 0, max_ms = 0;
  double last_after_kill = 0; ///< last first notification, s after the kill
  /// Of those accepted before the kill: notified after it, and how late
  /// the last of them came (s after the kill).
  std::size_t pending_at_kill = 0;
  /// The duplicated: how many were due before the kill, and how long after
  /// the first notification the second came (p50 / max, ms).
  std::size_t dup_before_kill = 0;
  /// Of those, due in the last second before it.
  std::size_t dup_last_second = 0;
  /// Items due after the kill: first notification p50 / max, ms.
  double after_p50 = 0, after_max = 0;
  /// Alertmanager: seconds after the kill until every survivor counted
  /// two members, and until one of them was at position 0 (its /metrics:
  /// alertmanager_cluster_members, alertmanager_peer_position); tocsin:
  /// until the victim was no longer listed alive, and until every endpoint
  /// lease was held by a survivor (GET /v1/cluster). -1: not seen.
  double seen_gone = -1, took_over = -1;
  double dup_gap_p50 = 0, dup_gap_max = 0;
  double cpu_us = 0; ///< per alert/event: all replicas or nodes (+ PG)
  std::string note;
  std::string problems; ///< from the daemons' logs
};

/// What the receiver got, matched with what was sent: `due[i]` when item i
/// was due, `key_of_arrival` the items an arrival notifies.
void match(ha_result& h, const std::vector<arrival>& arrivals,
           const std::vector<clock_type::time_point>& due,
           const std::vector<bool>& accepted,
           const std::function<std::vector<int>(const arrival&)>& items_of,
           clock_type::time_point kill_at) {
  std::vector<int> times(due.size(), 0);
  std::vector<clock_type::time_point> first(due.size()), second(due.size());
  for (auto& a : arrivals)
    for (int i : items_of(a)) {
      if (i < 0 || static_cast<std::size_t>(i) >= due.size())
        continue;
      if (times[i] == 0)
        first[i] = a.at;
      else if (times[i] == 1)
        second[i] = a.at;
      ++times[i];
    }
  std::vector<double> gaps;
  std::vector<double> lat, after;
  clock_type::time_point last_first = kill_at;
  for (std::size_t i = 0; i < due.size(); ++i) {
    if (times[i] > 1) {
      ++h.duplicated;
      h.extra += static_cast<std::size_t>(times[i] - 1);
      h.dup_before_kill += due[i] < kill_at ? 1 : 0;
      h.dup_last_second += due[i] < kill_at && due[i] >= kill_at - 1s ? 1 : 0;
      // The receiver records in arrival order, one thread.
      gaps.push_back(ms_between(first[i], second[i]));
    }
    if (!accepted[i]) {
      if (times[i] > 0)
        ++h.unanswered_notified;
      continue;
    }
    if (times[i] == 0) {
      ++h.lost;
      continue;
    }
    ++h.notified;
    lat.push_back(ms_between(due[i], first[i]));
    if (due[i] >= kill_at)
      after.push_back(lat.back());
    last_first = std::max(last_first, first[i]);
    if (due[i] < kill_at && first[i] > kill_at)
      ++h.pending_at_kill;
  }
  h.p50 = percentile(lat, 0.5);
  h.p99 = percentile(lat, 0.99);
  h.max_ms = lat.empty() ? 0 : *std::max_element(lat.begin(), lat.end());
  h.last_after_kill = secs(last_first - kill_at);
  h.after_p50 = percentile(after, 0.5);
  h.after_max =
      after.empty() ? 0 : *std::max_element(after.begin(), after.end());
  h.dup_gap_p50 = percentile(gaps, 0.5);
  h.dup_gap_max =
      gaps.empty() ? 0 : *std::max_element(gaps.begin(), gaps.end());
}

/// Alertmanager's warnings and errors (logfmt, level=warn|error), counted
/// by msg, with the first of each: what a replica said went wrong. Those
/// every run has are left out: joining peers not started yet, and
/// reconnecting to the one killed ("failed to join cluster", "unable to
/// join gossip mesh", "refresh").
std::string am_problems(const std::string& log) {
  std::map<std::string, std::pair<int, std::string>> by_msg;
  std::istringstream in{log};
  for (std::string line; std::getline(in, line);) {
    if (line.find("level=warn") == std::string::npos &&
        line.find("level=error") == std::string::npos)
      continue;
    std::string msg = "?";
    if (auto at = line.find("msg="); at != std::string::npos) {
      auto rest = line.substr(at + 4);
      if (!rest.empty() && rest[0] == '"')
        msg = rest.substr(1, rest.find('"', 1) - 1);
      else
        msg = rest.substr(0, rest.find(' '));
    }
    if (msg == "failed to join cluster" ||
        msg == "unable to join gossip mesh" || msg == "refresh")
      continue;
    auto& e = by_msg[msg];
    if (e.first++ == 0)
      e.second = line.substr(0, 400);
  }
  std::string out;
  for (auto& [msg, e] : by_msg)
    out += "      " + std::to_string(e.first) + " x " + e.second + "\n";
  return out;
}

// ---- Alertmanager ---------------------------------------------------------

/// The alert for item i: labels unique by `id`, as the single-instance
/// comparison sends them.
json am_alert(int i) {
  return {{"labels",
           {{"alertname", "policy.denied"},
            {"agent_id", "agent-7"},
            {"id", "a-" + std::to_string(i)}}},
          {"annotations",
           {{"summary", "agent-7 tried file.delete on /etc"},
            {"action", "file.delete"},
            {"rule", "block-delete"},
            {"receipt_id", "rcpt_123"}}}};
}

struct am_replica {
  std::uint16_t web = 0, gossip = 0;
  std::unique_ptr<daemon_process> process;
  std::string name; ///< its cluster peer name
};

/// A metric from Alertmanager's /metrics, the sum of its series; -1 if
/// absent.
double am_gauge(std::uint16_t port, const std::string& name) {
  http_client c{"127.0.0.1", port};
  auto r = c.request("GET", "/metrics");
  std::istringstream in{r.body};
  double sum = -1;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(name, 0) != 0 || line.size() <= name.size() ||
        (line[name.size()] != ' ' && line[name.size()] != '{'))
      continue;
    sum = std::max(sum, 0.0) + std::stod(line.substr(line.rfind(' ') + 1));
  }
  return sum;
}

/// GET /api/v2/status: (own peer name, peers seen, cluster status).
std::tuple<std::string, std::size_t, std::string>
am_status(std::uint16_t port) {
  http_client c{"127.0.0.1", port};
  auto r = c.request("GET", "/api/v2/status");
  auto j = json::parse(r.body, nullptr, false);
  if (r.status != 200 || !j.is_object() || !j.contains("cluster"))
    return {"", 0, ""};
  auto& cl = j["cluster"];
  return {cl.value("name", ""),
          cl.contains("peers") && cl["peers"].is_array() ? cl["peers"].size()
                                                         : 0,
          cl.value("status", "")};
}

ha_result ha_alertmanager(const options& opt, const fs::path& dir,
                          const test_ca& ca, const pem_files& cert) {
  ha_result h;
  h.setup = "3 replicas, gossip on 127.0.0.1, peer_timeout " +
            opt.peer_timeout + ", group_interval " + opt.group_interval;
  receiver sink{cert, true};
  std::vector<am_replica> replicas(3);
  for (auto& r : replicas) {
    r.web = free_port();
    r.gossip = free_port();
  }
  auto url = "https://127.0.0.1:" + std::to_string(sink.port()) + "/hook";
  for (std::size_t i = 0; i < replicas.size(); ++i) {
    auto rdir = dir / ("am-" + std::to_string(i + 1));
    fs::create_directories(rdir);
    {
      std::ofstream out{rdir / "am.yml"};
      out << "route:\n  receiver: sink\n  group_by: ['...']\n"
          << "  group_wait: 0s\n  group_interval: " << opt.group_interval
          << "\n  repeat_interval: 24h\nreceivers:\n  - name: sink\n"
          << "    webhook_configs:\n      - url: " << url
          << "\n        send_resolved: false\n        http_config:\n"
          << "          tls_config:\n            ca_file: " << ca.ca_file()
          << "\n";
    }
    std::vector<std::string> argv{opt.alertmanager,
                                  "--config.file=" + (rdir / "am.yml").string(),
                                  "--storage.path=" + (rdir / "data").string(),
                                  "--web.listen-address=127.0.0.1:" +
                                      std::to_string(replicas[i].web),
                                  "--cluster.listen-address=127.0.0.1:" +
                                      std::to_string(replicas[i].gossip),
                                  "--cluster.peer-timeout=" + opt.peer_timeout};
    for (std::size_t k = 0; k < replicas.size(); ++k)
      if (k != i)
        argv.push_back("--cluster.peer=127.0.0.1:" +
                       std::to_string(replicas[k].gossip));
    replicas[i].process =
        std::make_unique<daemon_process>(argv, rdir / "alertmanager.log");
    // One after the other: peer names are ULIDs, so the first started is
    // likely position 0; which one is, is read below.
    std::this_thread::sleep_for(50ms);
  }
  // Ready, and each sees all three peers, settled ("ready").
  auto deadline = clock_type::now() + 90s;
  for (auto& r : replicas) {
    for (;;) {
      auto [name, peers, status] = am_status(r.web);
      if (!name.empty() && peers == replicas.size() && status == "ready") {
        r.name = name;
        break;
      }
      if (clock_type::now() > deadline || !r.process->running()) {
        std::cerr << "Alertmanager did not form a settled cluster of 3:\n"
                  << r.process->log().substr(0, 4000);
        return h;
      }
      std::this_thread::sleep_for(200ms);
    }
  }
  // Position 0 (the lowest peer name) sends; kill that one.
  std::size_t victim = 0;
  for (std::size_t i = 1; i < replicas.size(); ++i)
    if (replicas[i].name < replicas[victim].name)
      victim = i;
  h.victim = "replica " + std::to_string(victim + 1) + " (position 0, " +
             replicas[victim].name + ")";

  int items = opt.ha_rate * opt.ha_seconds;
  h.sent = static_cast<std::size_t>(items);
  std::vector<std::array<int, 3>> status(items, {0, 0, 0});
  std::vector<std::uint16_t> ports;
  std::vector<double> cpu_before;
  for (auto& r : replicas) {
    ports.push_back(r.web);
    cpu_before.push_back(cpu_seconds(r.process->pid()));
  }
  std::vector<std::string> bodies(items);
  for (int i = 0; i < items; ++i)
    bodies[i] = json::array({am_alert(i)}).dump();
  auto start = clock_type::now() + 200ms;
  auto kill_at = start + std::chrono::seconds{opt.ha_kill_at};
  std::thread load{[&] {
    paced(items * 3, 3, opt.ha_rate, start, ports, 64,
          [&](int j, std::vector<std::unique_ptr<http_client>>& clients) {
            auto item = j / 3, replica = j % 3;
            auto r = clients[replica]->request(
                "POST", "/api/v2/alerts", bodies[item],
                {{"content-type", "application/json"}});
            status[item][replica] = r.status;
          });
  }};
  // Until the kill: the longest gossip queue (messages not yet sent to
  // the peers: notification log entries, mostly) any replica had.
  double queued_max = 0;
  while (clock_type::now() < kill_at) {
    for (auto& r : replicas)
      queued_max = std::max(
          queued_max, am_gauge(r.web, "alertmanager_cluster_messages_queued"));
    std::this_thread::sleep_until(
        std::min<clock_type::time_point>(kill_at, clock_type::now() + 500ms));
  }
  double victim_cpu =
      cpu_seconds(replicas[victim].process->pid()) - cpu_before[victim];
  replicas[victim].process->kill9();
  // How soon the survivors notice: members down to 2 on both, and one of
  // them at position 0 (which then sends without waiting).
  auto load_end = start + std::chrono::seconds{opt.ha_seconds};
  while (clock_type::now() < load_end && (h.seen_gone < 0 || h.took_over < 0)) {
    bool all_two = true, one_first = false;
    for (std::size_t i = 0; i < replicas.size(); ++i) {
      if (i == victim)
        continue;
      all_two &= am_gauge(replicas[i].web, "alertmanager_cluster_members") == 2;
      one_first |= am_gauge(replicas[i].web, "alertmanager_peer_position") == 0;
    }
    auto t = secs(clock_type::now() - kill_at);
    if (all_two && h.seen_gone < 0)
      h.seen_gone = t;
    if (one_first && h.took_over < 0)
      h.took_over = t;
    std::this_thread::sleep_for(250ms);
  }
  load.join();
  // CPU over the load's window (the victim's until the kill): with
  // group_interval short, every active alert costs on, load or not.
  double cpu = victim_cpu;
  for (std::size_t i = 0; i < replicas.size(); ++i)
    if (i != victim)
      cpu += cpu_seconds(replicas[i].process->pid()) - cpu_before[i];
  wait_quiet(sink, std::chrono::seconds{opt.ha_quiet}, 300s);
  double pruned = 0;
  for (std::size_t i = 0; i < replicas.size(); ++i)
    if (i != victim)
      pruned +=
          std::max(0.0, am_gauge(replicas[i].web,
                                 "alertmanager_cluster_messages_pruned_total"));
  for (std::size_t i = 0; i < replicas.size(); ++i) {
    if (i != victim)
      replicas[i].process->terminate();
    if (auto p = am_problems(replicas[i].process->log()); !p.empty())
      h.problems += "    replica " + std::to_string(i + 1) + ":\n" + p;
  }

  std::vector<clock_type::time_point> due(items);
  std::vector<bool> accepted(items);
  for (int i = 0; i < items; ++i) {
    due[i] = start + std::chrono::duration_cast<clock_type::duration>(
                         std::chrono::duration<double>(
                             i / static_cast<double>(opt.ha_rate)));
    for (int k = 0; k < 3; ++k) {
      ++h.posts;
      if (status[i][k] == 200)
        accepted[i] = true;
      else
        ++h.posts_failed;
    }
    h.accepted += accepted[i] ? 1 : 0;
  }
  auto arrivals = sink.take();
  match(
      h, arrivals, due, accepted,
      [](const arrival& a) {
        std::vector<int> ids;
        auto body = json::parse(a.key, nullptr, false);
        if (body.is_object() && body.contains("alerts") &&
            body["alerts"].is_array())
          for (auto& al : body["alerts"]) {
            auto id = al["labels"].value("id", "");
            if (id.rfind("a-", 0) == 0)
              ids.push_back(std::atoi(id.c_str() + 2));
          }
        return ids;
      },
      kill_at);
  h.cpu_us =
      cpu * 1e6 / static_cast<double>(std::max<std::size_t>(1, h.accepted));
  h.note = std::to_string(arrivals.size()) +
           " notifications received; gossip queue before the kill at most " +
           num(queued_max) + " messages, pruned (survivors) " + num(pruned);
  h.ran = true;
  return h;
}

// ---- tocsin ---------------------------------------------------------------

ha_result ha_tocsin(const options& opt, int round, const fs::path& dir,
                    bench_store& store, const test_ca& ca,
                    const pem_files& cert) {
  ha_result h;
  h.setup = "3 nodes, one PostgreSQL, lease_ttl " +
            std::to_string(opt.lease_ttl) + " s, " +
            std::to_string(opt.ha_endpoints) + " endpoints";
  store.use_new_database("tocsin_ha_r" + std::to_string(round));
  receiver sink{cert, false};
  std::vector<std::unique_ptr<node>> nodes;
  for (int i = 0; i < 3; ++i) {
    node_options no{.id = "n" + std::to_string(i + 1),
                    .lease_ttl = opt.lease_ttl,
                    .endpoints = opt.ha_endpoints,
                    .sink_port = sink.port(),
                    .ca_file = ca.ca_file(),
                    .storage_toml = store.config_toml()};
    nodes.push_back(
        std::make_unique<node>(dir / ("ha-n" + std::to_string(i + 1)), no));
    if (!nodes.back()->wait_started()) {
      std::cerr << "tocsin node " << i + 1 << " did not start:\n"
                << nodes.back()->log();
      return h;
    }
  }
  auto view =
      wait_leases(nodes[0]->port(), store, opt.lease_ttl, 3, opt.ha_endpoints,
                  std::chrono::seconds{2 * opt.lease_ttl + 5});
  // The node holding the most endpoint leases (n1 if nobody says).
  std::size_t victim = 0;
  if (view) {
    std::size_t most = 0;
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      auto it = view->find(nodes[i]->id());
      if (it != view->end() && it->second.size() > most) {
        most = it->second.size();
        victim = i;
      }
    }
  }
  h.victim =
      nodes[victim]->id() + " (leases before: " + describe_leases(view) + ")";

  int items = opt.ha_rate * opt.ha_seconds;
  h.sent = static_cast<std::size_t>(items);
  std::vector<std::uint16_t> ports;
  std::vector<double> cpu_before;
  for (auto& n : nodes) {
    ports.push_back(n->port());
    cpu_before.push_back(n->cpu());
  }
  auto store_cpu_before = store.cpu_seconds();
  std::vector<std::string> bodies(items);
  for (int i = 0; i < items; ++i) {
    auto ev = sample_event("group-" + std::to_string(i % opt.ha_endpoints));
    ev["idempotency_key"] = "k-" + std::to_string(i);
    bodies[i] = ev.dump();
  }
  std::vector<std::string> ids(items);
  std::vector<int> tries(items, 0), failed(items, 0);
  auto start = clock_type::now() + 200ms;
  auto kill_at = start + std::chrono::seconds{opt.ha_kill_at};
  std::thread load{[&] {
    paced(items, 1, opt.ha_rate, start, ports, 64,
          [&](int i, std::vector<std::unique_ptr<http_client>>& clients) {
            // Node i mod 3; without an answer, the next, same key; two
            // rounds at most, 100 ms apart.
            for (int t = 0; t < 6; ++t) {
              if (t == 3)
                std::this_thread::sleep_for(100ms);
              auto k = static_cast<std::size_t>(i + t) % clients.size();
              ++tries[i];
              auto r = clients[k]->request("POST", "/v1/events", bodies[i],
                                           auth_headers());
              if (r.status == 202) {
                auto a = json::parse(r.body, nullptr, false);
                if (a.is_object() && a.contains("ids") && a["ids"].is_array() &&
                    !a["ids"].empty())
                  ids[i] = a["ids"][0].get<std::string>();
                return;
              }
              ++failed[i];
              if (r.status >= 400 && r.status < 500 && r.status != 429)
                return; // the request is wrong: resending will not help
            }
          });
  }};
  std::this_thread::sleep_until(kill_at);
  double victim_cpu = nodes[victim]->cpu() - cpu_before[victim];
  nodes[victim]->kill9();
  // How soon the survivors notice: the victim no longer listed alive, and
  // every endpoint lease held by a survivor.
  auto load_end = start + std::chrono::seconds{opt.ha_seconds};
  auto survivor = nodes[(victim + 1) % nodes.size()]->port();
  while (clock_type::now() < load_end && (h.seen_gone < 0 || h.took_over < 0)) {
    auto v = lease_view(survivor, store, opt.lease_ttl);
    if (!v)
      break;
    auto t = secs(clock_type::now() - kill_at);
    if (!v->count(nodes[victim]->id()) && h.seen_gone < 0)
      h.seen_gone = t;
    std::size_t held = 0;
    for (auto& [id, l] : *v)
      if (id != nodes[victim]->id())
        held += l.size();
    if (held == static_cast<std::size_t>(opt.ha_endpoints) && h.took_over < 0)
      h.took_over = t;
    std::this_thread::sleep_for(250ms);
  }
  load.join();
  // Over the load's window, as for Alertmanager.
  double cpu = victim_cpu + store.cpu_seconds() - store_cpu_before;
  for (std::size_t i = 0; i < nodes.size(); ++i)
    if (i != victim)
      cpu += nodes[i]->cpu() - cpu_before[i];
  wait_quiet(sink, std::chrono::seconds{opt.ha_quiet}, 300s);
  auto after = nodes[(victim + 1) % nodes.size()]->port();
  auto view_after = lease_view(after, store, opt.lease_ttl);
  for (std::size_t i = 0; i < nodes.size(); ++i)
    if (i != victim)
      nodes[i]->stop();

  std::vector<clock_type::time_point> due(items);
  std::vector<bool> accepted(items);
  std::unordered_map<std::string, int> item_of;
  for (int i = 0; i < items; ++i) {
    due[i] = start + std::chrono::duration_cast<clock_type::duration>(
                         std::chrono::duration<double>(
                             i / static_cast<double>(opt.ha_rate)));
    h.posts += static_cast<std::size_t>(tries[i]);
    h.posts_failed += static_cast<std::size_t>(failed[i]);
    h.resent += tries[i] > 1 ? 1 : 0;
    accepted[i] = !ids[i].empty();
    if (accepted[i]) {
      ++h.accepted;
      item_of.emplace(ids[i], i);
    }
  }
  auto arrivals = sink.take();
  std::size_t unknown = 0;
  match(
      h, arrivals, due, accepted,
      [&](const arrival& a) -> std::vector<int> {
        auto it = item_of.find(a.key);
        if (it == item_of.end()) {
          ++unknown;
          return {};
        }
        return {it->second};
      },
      kill_at);
  // Arrivals of ids no 202 named: events a killed node took without an
  // answer reaching the producer and that no resend found (a resend with
  // the same key gets the same id).
  h.unanswered_notified = unknown;
  h.cpu_us =
      cpu * 1e6 / static_cast<double>(std::max<std::size_t>(1, h.accepted));
  h.note = std::to_string(arrivals.size()) +
           " notifications received; "
           "leases after: " +
           describe_leases(view_after);
  h.ran = true;
  return h;
}

void print_ha(const options& opt, const ha_result& am, const ha_result& t) {
  auto row = [](const std::string& label, const std::string& a,
                const std::string& b) {
    std::printf("    %-44s %24s %24s\n", label.c_str(), a.c_str(), b.c_str());
  };
  auto both = [&](const std::string& label, auto&& f) {
    row(label, am.ran ? f(am) : "-", t.ran ? f(t) : "-");
  };
  auto n = [](std::size_t v) { return std::to_string(v); };
  std::printf("\n  %d per second for %d s, SIGKILL at %d s, then until "
              "nothing arrives for %d s\n",
              opt.ha_rate, opt.ha_seconds, opt.ha_kill_at, opt.ha_quiet);
  row("", "Alertmanager 0.25", "tocsin");
  both("alerts / events offered",
       [&](const ha_result& h) { return n(h.sent); });
  both("POSTs made (failed)", [&](const ha_result& h) {
    return n(h.posts) + " (" + n(h.posts_failed) + ")";
  });
  both("resent to another node", [&](const ha_result& h) {
    return &h == &am ? std::string{"-"} : n(h.resent);
  });
  both("accepted (200 / 202 from one at least)",
       [&](const ha_result& h) { return n(h.accepted); });
  both("notified", [&](const ha_result& h) { return n(h.notified); });
  both("lost (accepted, never notified)",
       [&](const ha_result& h) { return n(h.lost); });
  both("duplicated (notified more than once)", [&](const ha_result& h) {
    return n(h.duplicated) + " (+" + n(h.extra) + " notifications)";
  });
  both("notified, never accepted",
       [&](const ha_result& h) { return n(h.unanswered_notified); });
  both("duplicated: due before the kill (last 1 s)", [&](const ha_result& h) {
    return n(h.dup_before_kill) + " (" + n(h.dup_last_second) + ")";
  });
  both("duplicated: 2nd after the 1st p50 / max ms", [&](const ha_result& h) {
    return num(h.dup_gap_p50, 0) + " / " + num(h.dup_gap_max, 0);
  });
  both("due before the kill, notified after",
       [&](const ha_result& h) { return n(h.pending_at_kill); });
  both("latency p50 / p99 / max ms", [&](const ha_result& h) {
    return num(h.p50, 1) + " / " + num(h.p99, 0) + " / " + num(h.max_ms, 0);
  });
  both("due after the kill: p50 / max ms", [&](const ha_result& h) {
    return num(h.after_p50, 1) + " / " + num(h.after_max, 0);
  });
  both("victim seen gone / its work taken over s", [&](const ha_result& h) {
    auto s = [](double v) { return v < 0 ? std::string{"-"} : num(v, 1); };
    return s(h.seen_gone) + " / " + s(h.took_over);
  });
  both("last first notification after the kill s",
       [&](const ha_result& h) { return num(h.last_after_kill, 1); });
  both("CPU per accepted (load window) us",
       [&](const ha_result& h) { return num(h.cpu_us, 0); });
  if (am.ran)
    std::printf("    Alertmanager: %s; killed %s; %s\n", am.setup.c_str(),
                am.victim.c_str(), am.note.c_str());
  if (t.ran)
    std::printf("    tocsin: %s; killed %s; %s\n", t.setup.c_str(),
                t.victim.c_str(), t.note.c_str());
  if (!am.problems.empty())
    std::printf("    Alertmanager's warnings and errors (count x first):\n%s",
                am.problems.c_str());
  std::fflush(stdout);
}

} // namespace

int main(int argc, char** argv) {
  auto opt = parse(argc, argv);
  return exit_code_of([&]() -> int {
    temp_dir dir;
    test_ca ca{dir.path()};
    auto cert = ca.issue("sink", {"localhost"}, {"127.0.0.1"});
    std::unique_ptr<bench_store> store;
    if (opt.needs_postgres())
      store = std::make_unique<bench_store>(
          "postgres", dir.path() / "data", opt.pg_clients,
          opt.pg_statements > 0
              ? std::vector<std::string>{"shared_preload_libraries="
                                         "pg_stat_statements"}
              : std::vector<std::string>{});

    std::printf("tocsin cluster benchmark\n");
    std::printf("  machine: %s, %s RAM\n", machine().c_str(),
                memory_total().c_str());
    std::printf("  command: %s\n", command_line(opt).c_str());
    if (store)
      std::printf("  store:   %s\n", store->description().c_str());
    std::fflush(stdout);
    int code = 0;
    if (opt.part("throughput"))
      code |= part_throughput(opt, dir.path(), *store, ca, cert);

    if (opt.part("ha-alertmanager") || opt.part("ha-tocsin")) {
      std::printf("\nPart 2: one of three killed under load\n");
      std::string am_version = "?";
      if (opt.part("ha-alertmanager")) {
        auto v = run_command({opt.alertmanager, "--version"});
        std::istringstream words{v.out + v.err};
        for (std::string w; words >> w;)
          if (w == "version" && words >> am_version)
            break;
        std::printf("  Alertmanager %s: group_by ['...'], group_wait 0s, "
                    "group_interval %s, repeat_interval 24h, "
                    "peer_timeout %s; every alert to all three\n",
                    am_version.c_str(), opt.group_interval.c_str(),
                    opt.peer_timeout.c_str());
      }
      if (opt.part("ha-tocsin"))
        std::printf("  tocsin: lease_ttl %d s, %d endpoints on the receiver, "
                    "each event to one node (the next on no answer, same "
                    "idempotency key)\n",
                    opt.lease_ttl, opt.ha_endpoints);
      std::fflush(stdout);
      for (int round = 1; round <= opt.rounds; ++round) {
        ha_result am, t;
        auto run_am = [&] {
          if (opt.part("ha-alertmanager"))
            am = ha_alertmanager(
                opt, dir.path() / ("ha-am-" + std::to_string(round)), ca, cert);
        };
        auto run_t = [&] {
          if (opt.part("ha-tocsin")) {
            t = ha_tocsin(opt, round,
                          dir.path() / ("ha-t-" + std::to_string(round)),
                          *store, ca, cert);
            if (!t.ran || t.lost > 0)
              code |= 1;
          }
        };
        if (round % 2 == 1) {
          run_am();
          run_t();
        } else {
          run_t();
          run_am();
        }
        std::printf("  [round %d]", round);
        print_ha(opt, am, t);
      }
    }
    return code;
  });
}
