// The ingest actor: a shell around delivery::intake that answers producers
// and operators once their changes are durable (group commit), hands new
// deliveries to the endpoint actors, and supervises them: it spawns one per
// endpoint (each reads its pending deliveries from the store a page at a
// time), one that dies is started again, and the deliveries of endpoints
// that no longer exist are dead-lettered. Run detached in the daemon: its
// fsyncs block only its own thread.
#pragma once

#include "actors/endpoint_actor.hpp"
#include "actors/messages.hpp"
#include "common/log.hpp"
#include "delivery/intake.hpp"

#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

namespace tocsin::actors {

struct ingest_state {
  std::optional<delivery::intake> intake;
  actor_deps deps;
  /// The endpoint actors, by endpoint id, with the settings they run with
  /// (to start one again the same way).
  std::map<std::string, std::pair<endpoint_actor, delivery::endpoint_config>>
      endpoints;
  /// Actors of deleted endpoints, finishing their attempts in flight.
  std::vector<endpoint_actor> retired;
  /// Answered after the next commit.
  std::vector<std::pair<caf::typed_response_promise<ingest_reply>,
                        delivery::ingest_answer>>
      waiting;
  std::vector<std::pair<caf::typed_response_promise<replay_reply>, std::size_t>>
      waiting_replays;
  std::vector<std::pair<caf::typed_response_promise<answer_reply>,
                        delivery::answer_outcome>>
      waiting_answers;
  bool flush_scheduled = false;
  log::throttle refusals_log; ///< a store refusing writes: not every time

  /// Cluster mode: the endpoints of the whole cluster (those this node
  /// drives are in `endpoints` too, with the epochs of their leases), the
  /// membership actor to tell of endpoints that come and go and of leases
  /// lost, and the escalation lease when this node holds it.
  bool clustered = false;
  std::map<std::string, delivery::endpoint_config> all_endpoints;
  /// Endpoints deleted (here, on another node, or before the start) that
  /// may have left pending deliveries: leases too, so that the node that
  /// takes one dead-letters what is left.
  std::set<std::string> orphans;
  /// Deliveries this node handed to its own endpoint actors at commit: the
  /// log brings them back (as news for the whole cluster) and they are not
  /// read again.
  std::unordered_set<std::string> handed_here;
  std::map<std::string, std::uint64_t> epochs;
  caf::actor membership;
  std::optional<storage::lease_grant> escalating;

  static inline const char* name = "tocsin.ingest";
};

/// Spawns an actor for each of `endpoints`, and one to dead-letter the
/// pending deliveries of each endpoint the store knows and `endpoints` does
/// not.
ingest_actor::behavior_type
ingest_actor_fn(ingest_actor::stateful_pointer<ingest_state> self,
                std::vector<delivery::endpoint_config> endpoints,
                actor_deps deps);

/// The same as one node of a cluster: it spawns no endpoint actor until
/// the membership actor says this node holds the endpoint's lease (own),
/// and tells `membership` (names_atom) which endpoints exist.
ingest_actor::behavior_type
clustered_ingest_actor_fn(ingest_actor::stateful_pointer<ingest_state> self,
                          std::vector<delivery::endpoint_config> endpoints,
                          actor_deps deps, caf::actor membership);

} // namespace tocsin::actors
