// Events: POST /v1/events (one or a batch), GET /v1/events (filtered,
// paged), GET /v1/events/{id}, POST /v1/events/{id}/ack|resolve.
#include "api/handler.hpp"

#include "api/routes/shared.hpp"
#include "common/encoding.hpp"
#include "common/event_types.hpp"
#include "common/ids.hpp"
#include "common/json_parse.hpp"
#include "common/log.hpp"
#include "common/metric_families.hpp"

#include <charconv>

namespace tocsin::api {

using namespace shared;

namespace {

/// The 202 of POST /v1/events: the ids, the deliveries made, and per event
/// how many, with a warning for each event that no endpoint matched (it is
/// stored, and delivered nowhere).
json accepted_json(const delivery::ingest_answer& a) {
  json events = json::array();
  json warnings = json::array();
  for (std::size_t i = 0; i < a.ids.size(); ++i) {
    auto e = i < a.events.size() ? a.events[i] : delivery::accepted_event{};
    auto& id = a.ids[i];
    events.push_back(
        json{{"id", id}, {"deliveries", e.deliveries}, {"repeat", e.repeat}});
    if (e.deliveries == 0 && !e.repeat)
      warnings.push_back(json{{"code", "no_endpoint_matched"},
                              {"message", "event " + id +
                                              " matched no endpoint: it is "
                                              "stored and delivered nowhere"},
                              {"event_id", id}});
  }
  json body{{"ids", a.ids},
            {"deliveries", a.deliveries},
            {"events", std::move(events)}};
  if (!warnings.empty())
    body["warnings"] = std::move(warnings);
  return body;
}

} // namespace

void request_handler::post_events(call& c) {
  auto& req = c.req;
  static auto& ingest_time = metrics::families::ingest_duration().with();
  auto started = std::chrono::steady_clock::now();
  if (!is_json_content_type(req.content_type))
    return c.respond(
        error_response(415, {"unsupported_media_type",
                             "Content-Type must be application/json"}));
  auto& key = req.idempotency_key;
  if (!key.empty() && !is_valid_idempotency_key(key))
    return c.respond(error_response(
        400, {"invalid_field",
              "Idempotency-Key must be 1 to 256 printable ASCII characters "
              "without spaces",
              "Idempotency-Key"}));
  // Back-pressure before any work: past the queue bounds the producer is
  // told to come back, instead of every request waiting longer.
  auto bytes = req.body.size();
  auto requests_before = queued_requests_.fetch_add(1);
  auto bytes_before = queued_bytes_.fetch_add(bytes);
  auto release = [this, bytes] {
    queued_requests_.fetch_sub(1);
    queued_bytes_.fetch_sub(bytes);
  };
  if (requests_before >= opts_.max_queued_requests ||
      bytes_before + bytes > opts_.max_queued_bytes) {
    release();
    return c.respond(error_response(
        503, {"overloaded", "too many requests are waiting to be stored; "
                            "retry after the time in Retry-After"}));
  }
  validation_options vopts{opts_.audit_url_template, now_ms(),
                           opts_.max_payload_bytes, !key.empty(),
                           opts_.allow_producer_links};
  auto batch = validate_events(req.body, vopts);
  if (!batch) {
    release();
    return c.respond(error_response(400, batch.error()));
  }
  batch->idempotency_key = key;
  batch->idempotency_scope = c.who.scope;
  engine_.ingest(
      std::move(*batch), [respond = std::move(c.respond), release,
                          started](result<delivery::ingest_answer> answer) {
        release();
        if (!answer)
          return respond(error_response(
              answer.error().code == "idempotency_key_reused" ? 422 : 503,
              answer.error()));
        ingest_time.observe(std::chrono::duration<double>(
                                std::chrono::steady_clock::now() - started)
                                .count());
        respond(json_response(202, accepted_json(*answer)));
      });
}

void request_handler::get_event(call& c) {
  auto id = c.id;
  if (!is_valid_id(id, "evt"))
    return c.respond(
        error_response(404, {"not_found", "no event " + std::string{id}}));
  auto ev = log_.get_event(id);
  if (!ev) {
    log::error("event read failed", {{"error", ev.error().message}});
    return c.respond(error_response(500, store_failure));
  }
  if (!*ev) {
    // Made before what retention has removed: it was kept its time and is
    // gone, which a client should be able to tell from a wrong id.
    if (auto made = time_of_id(id, "evt");
        made && *made < log_.expired_before())
      return c.respond(
          error_response(404, {"event_expired",
                               "event " + std::string{id} +
                                   " was removed: finished events are kept for "
                                   "delivery.retention"}));
    return c.respond(
        error_response(404, {"not_found", "no event " + std::string{id}}));
  }
  auto& rec = **ev;
  json deliveries = json::array();
  for (auto& dlv_id : rec.delivery_ids) {
    auto d = log_.get_delivery(dlv_id);
    if (!d) {
      log::error("delivery read failed", {{"error", d.error().message}});
      return c.respond(error_response(500, store_failure));
    }
    if (*d)
      deliveries.push_back(delivery_json(**d));
  }
  json body;
  if (!parse_json(rec.body, body, nullptr, stored_json_limits)) {
    log::error("stored event unreadable", {{"event", std::string{id}}});
    return c.respond(error_response(500, store_failure));
  }
  json answer{{"event", std::move(body)},
              {"accepted_at", format_rfc3339(rec.accepted_at)}};
  add_answers(answer, rec.state(), rec.answers);
  answer["deliveries"] = std::move(deliveries);
  c.respond(json_response(200, answer));
}

namespace {

/// The most events one page of GET /v1/events holds, and how many it holds
/// when the client does not say.
constexpr std::size_t max_events_per_page = 500;
constexpr std::size_t default_events_per_page = 50;

/// A page's `next_cursor`: where the store stopped, base64url-encoded so
/// that clients pass it back as it is instead of building their own (what
/// it holds may change).
std::string cursor_of(std::string_view event_id) {
  auto text = base64_encode(event_id);
  while (!text.empty() && text.back() == '=')
    text.pop_back();
  for (auto& ch : text)
    ch = ch == '+' ? '-' : ch == '/' ? '_' : ch;
  return text;
}

/// The event id a cursor of cursor_of() holds; nothing for anything else.
std::optional<std::string> event_id_of_cursor(std::string_view cursor) {
  if (cursor.size() > 128)
    return std::nullopt;
  std::string text{cursor};
  for (auto& ch : text) {
    if (ch == '+' || ch == '/' || ch == '=')
      return std::nullopt; // the standard alphabet: not one of ours
    ch = ch == '-' ? '+' : ch == '_' ? '/' : ch;
  }
  while (text.size() % 4 != 0)
    text += '=';
  auto id = base64_decode(text);
  if (!id || !is_valid_id(*id, "evt"))
    return std::nullopt;
  return id;
}

/// The filters and page of GET /v1/events from its query string; errors
/// name the parameter.
result<storage::event_query> event_query_of(std::string_view query) {
  storage::event_query q;
  q.limit = default_events_per_page;
  auto bad = [](const char* field, std::string message) {
    return error{"invalid_field", std::move(message), field};
  };
  auto given = [&](const char* key) {
    auto v = form_value(query, key);
    return v && !v->empty() ? v : std::nullopt;
  };
  if (auto v = given("limit")) {
    std::size_t n = 0;
    auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
    if (ec != std::errc{} || p != v->data() + v->size() || n < 1 ||
        n > max_events_per_page)
      return bad("limit", "limit must be an integer from 1 to " +
                              std::to_string(max_events_per_page));
    q.limit = n;
  }
  if (auto v = given("state")) {
    auto st = storage::event_state_from(*v);
    if (!st)
      return bad("state", "state must be one of open, acknowledged, resolved");
    q.state = *st;
  }
  if (auto v = given("type")) {
    if (!is_event_type(*v))
      return bad("type",
                 "type must be one of policy.denied, approval.required, "
                 "content.detected, anomaly.detected, system.health");
    q.type = std::move(*v);
  }
  if (auto v = given("severity")) {
    if (!severity_rank(*v))
      return bad("severity",
                 "severity must be one of info, low, medium, high, critical");
    q.severity = std::move(*v);
  }
  if (auto v = given("agent_id")) {
    if (v->size() > 256 || !is_valid_utf8(*v))
      return bad("agent_id", "agent_id must be 1 to 256 bytes of UTF-8");
    q.agent_id = std::move(*v);
  }
  auto since = given("since");
  if (since) {
    auto t = parse_rfc3339(*since);
    if (!t)
      return bad("since", "since must be RFC 3339");
    q.since = *t;
  }
  if (auto v = given("until")) {
    auto t = parse_rfc3339(*v);
    if (!t)
      return bad("until", "until must be RFC 3339");
    if (since && *t <= q.since)
      return bad("until", "until must be later than since");
    q.until = *t;
  }
  if (auto v = given("cursor")) {
    auto id = event_id_of_cursor(*v);
    if (!id)
      return bad("cursor", "cursor must be a next_cursor of GET /v1/events");
    q.before = std::move(*id);
  }
  return q;
}

/// One event of a listing: its fields, when it was accepted, its state and
/// its answers.
json event_item_json(const storage::event_record& e) {
  auto f = storage::fields_of_event(e);
  json j{{"id", e.id},
         {"type", f.type},
         {"severity", f.severity},
         {"agent_id", f.agent_id.empty() ? json(nullptr) : json(f.agent_id)},
         {"summary", f.summary},
         {"timestamp", f.timestamp},
         {"accepted_at", format_rfc3339(e.accepted_at)}};
  add_answers(j, e.state(), e.answers);
  return j;
}

} // namespace

void request_handler::list_events(call& c) {
  auto q = event_query_of(c.query);
  if (!q)
    return c.respond(error_response(400, q.error()));
  auto page = log_.list_events(*q);
  if (!page) {
    log::error("event listing failed", {{"error", page.error().message}});
    return c.respond(error_response(500, store_failure));
  }
  json items = json::array();
  for (auto& e : page->events)
    items.push_back(event_item_json(e));
  json body{{"events", std::move(items)},
            {"next_cursor",
             page->next ? json(cursor_of(*page->next)) : json(nullptr)}};
  c.respond(json_response(200, body));
}

void request_handler::acknowledge_event(call& c) {
  answer_event(c, storage::event_state::acknowledged);
}

void request_handler::resolve_event(call& c) {
  answer_event(c, storage::event_state::resolved);
}

void request_handler::answer_event(call& c, storage::event_state state) {
  auto id = std::string{c.id};
  if (!is_valid_id(id, "evt"))
    return c.respond(error_response(404, {"not_found", "no event " + id}));
  auto body = json_body(c.req, true);
  if (!body)
    return c.respond(body_error(body.error()));
  delivery::answer_request req;
  req.event_id = id;
  req.state = state;
  req.source = "api";
  req.by = c.who.name.empty() ? c.who.scope : c.who.name;
  for (auto& [key, value] : body->items()) {
    auto limit = key == "by" ? 200u : key == "note" ? 1000u : 0u;
    if (limit == 0)
      return c.respond(error_response(
          400, {"unknown_field", "unknown field '" + key + "'", key}));
    if (!value.is_string() || value.get_ref<const std::string&>().empty() ||
        value.get_ref<const std::string&>().size() > limit ||
        !is_valid_utf8(value.get_ref<const std::string&>()))
      return c.respond(
          error_response(400, {"invalid_field",
                               "'" + key + "' must be a string of 1 to " +
                                   std::to_string(limit) + " bytes",
                               key}));
    // Shown to people (Slack, PagerDuty, the dashboard): no text that reads
    // other than it was sent; a note may have lines and tabs.
    if (auto why =
            deceptive_text(value.get_ref<const std::string&>(), key == "note"))
      return c.respond(error_response(
          400,
          {"invalid_field", "'" + key + "' must not contain a " + *why, key}));
    (key == "by" ? req.by : req.note) = value.get<std::string>();
  }
  engine_.answer(std::move(req), [respond = std::move(c.respond)](
                                     result<delivery::answer_outcome> out) {
    if (!out)
      return respond(error_response(answer_status(out.error()), out.error()));
    respond(json_response(200, outcome_json(*out)));
  });
}

} // namespace tocsin::api
