// The changes a commit makes, in the product's terms, each with the log
// record it appends. What a backend keeps of them is its own affair.
#include "storage/store.hpp"

#include "common/json_parse.hpp"
#include "common/json_writer.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <iterator>

namespace tocsin::storage {

void changes::event_accepted(const event_record& e) {
  change c{change::type::event_accepted, record_kind::event_accepted, e.id,
           encode(e)};
  c.at = e.accepted_at;
  c.log_fields = compact_event_accepted(e);
  c.form = log_form::event_accepted;
  list_.push_back(std::move(c));
}

void changes::event_changed(const event_record& e, record_kind kind,
                            std::string json_fields) {
  change c{change::type::event_changed, kind, e.id, encode(e)};
  c.at = e.accepted_at;
  c.log_fields = std::move(json_fields);
  list_.push_back(std::move(c));
}

void changes::delivery_created(const delivery& d,
                               std::optional<line_place> place) {
  delivery_changed(d, record_kind::delivery_created, std::nullopt, place);
  list_.back().what = change::type::delivery_created;
  list_.back().created = true;
}

void changes::delivery_changed(const delivery& d, record_kind kind,
                               std::optional<standing> was,
                               std::optional<line_place> place) {
  auto now = standing_of(d);
  if (place && d.state == delivery_state::pending)
    now.place = *place;
  change c{change::type::delivery_changed, kind, d.id, encode(d)};
  c.event_id = d.event_id;
  c.endpoint_id = d.endpoint_id;
  c.now = now;
  c.was = was;
  c.at = d.finished_at;
  c.log_fields = compact_delivery_change(d, kind);
  c.form = log_form::delivery_change;
  list_.push_back(std::move(c));
}

void changes::delivery_outcome(record_kind kind, const delivery& d) {
  noted(kind, compact_delivery_outcome(d));
  list_.back().form = log_form::delivery_outcome;
}

std::optional<idempotency_record> decode_idempotency(std::string_view body) {
  nlohmann::json j;
  idempotency_record rec;
  if (!parse_json(body, j, nullptr, stored_json_limits) || !j.is_object())
    return std::nullopt;
  try {
    rec.ids = j.at("ids").get<std::vector<std::string>>();
    rec.at = j.at("at").get<unix_ms>();
    rec.digest = j.value("digest", "");
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
  return rec;
}

void changes::idempotency_key_used(std::string_view key,
                                   const idempotency_record& rec) {
  auto write = [&](json_writer& w) {
    w.field("at", rec.at).field("digest", rec.digest).key("ids").begin_array();
    for (auto& id : rec.ids)
      w.value(id);
    w.end_array().end_object();
  };
  json_writer value, fields;
  value.begin_object();
  write(value);
  fields.begin_object().field("idempotency_key", key);
  write(fields);
  change c{change::type::idempotency_key, record_kind::idempotency_recorded,
           std::string{key}, value.take()};
  c.at = rec.at;
  c.log_fields = fields.take();
  list_.push_back(std::move(c));
}

void changes::endpoint_put(std::string_view id, std::string definition,
                           record_kind kind) {
  auto fields = json_writer{}
                    .begin_object()
                    .field("endpoint_id", id)
                    .key("endpoint")
                    .raw(definition) // already JSON
                    .end_object()
                    .take();
  change c{change::type::endpoint_put, kind, std::string{id},
           std::move(definition)};
  c.log_fields = std::move(fields);
  list_.push_back(std::move(c));
}

void changes::endpoint_deleted(std::string_view id) {
  change c{change::type::endpoint_deleted, record_kind::endpoint_deleted,
           std::string{id}};
  c.log_fields =
      json_writer{}.begin_object().field("endpoint_id", id).end_object().take();
  list_.push_back(std::move(c));
}

void changes::escalation_linked(std::string_view event_id,
                                std::string_view escalation_id) {
  change c{change::type::escalation_linked, record_kind::event_escalated,
           std::string{event_id}};
  c.other = escalation_id;
  c.log_fields = json_writer{}
                     .begin_object()
                     .field("event_id", event_id)
                     .field("escalation_id", escalation_id)
                     .end_object()
                     .take();
  list_.push_back(std::move(c));
}

void changes::counted_in_group(std::string_view event_id, std::string_view rule,
                               std::string_view group) {
  change c{change::type::counted_in_group, record_kind::event_escalated,
           std::string{event_id}};
  c.rule = rule;
  c.group = group;
  c.logged = false;
  list_.push_back(std::move(c));
}

void changes::escalation_recorded(std::string_view escalation_id,
                                  std::string_view rule, std::string_view group,
                                  unix_ms at, std::string_view members) {
  auto count = static_cast<std::int64_t>(
      std::count(members.begin(), members.end(), '\n'));
  change c{change::type::escalation_recorded, record_kind::event_escalated,
           std::string{escalation_id}, std::string{members}};
  c.rule = rule;
  c.group = group;
  c.at = at;
  c.log_fields = json_writer{}
                     .begin_object()
                     .field("escalation_id", escalation_id)
                     .field("rule", rule)
                     .field("group", group)
                     .field("count", count)
                     .end_object()
                     .take();
  list_.push_back(std::move(c));
}

void changes::noted(record_kind kind, std::string json_fields) {
  change c{change::type::noted, kind, {}};
  c.log_fields = std::move(json_fields);
  list_.push_back(std::move(c));
}

void changes::append(changes&& other) {
  if (list_.empty()) {
    list_ = std::move(other.list_);
  } else {
    list_.reserve(list_.size() + other.list_.size());
    std::move(other.list_.begin(), other.list_.end(),
              std::back_inserter(list_));
  }
  other.list_.clear();
  for (auto& f : other.fences_)
    fence(f.name, f.epoch);
  other.fences_.clear();
}

void changes::fence(std::string_view name, std::uint64_t epoch) {
  for (auto& f : fences_)
    if (f.name == name) {
      f.epoch = epoch;
      return;
    }
  fences_.push_back({std::string{name}, epoch});
}

} // namespace tocsin::storage
