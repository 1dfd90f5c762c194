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

/// The fields (type, severity, agent_id, summary, timestamp, audit_url) are
/// the ones stored beside the event's body.
struct event_content : storage::event_fields {
  std::string id;
  /// The normalized event JSON, cut to the payload limit
  /// (transports/payload.hpp): what the webhook transport sends.
  std::string payload;
};

/// The normalized JSON body of an event (the payload of DESIGN.md, in its
/// field order) from its fields and its `details` (a JSON object's text),
/// and the payload cut to `max_payload_bytes` when the body is over it: what
/// validation makes of a producer's event and what tocsin writes for the
/// events it raises itself. Sets e.body and e.payload.
void write_body(new_event& e, std::string_view details_json,
                std::size_t max_payload_bytes);

/// The fields of an event just validated, as they are stored and formatted.
storage::event_fields fields_of(const new_event& e);

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
