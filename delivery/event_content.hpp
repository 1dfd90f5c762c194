// An accepted event as transports see it: the fields a plugin formats, and
// the normalized JSON (cut to the payload limit). Built once per event and
// shared by all its deliveries. Free of CAF.
#pragma once

#include "delivery/new_event.hpp"
#include "storage/records.hpp"

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace tocsin::delivery {

struct event_content {
  std::string id;
  std::string type;
  std::string severity;
  std::string agent_id;
  std::string summary;
  std::string timestamp;
  std::string audit_url;
  /// The normalized event JSON, cut to the payload limit
  /// (transports/payload.hpp): what the webhook transport sends.
  std::string payload;
};

/// From an event's stored JSON body (as validated at acceptance).
std::shared_ptr<const event_content>
make_event_content(std::string_view body, std::size_t max_payload_bytes);

/// From a stored event: its fields as stored beside the body, or parsed from
/// the body in records of older versions.
std::shared_ptr<const event_content>
make_event_content(const storage::event_record& e,
                   std::size_t max_payload_bytes);

/// From an event just validated: its fields are at hand, nothing is parsed.
std::shared_ptr<const event_content>
make_event_content(const new_event& e, std::size_t max_payload_bytes);

} // namespace tocsin::delivery
