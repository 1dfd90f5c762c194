// The kinds of records in the event log: one enumerator per state change
// tocsin makes. Their names ("attempt.started") are what the log stores and
// what readers of the log (the fold, the live stream) see.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace tocsin::storage {

enum class record_kind : std::uint8_t {
  event_accepted,
  idempotency_recorded,
  delivery_created,
  attempt_started,
  attempt_finished,
  attempt_interrupted,
  delivery_delivered,
  delivery_retry_scheduled,
  delivery_dead_lettered,
  delivery_replayed,
  endpoint_created,
  endpoint_updated,
  endpoint_secret_rotated,
  endpoint_deleted,
  endpoint_flagged,
  endpoint_circuit_opened,
  endpoint_circuit_closed,
  event_acknowledged,
  event_resolved,
  event_escalated,
};

/// The stored name, e.g. "delivery.dead_lettered".
std::string_view to_string(record_kind k);
std::optional<record_kind> record_kind_from(std::string_view name);

/// Records of these kinds carry the delivery's latest attempt.
constexpr bool carries_attempt(record_kind k) {
  return k == record_kind::attempt_started ||
         k == record_kind::attempt_finished ||
         k == record_kind::attempt_interrupted;
}

} // namespace tocsin::storage
