// Cluster mode end to end: several real tocsin processes (a daemon_fixture
// each: a data_dir, an API port and a node_id of its own) over ONE
// PostgreSQL database and one config, the same endpoints, and one HTTPS
// receiver that every node reaches (an endpoint's URL is
// https://127.0.0.1:<port>/<endpoint id>). What the tests read back: who
// drives what (GET /v1/cluster), a ledger of what the receiver got, and
// producers posting round-robin to the nodes.
#pragma once

#include "common/time.hpp"
#include "tests/e2e/fixture.hpp"

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace tocsin::test {

using clock_type = std::chrono::steady_clock;

// ---- What the receiver got -------------------------------------------------

/// The receiver's requests by endpoint (the request's path without its
/// slash) and event (webhook-id).
struct ledger {
  /// Requests per (endpoint, webhook-id).
  std::map<std::pair<std::string, std::string>, std::size_t> times;
  /// Per endpoint, the webhook-ids in order of arrival (repeats included).
  std::map<std::string, std::vector<std::string>> arrivals;
  /// Every webhook-id that arrived at some endpoint.
  std::set<std::string> delivered;
  std::size_t requests = 0;
  /// Requests whose signature did not verify with test_secret.
  std::size_t unsigned_requests = 0;

  /// Requests beyond the first of their (endpoint, event).
  std::size_t duplicates() const;
  /// The (endpoint, event) pairs that arrived more than once.
  std::vector<std::pair<std::string, std::string>> repeated() const;
  /// The ids of `accepted` that never arrived.
  std::vector<std::string>
  missing(const std::vector<std::string>& accepted) const;
};

ledger ledger_of(const https_receiver& r);

// ---- Who drives what -------------------------------------------------------

struct node_view {
  std::string id;
  std::string listen;
  unix_ms heartbeat_at = 0;
  bool alive = false;
  bool escalation = false;
  std::vector<std::string> endpoints;
};

/// One answer of GET /v1/cluster.
struct cluster_view {
  std::string node;    ///< the node that answered
  std::string backend; ///< "postgres" or "rocksdb"
  std::vector<node_view> nodes;
  std::string text; ///< the answer as it came (for messages)

  /// The alive nodes that list `endpoint`.
  std::vector<std::string> holders(const std::string& endpoint) const;
  /// The alive node that holds `endpoint` when exactly one does; else empty.
  std::string owner(const std::string& endpoint) const;
  /// The endpoints `node` holds (none if it is not listed).
  std::vector<std::string> held_by(const std::string& node) const;
  /// The alive node holding the escalation lease; empty if none.
  std::string escalation_holder() const;
  const node_view* find(const std::string& id) const;
};

/// GET /v1/cluster of `via` (its admin token); nothing unless 200.
std::optional<cluster_view> view_of(daemon_fixture& via);

// ---- The nodes -------------------------------------------------------------

/// `n` endpoints ep0..ep<n-1>, endpoint i taking the events of agent "a<i>"
/// only (so a batch of one event per agent gives each one event), with a
/// retry schedule long enough that nothing dies in a test.
std::vector<endpoint_spec> spread_endpoints(int n);

struct cluster_options {
  /// The one database of every node.
  std::string postgres_url;
  /// cluster.lease_ttl (seconds).
  double lease_ttl = 3;
  /// Their url: empty for the receiver's (url_of(id)).
  std::vector<endpoint_spec> endpoints = {};
  /// [delivery] lines of every node.
  std::string delivery_extra = "max_in_flight = 4\n";
  /// [server] lines of every node.
  std::string server_extra = {};
  /// Config after [cluster] (e.g. [[escalation]] tables).
  std::string extra = {};
  /// The receiver's answers (default 200 "ok").
  responder respond = {};
};

class cluster_fixture {
public:
  explicit cluster_fixture(cluster_options o);
  /// Resumes what is paused and stops every node still running (SIGTERM,
  /// one after the other).
  ~cluster_fixture();
  cluster_fixture(const cluster_fixture&) = delete;
  cluster_fixture& operator=(const cluster_fixture&) = delete;

  /// Starts a node named `id` on the shared config and database.
  daemon_fixture& start_node(const std::string& id);
  daemon_fixture& node(const std::string& id);
  /// The nodes in the order they were started.
  std::vector<std::string> node_ids() const;
  std::vector<daemon_fixture*> nodes();

  https_receiver& receiver() { return *receiver_; }
  /// https://127.0.0.1:<receiver's port>/<endpoint>.
  std::string url_of(const std::string& endpoint) const;
  /// The ids of the configured endpoints.
  std::vector<std::string> endpoint_ids() const;
  const cluster_options& options() const { return opts_; }
  std::chrono::milliseconds lease_ttl() const;

  void kill9(const std::string& id);
  /// SIGSTOP and SIGCONT.
  void pause(const std::string& id);
  void resume(const std::string& id);
  /// SIGTERM without waiting for the exit.
  void sigterm(const std::string& id);

  /// Polls GET /v1/cluster of `via` until `done` says yes; that view. Fails
  /// the test with `what`, the last view and the ends of the nodes' logs
  /// after `limit`.
  cluster_view wait_view(daemon_fixture& via,
                         const std::function<bool(const cluster_view&)>& done,
                         std::chrono::milliseconds limit,
                         const std::string& what);
  /// Waits until `via` says every configured endpoint (or those of
  /// `which`) is held by exactly one alive node, none in `not_by`.
  cluster_view wait_owned(daemon_fixture& via, std::chrono::milliseconds limit,
                          const std::string& what,
                          const std::set<std::string>& not_by = {},
                          const std::vector<std::string>& which = {});
  /// Waits until `via` says every configured endpoint is held by exactly
  /// one alive node and each running node holds at least one (with at
  /// least as many endpoints as nodes: the placement's bounded load).
  cluster_view wait_balanced(daemon_fixture& via,
                             std::chrono::milliseconds limit,
                             const std::string& what);
  /// Whether `v` shows each of `which` (all configured endpoints: empty)
  /// held by exactly one alive node, none in `not_by`.
  bool owned(const cluster_view& v, const std::set<std::string>& not_by = {},
             const std::vector<std::string>& which = {}) const;

  /// The end of every node's log, for a failure message.
  std::string logs(std::size_t per_node = 3000);

private:
  cluster_options opts_;
  daemon_fixture ca_holder_; ///< never started: the CA and receiver cert
  std::unique_ptr<https_receiver> receiver_;
  std::vector<endpoint_spec> endpoints_;
  std::vector<std::pair<std::string, std::unique_ptr<daemon_fixture>>> nodes_;
  std::set<pid_t> paused_;
};

/// The nodes' attempts of event `id`, oldest first, as `via` reads them
/// (GET /v1/events/{id}): each attempt's "node".
std::vector<std::string> attempt_nodes(daemon_fixture& via,
                                       const std::string& id);

/// Milliseconds since `t`.
long ms_since(clock_type::time_point t);

// ---- Producers -------------------------------------------------------------

/// One answer to a producer's POST /v1/events.
struct posted {
  std::size_t node = 0; ///< index into the nodes given to the producers
  clock_type::time_point sent, answered;
  int status = 0;
  std::size_t events = 0; ///< ids in a 202
  std::string code;       ///< a 503's error code
  bool retry_after = false;
  std::string text; ///< what came back, for anything but 202 and 503
};

/// Threads posting batches (one event per agent of `agents`) round-robin to
/// the nodes as fast as they are answered, with `pause` after each, every
/// answer kept. Ports and tokens are read when made.
class producers {
public:
  producers(const std::vector<daemon_fixture*>& nodes, int threads,
            std::vector<std::string> agents, std::chrono::milliseconds pause);
  ~producers() { stop(); }
  producers(const producers&) = delete;
  producers& operator=(const producers&) = delete;

  void stop();
  /// No more requests to node `i` (a node the test killed).
  void avoid(std::size_t i) { *avoided_.at(i) = true; }

  /// Events answered 202.
  std::size_t accepted() const;
  std::vector<std::string> accepted_ids() const;
  std::vector<posted> answers() const;
  /// Events answered 202 to requests sent after `t` (by node `i`, or any).
  std::size_t accepted_after(clock_type::time_point t,
                             std::optional<std::size_t> i = {}) const;
  /// The fewest 503s a node has answered.
  std::size_t fewest_refusals() const;

private:
  void run(int t);

  struct target {
    std::uint16_t port;
    std::string token;
  };
  std::vector<target> targets_;
  std::vector<std::string> agents_;
  std::chrono::milliseconds pause_;
  std::vector<std::unique_ptr<std::atomic<bool>>> avoided_;
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
  mutable std::mutex mtx_;
  std::vector<std::string> ids_;
  std::vector<posted> answers_;
};

} // namespace tocsin::test
