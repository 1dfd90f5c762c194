// Events and deliveries tocsin makes itself: an escalation, an endpoint's
// health, a notice of an answer.
#pragma once

#include "common/time.hpp"
#include "delivery/new_event.hpp"
#include "storage/records.hpp"

#include <cstddef>
#include <string>

namespace tocsin::delivery {

/// An event tocsin raises itself: the body a producer's event would have
/// after validation (api/event_validation.cpp), in the same field order.
new_event own_event(std::string type, std::string severity,
                    std::string agent_id, std::string summary,
                    const std::string& details_json, unix_ms now,
                    std::size_t max_payload_bytes);

/// A new delivery of `event_id` to `endpoint_id`, due now.
storage::delivery new_delivery(const std::string& event_id,
                               const std::string& endpoint_id, unix_ms now);

} // namespace tocsin::delivery
