// The ingest actor: routes accepted events to endpoints, logs events and their
// new deliveries with one synced write for everything that arrived meanwhile
// (group commit), answers the producers, then hands the deliveries over.
// Runs detached: its fsyncs block only its own thread.
#pragma once

#include "actors/messages.hpp"
#include "delivery/endpoint_config.hpp"
#include "net/https_client.hpp"
#include "storage/event_log.hpp"

#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <caf/all.hpp>

namespace tocsin::actors {

struct route {
  std::string endpoint_id;
  delivery::endpoint_filter filter;
  caf::actor endpoint;
  bool enabled = true;
  std::int64_t revision = 1;
};

struct ingest_state {
  storage::event_log* log = nullptr;
  net::https_client* client = nullptr; ///< for endpoints it spawns
  std::vector<route> routes;
  /// Actors of deleted endpoints, finishing their attempts in flight.
  std::vector<caf::actor> retired;
  std::size_t max_payload_bytes = 4096;
  // Accumulated since the last flush.
  storage::write_set batch;
  storage::write_set created; ///< scratch: deliveries of the event at hand
  std::vector<ingest_request> waiting; ///< answered after the flush
  std::vector<std::pair<std::size_t, replay_callback>> waiting_replays;
  std::unordered_set<std::string> replaying; ///< replayed in this batch
  /// Idempotency keys recorded in the batch not yet flushed.
  std::unordered_map<std::string, storage::idempotency_record> pending_keys;
  /// New deliveries per route (index into routes), handed over after the flush.
  std::vector<std::vector<delivery_job>> handoff;
  bool flush_scheduled = false;

  static inline const char* name = "tocsin.ingest";
};

/// Messages: (ingest_atom, ingest_request), (replay_atom, replay_request),
/// (endpoint_atom, endpoint_change_request), (endpoints_atom) -> every
/// endpoint actor. Replays and endpoint changes go through here too: they
/// are logged with a synced write before they take effect, and the routing
/// table has one owner.
caf::behavior ingest_actor(caf::stateful_actor<ingest_state>* self,
                           storage::event_log* log, net::https_client* client,
                           std::vector<route> routes,
                           std::size_t max_payload_bytes);

} // namespace tocsin::actors
