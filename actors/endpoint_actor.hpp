// One actor per endpoint: its mailbox holds deliveries for that endpoint; it
// keeps their backoff timers, bounds the requests in flight, logs each
// attempt before it starts and each outcome before it takes effect.
#pragma once

#include "actors/messages.hpp"
#include "delivery/endpoint_config.hpp"
#include "net/https_client.hpp"
#include "storage/event_log.hpp"

#include <deque>
#include <random>
#include <unordered_map>
#include <vector>

#include <caf/all.hpp>

namespace tocsin::actors {

struct endpoint_state {
  delivery::endpoint_config config;
  storage::event_log* log = nullptr;
  net::https_client* client = nullptr;
  /// Due, awaiting a slot (ordered endpoints: every queued delivery, in
  /// order, due or not).
  std::deque<delivery_job> ready;
  std::unordered_map<std::string, delivery_job> waiting;   ///< backing off
  std::unordered_map<std::string, delivery_job> in_flight; ///< attempt running
  /// Outcomes decided but not yet in the log; they take effect after the
  /// flush that writes them (one write for all outcomes of a mailbox burst).
  storage::write_set outcomes;
  std::vector<delivery_job> settled;
  bool flush_scheduled = false;
  std::mt19937_64 rng{std::random_device{}()};
  bool flagged = false;  ///< answered 410 Gone
  bool draining = false; ///< shutting down: start no new attempts
  bool removed = false;  ///< endpoint deleted: quit once nothing is in flight
  delivery::token_bucket bucket;
  delivery::circuit_breaker breaker;
  unix_ms tick_at = 0; ///< when a tick (pump again) is due; 0: none pending

  static inline const char* name = "tocsin.endpoint";
};

/// Messages: (deliver_atom, std::vector<delivery_job>), (retry_atom, id),
/// (done_atom, id, inbound_response), (flush_atom), (drain_atom) -> in-flight
/// count, (update_atom, endpoint_config): new settings for the next attempts,
/// (tick_atom): a rate-limit token, a breaker probe or an ordered head is
/// due, (remove_atom): the endpoint was deleted; every queued delivery is
/// dead-lettered "endpoint_deleted", attempts in flight finish (a success
/// counts), then the actor quits.
caf::behavior endpoint_actor(caf::stateful_actor<endpoint_state>* self,
                             delivery::endpoint_config config,
                             storage::event_log* log,
                             net::https_client* client);

} // namespace tocsin::actors
