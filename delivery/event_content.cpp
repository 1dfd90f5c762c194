#include "delivery/event_content.hpp"

#include "common/json_parse.hpp"
#include "common/json_writer.hpp"
#include "delivery/payload.hpp"

#include <nlohmann/json.hpp>

namespace tocsin::delivery {

void write_body(new_event& e, std::string_view details_json,
                std::size_t max_payload_bytes) {
  json_writer body;
  body.begin_object()
      .field("id", e.id)
      .field("type", e.type)
      .field("timestamp", e.timestamp);
  if (!e.agent_id.empty())
    body.field("agent_id", e.agent_id);
  body.field("severity", e.severity_name).field("summary", e.summary);
  body.key("details").raw(details_json);
  if (!e.audit_url.empty())
    body.key("links").begin_object().field("audit", e.audit_url).end_object();
  e.body = body.end_object().take();
  e.payload.clear();
  if (e.body.size() > max_payload_bytes)
    e.payload = fit_payload(e.body, max_payload_bytes);
}

std::shared_ptr<const event_content>
make_event_content(std::string_view body, std::size_t max_payload_bytes) {
  auto c = std::make_shared<event_content>();
  c->payload = delivery::fit_payload(body, max_payload_bytes);
  // The body was validated and normalized at acceptance; a field that is
  // missing here stays empty rather than failing the delivery.
  nlohmann::json j;
  if (!parse_json(body, j, nullptr, stored_json_limits))
    j = nullptr;
  auto text = [&](const nlohmann::json& obj, const char* key) {
    auto it = obj.find(key);
    return it != obj.end() && it->is_string() ? it->get<std::string>()
                                              : std::string{};
  };
  if (j.is_object()) {
    c->id = text(j, "id");
    c->type = text(j, "type");
    c->severity = text(j, "severity");
    c->agent_id = text(j, "agent_id");
    c->summary = text(j, "summary");
    c->timestamp = text(j, "timestamp");
    if (auto links = j.find("links"); links != j.end() && links->is_object())
      c->audit_url = text(*links, "audit");
  }
  return c;
}

std::shared_ptr<const event_content>
make_event_content(const storage::event_record& e,
                   std::size_t max_payload_bytes) {
  if (!e.fields)
    return make_event_content(e.body, max_payload_bytes);
  auto c = std::make_shared<event_content>();
  static_cast<storage::event_fields&>(*c) = *e.fields;
  c->id = e.id;
  c->payload = delivery::fit_payload(e.body, max_payload_bytes);
  return c;
}

storage::event_fields fields_of(const new_event& e) {
  return {e.type,    e.severity_name, e.agent_id,
          e.summary, e.timestamp,     e.audit_url};
}

std::shared_ptr<const event_content>
make_event_content(const new_event& e, std::size_t max_payload_bytes) {
  auto c = std::make_shared<event_content>();
  static_cast<storage::event_fields&>(*c) = fields_of(e);
  c->id = e.id;
  // Cut at validation when it was over the limit (see new_event::payload).
  c->payload = !e.payload.empty()
                   ? e.payload
                   : delivery::fit_payload(e.body, max_payload_bytes);
  return c;
}

} // namespace tocsin::delivery
