#include "storage/records.hpp"

#include "common/json_parse.hpp"

#include <nlohmann/json.hpp>

namespace tocsin::storage {

using nlohmann::json;

std::string_view to_string(delivery_state s) {
  switch (s) {
  case delivery_state::pending:
    return "pending";
  case delivery_state::delivered:
    return "delivered";
  case delivery_state::dead_lettered:
    return "dead_lettered";
  }
  return "pending";
}

std::optional<delivery_state> delivery_state_from(std::string_view s) {
  for (auto st : {delivery_state::pending, delivery_state::delivered,
                  delivery_state::dead_lettered})
    if (to_string(st) == s)
      return st;
  return std::nullopt;
}

void write_json(json_writer& w, const attempt& a) {
  w.begin_object()
      .field("number", a.number)
      .field("started_at", a.started_at)
      .field("finished_at", a.finished_at)
      .field("status", a.status)
      .field("latency_ms", a.latency_ms);
  if (!a.response.empty())
    w.field("response", a.response);
  if (!a.error.empty())
    w.field("error", a.error);
  w.end_object();
}

std::string encode(const delivery& d) {
  json_writer w;
  w.begin_object()
      .field("id", d.id)
      .field("event_id", d.event_id)
      .field("endpoint_id", d.endpoint_id)
      .field("state", to_string(d.state))
      .field("created_at", d.created_at)
      .field("window_start", d.window_start)
      .field("attempt_base", d.attempt_base)
      .field("next_attempt_at", d.next_attempt_at)
      .field("finished_at", d.finished_at)
      .field("reason", d.reason)
      .key("attempts")
      .begin_array();
  for (auto& a : d.attempts)
    write_json(w, a);
  w.end_array().end_object();
  return w.take();
}

std::optional<delivery> delivery_from_json(std::string_view text) {
  json j;
  if (!parse_json(text, j, nullptr, stored_json_limits) || !j.is_object())
    return std::nullopt;
  try {
    delivery d;
    d.id = j.at("id").get<std::string>();
    d.event_id = j.at("event_id").get<std::string>();
    d.endpoint_id = j.at("endpoint_id").get<std::string>();
    auto st = delivery_state_from(j.at("state").get<std::string>());
    if (!st)
      return std::nullopt;
    d.state = *st;
    d.created_at = j.at("created_at").get<unix_ms>();
    d.window_start = j.at("window_start").get<unix_ms>();
    d.attempt_base = j.value("attempt_base", 0);
    d.next_attempt_at = j.at("next_attempt_at").get<unix_ms>();
    d.finished_at = j.at("finished_at").get<unix_ms>();
    d.reason = j.at("reason").get<std::string>();
    for (auto& ja : j.at("attempts")) {
      attempt a;
      a.number = ja.at("number").get<int>();
      a.started_at = ja.at("started_at").get<unix_ms>();
      a.finished_at = ja.at("finished_at").get<unix_ms>();
      a.status = ja.at("status").get<int>();
      a.latency_ms = ja.at("latency_ms").get<double>();
      a.response = ja.value("response", "");
      a.error = ja.value("error", "");
      d.attempts.push_back(std::move(a));
    }
    return d;
  } catch (const json::exception&) {
    return std::nullopt;
  }
}

std::string encode(const event_record& e) {
  json_writer w;
  w.begin_object()
      .field("id", e.id)
      .field("accepted_at", e.accepted_at)
      .key("delivery_ids")
      .begin_array();
  for (auto& id : e.delivery_ids)
    w.value(id);
  w.end_array().key("body").raw(e.body).end_object();
  return w.take();
}

std::optional<event_record> event_from_json(std::string_view text) {
  // Ordered, so that the body dumps back exactly as it was written.
  nlohmann::ordered_json j;
  if (!parse_json(text, j, nullptr, stored_json_limits) || !j.is_object())
    return std::nullopt;
  try {
    event_record e;
    e.id = j.at("id").get<std::string>();
    e.body = j.at("body").dump();
    e.accepted_at = j.at("accepted_at").get<unix_ms>();
    e.delivery_ids = j.at("delivery_ids").get<std::vector<std::string>>();
    return e;
  } catch (const json::exception&) {
    return std::nullopt;
  }
}

} // namespace tocsin::storage
