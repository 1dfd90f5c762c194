#include "delivery/own_records.hpp"

#include "common/event_types.hpp"
#include "common/ids.hpp"
#include "delivery/event_content.hpp"

namespace tocsin::delivery {

new_event own_event(std::string type, std::string severity,
                    std::string agent_id, std::string summary,
                    const std::string& details_json, unix_ms now,
                    std::size_t max_payload_bytes) {
  new_event ev;
  ev.id = new_id("evt");
  ev.type = std::move(type);
  ev.severity = severity_rank(severity).value_or(0);
  ev.severity_name = std::move(severity);
  ev.agent_id = std::move(agent_id);
  ev.summary = std::move(summary);
  ev.timestamp = format_rfc3339(now);
  write_body(ev, details_json, max_payload_bytes);
  return ev;
}

storage::delivery new_delivery(const std::string& event_id,
                               const std::string& endpoint_id, unix_ms now) {
  storage::delivery d;
  d.id = new_id("dlv");
  d.event_id = event_id;
  d.endpoint_id = endpoint_id;
  d.created_at = now;
  d.next_attempt_at = now;
  return d;
}

} // namespace tocsin::delivery
