#include "storage/record_kind.hpp"

#include <array>
#include <utility>

namespace tocsin::storage {

namespace {

constexpr std::array<std::pair<record_kind, std::string_view>, 20> names{{
    {record_kind::event_accepted, "event.accepted"},
    {record_kind::idempotency_recorded, "idempotency.recorded"},
    {record_kind::delivery_created, "delivery.created"},
    {record_kind::attempt_started, "attempt.started"},
    {record_kind::attempt_finished, "attempt.finished"},
    {record_kind::attempt_interrupted, "attempt.interrupted"},
    {record_kind::delivery_delivered, "delivery.delivered"},
    {record_kind::delivery_retry_scheduled, "delivery.retry_scheduled"},
    {record_kind::delivery_dead_lettered, "delivery.dead_lettered"},
    {record_kind::delivery_replayed, "delivery.replayed"},
    {record_kind::endpoint_created, "endpoint.created"},
    {record_kind::endpoint_updated, "endpoint.updated"},
    {record_kind::endpoint_secret_rotated, "endpoint.secret_rotated"},
    {record_kind::endpoint_deleted, "endpoint.deleted"},
    {record_kind::endpoint_flagged, "endpoint.flagged"},
    {record_kind::endpoint_circuit_opened, "endpoint.circuit_opened"},
    {record_kind::endpoint_circuit_closed, "endpoint.circuit_closed"},
    {record_kind::event_acknowledged, "event.acknowledged"},
    {record_kind::event_resolved, "event.resolved"},
    {record_kind::event_escalated, "event.escalated"},
}};

} // namespace

std::string_view to_string(record_kind k) {
  for (auto& [kind, name] : names)
    if (kind == k)
      return name;
  return "unknown";
}

std::optional<record_kind> record_kind_from(std::string_view name) {
  for (auto& [kind, n] : names)
    if (n == name)
      return kind;
  return std::nullopt;
}

} // namespace tocsin::storage
