#include "api/event_validation.hpp"

#include "delivery/event_content.hpp"

#include "common/encoding.hpp"
#include "common/event_types.hpp"
#include "common/ids.hpp"
#include "common/json_parse.hpp"
#include "common/url.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

namespace tocsin::api {

namespace {

using json = nlohmann::json;

error invalid(std::string field, std::string message,
              std::string code = "invalid_field") {
  return error{std::move(code), std::move(message), std::move(field)};
}

std::size_t code_points(std::string_view s) {
  std::size_t n = 0;
  for (unsigned char c : s)
    n += (c & 0xC0) != 0x80;
  return n;
}

status check_string(const json& ev, const char* key, const std::string& field,
                    bool required, std::size_t max_len) {
  auto it = ev.find(key);
  if (it == ev.end() || it->is_null()) {
    if (required)
      return invalid(field, std::string{key} + " is required", "missing_field");
    return {};
  }
  if (!it->is_string())
    return invalid(field, std::string{key} + " must be a string");
  auto len = code_points(it->get_ref<const std::string&>());
  if (len < 1 || len > max_len)
    return invalid(field, std::string{key} + " must be 1 to " +
                              std::to_string(max_len) + " characters");
  return {};
}

std::string fill_template(const std::string& tmpl, const std::string& receipt) {
  constexpr std::string_view placeholder = "{receipt_id}";
  auto out = tmpl;
  for (auto pos = out.find(placeholder); pos != std::string::npos;
       pos = out.find(placeholder, pos + receipt.size()))
    out.replace(pos, placeholder.size(), receipt);
  return out;
}

result<delivery::new_event> validate_one(const json& ev,
                                         const std::string& where,
                                         const validation_options& opts) {
  auto field = [&](std::string_view name) {
    return where.empty() ? std::string{name} : where + "." + std::string{name};
  };
  if (!ev.is_object())
    return invalid(where.empty() ? "" : where,
                   "an event must be a JSON object");
  static constexpr std::string_view known[] = {
      "type",      "agent_id", "summary", "severity",
      "timestamp", "details",  "links",   "idempotency_key"};
  for (auto& [k, v] : ev.items())
    if (std::find(std::begin(known), std::end(known), k) == std::end(known))
      return invalid(field(k), "unknown field '" + k + "'", "unknown_field");

  TOCSIN_TRY(check_string(ev, "type", field("type"), true, 64));
  auto type = ev["type"].get<std::string>();
  if (!is_event_type(type))
    return invalid(field("type"), "unknown event type '" + type + "'");
  bool agent_required = type != "system.health";
  TOCSIN_TRY(
      check_string(ev, "agent_id", field("agent_id"), agent_required, 256));
  TOCSIN_TRY(check_string(ev, "summary", field("summary"), true, 1024));
  TOCSIN_TRY(check_string(ev, "severity", field("severity"), false, 16));
  TOCSIN_TRY(check_string(ev, "timestamp", field("timestamp"), false, 64));
  if (auto it = ev.find("idempotency_key"); it != ev.end() && !it->is_null())
    if (!it->is_string() ||
        !is_valid_idempotency_key(it->get_ref<const std::string&>()))
      return invalid(field("idempotency_key"),
                     "idempotency_key must be 1 to 256 printable ASCII "
                     "characters without spaces");

  std::string severity{default_severity(type)};
  if (auto it = ev.find("severity"); it != ev.end() && !it->is_null()) {
    severity = it->get<std::string>();
    if (!severity_rank(severity))
      return invalid(
          field("severity"),
          "severity must be one of critical, high, medium, low, info");
  }
  unix_ms timestamp = opts.now;
  if (auto it = ev.find("timestamp"); it != ev.end() && !it->is_null()) {
    auto t = parse_rfc3339(it->get_ref<const std::string&>());
    if (!t)
      return invalid(field("timestamp"), "timestamp must be RFC 3339");
    timestamp = *t;
  }
  const json* details = nullptr;
  if (auto it = ev.find("details"); it != ev.end() && !it->is_null()) {
    if (!it->is_object())
      return invalid(field("details"), "details must be an object");
    details = &*it;
    // tocsin's own escalations carry it; a producer's would pass for one
    // (and suppress the rule it names).
    if (details->contains("escalation"))
      return invalid(field("details.escalation"),
                     "details.escalation is reserved for the events tocsin "
                     "derives from escalation rules",
                     "reserved_field");
    for (const char* k : {"action", "rule", "receipt_id"})
      if (auto d = details->find(k); d != details->end() && !d->is_string())
        return invalid(field("details." + std::string{k}),
                       std::string{k} + " must be a string");
  }
  std::string audit;
  if (auto it = ev.find("links"); it != ev.end() && !it->is_null()) {
    if (!it->is_object())
      return invalid(field("links"), "links must be an object");
    for (auto& [k, v] : it->items()) {
      if (k != "audit")
        return invalid(field("links." + k), "unknown field 'links." + k + "'",
                       "unknown_field");
      if (!v.is_string())
        return invalid(field("links.audit"), "links.audit must be a string");
      auto u = parse_url(v.get_ref<const std::string&>());
      if (!u || v.get_ref<const std::string&>().size() > 1024)
        return invalid(field("links.audit"),
                       "links.audit must be an absolute http(s) URL of at most "
                       "1024 characters");
      audit = v.get<std::string>();
    }
  }
  if (audit.empty() && !opts.audit_url_template.empty() && details)
    if (auto r = details->find("receipt_id"); r != details->end())
      audit = fill_template(opts.audit_url_template,
                            r->get_ref<const std::string&>());

  delivery::new_event out;
  out.id = new_id("evt");
  out.type = type;
  out.severity = *severity_rank(severity);
  if (auto it = ev.find("agent_id"); it != ev.end() && it->is_string())
    out.agent_id = it->get<std::string>();
  if (auto it = ev.find("idempotency_key"); it != ev.end() && it->is_string()) {
    out.idempotency_key = it->get<std::string>();
    // What the key covers: the event as sent, keys sorted (json is a map).
    out.idempotency_digest = hex_encode(sha256(ev.dump()));
  }
  out.severity_name = severity;
  out.summary = ev["summary"].get<std::string>();
  out.timestamp = format_rfc3339(timestamp);
  out.audit_url = audit;
  // Written straight out (no second document): `details` as parsed, its
  // keys sorted at every level.
  delivery::write_body(out, details ? details->dump() : std::string{"{}"},
                       opts.max_payload_bytes);
  return out;
}

} // namespace

bool is_valid_idempotency_key(std::string_view key) {
  return !key.empty() && key.size() <= 256 &&
         std::all_of(key.begin(), key.end(),
                     [](unsigned char c) { return c > 0x20 && c < 0x7f; });
}

result<delivery::ingest_batch> validate_events(std::string_view body,
                                               const validation_options& opts) {
  if (!is_valid_utf8(body))
    return error{"invalid_utf8", "the request body is not valid UTF-8", ""};
  json doc;
  std::string why;
  if (!parse_json(body, doc, &why))
    return error{"invalid_json", "the request body is not valid JSON: " + why,
                 ""};
  if (!doc.is_object())
    return error{"invalid_json",
                 "the body must be an event object or {\"events\": [...]}", ""};
  delivery::ingest_batch out;
  if (opts.digest_request)
    out.idempotency_digest = hex_encode(sha256(doc.dump()));
  if (auto it = doc.find("events"); it != doc.end()) {
    if (doc.size() != 1)
      for (auto& [k, v] : doc.items())
        if (k != "events")
          return invalid(k, "unknown field '" + k + "' next to events",
                         "unknown_field");
    if (!it->is_array())
      return invalid("events", "events must be an array");
    if (it->empty())
      return invalid("events", "events must hold at least one event");
    if (it->size() > max_batch_events)
      return invalid("events",
                     "a batch holds at most " +
                         std::to_string(max_batch_events) + " events",
                     "batch_too_large");
    out.is_batch = true;
    out.events.reserve(it->size());
    for (std::size_t i = 0; i < it->size(); ++i) {
      auto ev =
          validate_one((*it)[i], "events[" + std::to_string(i) + "]", opts);
      if (!ev)
        return ev.error();
      out.events.push_back(std::move(*ev));
    }
    return out;
  }
  auto ev = validate_one(doc, "", opts);
  if (!ev)
    return ev.error();
  out.events.push_back(std::move(*ev));
  return out;
}

} // namespace tocsin::api
