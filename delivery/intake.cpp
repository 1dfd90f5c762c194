#include "delivery/intake.hpp"

#include "common/defaults.hpp"
#include "common/event_types.hpp"
#include "common/ids.hpp"
#include "common/json_parse.hpp"
#include "common/json_writer.hpp"
#include "common/log.hpp"
#include "common/metric_families.hpp"
#include "delivery/payload.hpp"
#include "delivery/retry_policy.hpp"
#include "delivery/routing.hpp"

#include <nlohmann/json.hpp>

namespace tocsin::delivery {

namespace {

/// A key as stored: scoped to the token that sent it (keys never hold a
/// space, so the scope cannot be forged by a key).
std::string scoped_key(const ingest_batch& b, const std::string& key) {
  return b.idempotency_scope + " " + key;
}

error key_reused(std::string field) {
  return error{"idempotency_key_reused",
               "this idempotency key was used for a different request within "
               "24 h; use a new key for new content",
               std::move(field)};
}

} // namespace

intake::intake(storage::event_log& log, std::vector<route> routes,
               std::size_t max_payload_bytes,
               std::vector<escalation_rule> escalation)
    : log_(log), routes_(std::move(routes)),
      max_payload_bytes_(max_payload_bytes), escalation_rules_(escalation),
      escalator_(std::move(escalation)) {}

namespace {

/// An event tocsin raises itself (an escalation, an endpoint's health):
/// the body a producer's event would have after validation
/// (api/event_validation.cpp), in the same field order.
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

/// A new delivery of `event_id` to `endpoint_id`, due now.
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

/// An escalation as an event, the escalation as its details.
new_event event_of(const derived_event& d, unix_ms now,
                   std::size_t max_payload_bytes) {
  return own_event(d.type, d.severity, d.agent_id, d.summary, d.details.dump(),
                   now, max_payload_bytes);
}

/// The fields the escalation rules look at, from a stored event.
std::optional<storage::event_fields> fields_of(const storage::event_record& e) {
  if (e.fields)
    return e.fields;
  nlohmann::json body; // records of versions that kept no fields
  if (!parse_json(e.body, body, nullptr, stored_json_limits) ||
      !body.is_object())
    return std::nullopt;
  storage::event_fields f;
  f.type = body.value("type", "");
  f.agent_id = body.value("agent_id", "");
  return f;
}

} // namespace

metrics::counter& intake::accepted(const std::string& type) {
  auto& slot = accepted_by_type_[type];
  if (!slot)
    slot = &metrics::families::events_accepted().with({type});
  return *slot;
}

status intake::restore_escalations(unix_ms now) {
  escalator_ = escalator{escalation_rules_};
  if (escalator_.empty())
    return {};
  std::size_t seen = 0;
  auto st = log_.for_each_event_since(
      now - escalator_.horizon(), [&](const storage::event_record& e) {
        if (auto f = fields_of(e)) {
          escalator_.restore(
              {e.id, f->type, f->agent_id, e.body, e.accepted_at});
          ++seen;
        }
        return true;
      });
  if (!st)
    return st;
  log::info("escalation rules restored from the event log",
            {{"events", std::to_string(seen)},
             {"groups", std::to_string(escalator_.groups())}});
  return {};
}

std::size_t intake::route_of(std::string_view endpoint_id) const {
  for (std::size_t i = 0; i < routes_.size(); ++i)
    if (routes_[i].endpoint_id == endpoint_id)
      return i;
  return routes_.size();
}

bool intake::routes_to(std::string_view endpoint_id) const {
  return route_of(endpoint_id) < routes_.size();
}

std::optional<storage::idempotency_record>
intake::find_key(const std::string& key, unix_ms now) {
  if (auto it = pending_keys_.find(key); it != pending_keys_.end())
    return it->second;
  auto rec = log_.get_idempotency_key(key);
  if (!rec) {
    // Accepting again is the safe side: at worst a duplicate delivery.
    log::error("idempotency lookup failed", {{"error", rec.error().message}});
    return std::nullopt;
  }
  if (*rec && (*rec)->at + defaults::idempotency_window_ms > now)
    return std::move(**rec);
  return std::nullopt;
}

void intake::remember_key(const std::string& key,
                          storage::idempotency_record rec) {
  batch_.put_idempotency_key(key, rec);
  pending_keys_.insert_or_assign(key, std::move(rec));
}

result<std::vector<std::string>> intake::resolve_keys(const ingest_batch& b,
                                                      unix_ms now) {
  std::vector<std::string> repeat_of(b.events.size());
  // Keys seen earlier in this request: their digest and event index.
  std::unordered_map<std::string, std::pair<std::string, std::size_t>> local;
  for (std::size_t i = 0; i < b.events.size(); ++i) {
    auto& ev = b.events[i];
    if (ev.idempotency_key.empty())
      continue;
    auto field = b.is_batch
                     ? "events[" + std::to_string(i) + "].idempotency_key"
                     : std::string{"idempotency_key"};
    auto key = scoped_key(b, ev.idempotency_key);
    if (auto prior = find_key(key, now)) {
      if (prior->digest != ev.idempotency_digest || prior->ids.empty())
        return key_reused(std::move(field));
      repeat_of[i] = prior->ids.front();
    } else if (auto it = local.find(key); it != local.end()) {
      if (it->second.first != ev.idempotency_digest)
        return key_reused(std::move(field));
      repeat_of[i] = b.events[it->second.second].id;
    } else {
      local.emplace(std::move(key), std::make_pair(ev.idempotency_digest, i));
    }
  }
  return repeat_of;
}

result<ingest_answer> intake::add(ingest_batch& b, unix_ms now) {
  last_added_at_ = now;
  if (!b.idempotency_key.empty())
    if (auto prior = find_key(scoped_key(b, b.idempotency_key), now)) {
      if (prior->digest != b.idempotency_digest)
        return key_reused("Idempotency-Key");
      return ingest_answer{std::move(prior->ids), 0};
    }
  // Decided before anything is added: a batch is all or nothing.
  auto repeats = resolve_keys(b, now);
  if (!repeats)
    return repeats.error();
  ingest_answer answer;
  for (std::size_t i = 0; i < b.events.size(); ++i) {
    auto& ev = b.events[i];
    if (!(*repeats)[i].empty()) {
      answer.ids.push_back(std::move((*repeats)[i])); // the first id
      continue;
    }
    answer.deliveries += add_event(ev, now);
    if (!ev.idempotency_key.empty())
      remember_key(scoped_key(b, ev.idempotency_key),
                   {{ev.id}, now, ev.idempotency_digest});
    answer.ids.push_back(ev.id);
  }
  if (!b.idempotency_key.empty())
    remember_key(scoped_key(b, b.idempotency_key),
                 {answer.ids, now, b.idempotency_digest});
  return answer;
}

std::string intake::raise_health(const health_report& r, unix_ms now) {
  json_writer details;
  details.begin_object()
      .field("endpoint_id", r.endpoint_id)
      .field("state", r.healthy ? "healthy" : "unhealthy");
  if (!r.reason.empty())
    details.field("reason", r.reason);
  auto summary = r.healthy
                     ? "endpoint " + r.endpoint_id + " delivers again"
                     : "endpoint " + r.endpoint_id + " is failing: " + r.reason;
  if (summary.size() > 1024)
    summary.resize(1024); // reasons are ASCII codes and numbers
  auto ev = own_event("system.health", r.healthy ? "info" : "high", {},
                      std::move(summary), details.end_object().take(), now,
                      max_payload_bytes_);
  auto id = ev.id;
  add_event(ev, now, r.endpoint_id);
  return id;
}

std::size_t intake::add_event(new_event& ev, unix_ms now,
                              std::string_view except_endpoint) {
  storage::event_record rec;
  rec.id = ev.id;
  rec.accepted_at = now;
  rec.fields = delivery::fields_of(ev);
  // The event is stored whole; what endpoints receive may be cut down.
  // Built for the first matching endpoint, shared by the others.
  std::shared_ptr<const event_content> content;
  event_facts facts{ev.type, ev.severity, ev.agent_id};
  storage::write_set created;
  std::size_t deliveries = 0;
  for (auto& r : routes_) {
    if (!r.enabled || !matches(r.filter, facts) ||
        r.endpoint_id == except_endpoint)
      continue;
    if (!content)
      content = make_event_content(ev, max_payload_bytes_);
    auto d = new_delivery(ev.id, r.endpoint_id, now);
    rec.delivery_ids.push_back(d.id);
    created.add_delivery(d);
    handoff_[r.endpoint_id].push_back(job_of(std::move(d), content));
    ++deliveries;
  }
  std::vector<derived_event> escalations;
  if (!escalator_.empty())
    escalations =
        escalator_.observe({ev.id, ev.type, ev.agent_id, ev.body, now});
  rec.body = std::move(ev.body);
  batch_.add_event(rec);
  batch_.append(std::move(created));
  on_commit_.push_back(&accepted(ev.type));
  // An escalation is accepted right after the event that caused it, in the
  // same commit: both are durable, or neither (and the counts are rebuilt).
  for (auto& d : escalations) {
    auto derived = event_of(d, now, max_payload_bytes_);
    log::info("escalation rule fired",
              {{"rule", d.rule}, {"group", d.group}, {"event", derived.id}});
    on_commit_.push_back(&metrics::families::escalations().with({d.rule}));
    add_event(derived, now);
    // Each event it was derived from leads to it: acknowledging one of them
    // acknowledges the escalation (and its PagerDuty incident).
    for (auto& id : d.details["escalation"]["event_ids"])
      if (id.is_string())
        batch_.link_escalation(id.get_ref<const std::string&>(), derived.id);
  }
  return deliveries;
}

result<std::vector<storage::delivery>>
intake::select(const replay_selection& sel) {
  std::vector<storage::delivery> out;
  if (!sel.delivery_ids.empty()) {
    for (auto& id : sel.delivery_ids) {
      auto d = log_.get_delivery(id);
      if (!d)
        return error{"store_unavailable", d.error().message};
      if (!*d)
        return error{"not_found", "no delivery " + id};
      if ((*d)->state != storage::delivery_state::dead_lettered)
        return error{"not_dead_lettered",
                     "delivery " + id + " is " +
                         std::string{storage::to_string((*d)->state)}};
      out.push_back(std::move(**d));
    }
    return out;
  }
  if (!routes_to(sel.endpoint_id))
    return error{"not_found", "no endpoint " + sel.endpoint_id};
  // The endpoint's own dead letters, from `since`: the others are not read.
  auto chosen =
      log_.list_dead_letters_of(sel.endpoint_id, sel.since, sel.limit);
  if (!chosen)
    return error{"store_unavailable", chosen.error().message};
  return std::move(*chosen);
}

result<std::size_t> intake::replay(const replay_selection& sel, unix_ms now) {
  auto chosen = select(sel);
  if (!chosen)
    return chosen.error();
  bool named = !sel.delivery_ids.empty();
  std::size_t count = 0;
  for (auto& d : *chosen) {
    // Replayed earlier in this batch: the store does not show it yet.
    if (!replaying_.emplace(d.id, true).second) {
      if (named)
        return error{"not_dead_lettered",
                     "delivery " + d.id + " is being replayed"};
      continue;
    }
    if (!routes_to(d.endpoint_id)) {
      if (named)
        return error{"endpoint_deleted",
                     "the endpoint of " + d.id + " no longer exists"};
      continue;
    }
    auto ev = log_.get_event(d.event_id);
    if (!ev || !*ev)
      return error{"store_unavailable", "cannot read event " + d.event_id};
    // A fresh window: the attempts so far stay in the record but no longer
    // count against the budget.
    d.state = storage::delivery_state::pending;
    d.reason.clear();
    d.finished_at = 0;
    d.window_start = 0;
    d.attempt_base = static_cast<int>(d.attempts.size());
    d.next_attempt_at = now;
    batch_.put_delivery(
        d, storage::record_kind::delivery_replayed,
        storage::delivery_position{storage::delivery_state::dead_lettered, 0});
    auto endpoint = d.endpoint_id;
    handoff_[endpoint].push_back(
        job_of(std::move(d), make_event_content(**ev, max_payload_bytes_)));
    ++count;
  }
  return count;
}

result<std::optional<storage::event_record>>
intake::read_event(const std::string& id) {
  if (auto it = answered_.find(id); it != answered_.end())
    return std::optional<storage::event_record>{it->second};
  auto ev = log_.get_event(id);
  if (!ev)
    return error{"store_unavailable", ev.error().message};
  return std::move(*ev);
}

namespace {

/// The events an escalation was derived from (details.escalation.event_ids
/// of its body); none for any other event.
std::vector<std::string> episode_of(const storage::event_record& rec) {
  std::vector<std::string> ids;
  nlohmann::json body;
  if (!parse_json(rec.body, body, nullptr, stored_json_limits) ||
      !body.is_object())
    return ids;
  auto details = body.find("details");
  if (details == body.end() || !details->is_object())
    return ids;
  auto esc = details->find("escalation");
  if (esc == details->end() || !esc->is_object())
    return ids;
  auto listed = esc->find("event_ids");
  if (listed == esc->end() || !listed->is_array())
    return ids;
  for (auto& id : *listed)
    if (id.is_string() && is_valid_id(id.get_ref<const std::string&>(), "evt"))
      ids.push_back(id.get<std::string>());
  return ids;
}

} // namespace

result<answered_event> intake::answer_one(storage::event_record rec,
                                          const answer_request& req,
                                          unix_ms now) {
  answered_event out;
  out.event_id = rec.id;
  auto was = rec.state();
  // Open -> acknowledged -> resolved; never back (a second click, or an
  // acknowledgement of a resolved event, changes nothing).
  if (was >= req.state) {
    out.state = was;
    out.answers = rec.answers;
    return out;
  }
  storage::event_answer a{req.state, req.by, req.source, req.note, now};
  rec.answers.push_back(a);
  // A notice for each endpoint that follows events' state and was sent the
  // event (its trigger delivered: an acknowledgement of an incident that
  // does not exist yet would be lost).
  storage::write_set notices;
  std::shared_ptr<const event_content> content;
  bool replied = false;
  auto sent = rec.delivery_ids; // rec gains the notices' ids below
  for (auto& dlv_id : sent) {
    auto d = log_.get_delivery(dlv_id);
    if (!d)
      return error{"store_unavailable", d.error().message};
    if (!*d || (*d)->news.state != storage::event_state::open ||
        (*d)->state != storage::delivery_state::delivered)
      continue;
    auto ri = route_of((*d)->endpoint_id);
    if (ri == routes_.size() || !routes_[ri].follows_state)
      continue;
    auto& r = routes_[ri];
    auto n = new_delivery(rec.id, r.endpoint_id, now);
    n.news = {req.state, req.by, now, {}};
    if (!replied && !req.reply_url.empty() &&
        r.transport == req.reply_transport) {
      n.news.reply_url = req.reply_url;
      replied = true;
    }
    if (!content)
      content = make_event_content(rec, max_payload_bytes_);
    rec.delivery_ids.push_back(n.id);
    notices.add_delivery(n);
    handoff_[r.endpoint_id].push_back(job_of(std::move(n), content));
    ++out.notices;
  }
  json_writer fields;
  fields.begin_object()
      .field("event_id", rec.id)
      .field("by", req.by)
      .field("source", req.source);
  if (!req.note.empty())
    fields.field("note", req.note);
  fields.field("notices", static_cast<std::int64_t>(out.notices)).end_object();
  batch_.put_event(rec,
                   req.state == storage::event_state::resolved
                       ? storage::record_kind::event_resolved
                       : storage::record_kind::event_acknowledged,
                   fields.take());
  batch_.append(std::move(notices));
  out.state = req.state;
  out.changed = true;
  out.answers = rec.answers;
  on_commit_.push_back(&metrics::families::acknowledgements().with(
      {req.source, std::string{storage::to_string(req.state)}}));
  answered_.insert_or_assign(rec.id, std::move(rec));
  return out;
}

result<bool> intake::follow_up(const std::string& event_id,
                               const std::string& endpoint_id, unix_ms now) {
  auto ev = read_event(event_id);
  if (!ev)
    return ev.error();
  if (!*ev || (*ev)->state() == storage::event_state::open)
    return false;
  auto& rec = **ev;
  auto ri = route_of(endpoint_id);
  if (ri == routes_.size() || !routes_[ri].follows_state)
    return false;
  auto state = rec.state();
  for (auto& id : rec.delivery_ids) {
    auto d = log_.get_delivery(id);
    if (!d)
      return error{"store_unavailable", d.error().message};
    if (*d && (*d)->endpoint_id == endpoint_id && (*d)->news.state == state)
      return false; // told already
  }
  auto& last = rec.answers.back();
  auto n = new_delivery(rec.id, endpoint_id, now);
  n.news = {state, last.by, last.at, {}};
  rec.delivery_ids.push_back(n.id);
  json_writer fields;
  fields.begin_object()
      .field("event_id", rec.id)
      .field("endpoint_id", endpoint_id)
      .field("notice", storage::to_string(state))
      .end_object();
  // The event again (its new delivery listed), logged as the answer it
  // carries the news of.
  batch_.put_event(rec,
                   state == storage::event_state::resolved
                       ? storage::record_kind::event_resolved
                       : storage::record_kind::event_acknowledged,
                   fields.take());
  batch_.add_delivery(n);
  handoff_[endpoint_id].push_back(
      job_of(std::move(n), make_event_content(rec, max_payload_bytes_)));
  answered_.insert_or_assign(rec.id, std::move(rec));
  return true;
}

result<answer_outcome> intake::answer(const answer_request& req, unix_ms now) {
  auto first = read_event(req.event_id);
  if (!first)
    return first.error();
  if (!*first)
    return error{"not_found", "no event " + req.event_id};
  // Answering an escalation answers its episode: the events it was derived
  // from (those retention has not removed yet). Answering one of those
  // answers the escalations derived from it (not their other events).
  auto episode = episode_of(**first);
  auto containing = log_.escalations_of(req.event_id);
  if (!containing)
    return error{"store_unavailable", containing.error().message};
  episode.insert(episode.begin(), containing->begin(), containing->end());
  answer_outcome out;
  auto one = answer_one(std::move(**first), req, now);
  if (!one)
    return one.error();
  out.events.push_back(std::move(*one));
  for (auto& id : episode) {
    if (id == req.event_id)
      continue;
    auto ev = read_event(id);
    if (!ev)
      return ev.error();
    if (!*ev)
      continue;
    auto answered = answer_one(std::move(**ev), req, now);
    if (!answered)
      return answered.error();
    out.events.push_back(std::move(*answered));
  }
  return out;
}

status intake::commit() {
  auto seq = log_.commit(batch_, storage::durability::synced);
  batch_.clear();
  pending_keys_.clear();
  replaying_.clear();
  answered_.clear();
  if (seq)
    for (auto* c : on_commit_)
      c->add();
  on_commit_.clear();
  if (seq) {
    committed_.jobs = std::move(handoff_);
    committed_.as_of = *seq;
  }
  handoff_.clear();
  if (!seq) {
    // The refused events were counted by the escalation rules: count again
    // from what the store holds.
    if (!escalator_.empty())
      if (auto st = restore_escalations(last_added_at_); !st)
        log::error("escalation counts not rebuilt after a failed commit",
                   {{"error", st.error().message}});
    return seq.error();
  }
  return {};
}

handoff intake::take_handoff() {
  auto out = std::move(committed_);
  committed_ = {};
  return out;
}

status intake::change_endpoint(const endpoint_change& c) {
  using kind = endpoint_change::kind;
  auto ri = route_of(c.id);
  bool exists = ri < routes_.size();
  if (c.what == kind::create && exists)
    return error{"conflict", "an endpoint with id " + c.id + " already exists"};
  if (c.what != kind::create) {
    if (!exists)
      return error{"not_found", "no endpoint " + c.id};
    if (routes_[ri].revision != c.based_on)
      return error{"conflict", "endpoint " + c.id +
                                   " changed meanwhile; read it again and "
                                   "retry"};
  }
  storage::write_set ws;
  switch (c.what) {
  case kind::create:
    ws.put_endpoint(c.id, c.definition, storage::record_kind::endpoint_created);
    break;
  case kind::update:
    ws.put_endpoint(
        c.id, c.definition,
        c.record_kind.value_or(storage::record_kind::endpoint_updated));
    break;
  case kind::remove:
    ws.delete_endpoint(c.id);
    break;
  }
  if (auto st = log_.commit(ws, storage::durability::synced); !st) {
    log::error("event log commit failed; endpoint change refused",
               {{"endpoint", c.id}, {"error", st.error().message}});
    return error{"store_unavailable",
                 "the event store refused the write; nothing changed"};
  }
  switch (c.what) {
  case kind::create:
    routes_.push_back(route::of(*c.config));
    break;
  case kind::update:
    routes_[ri] = route::of(*c.config);
    break;
  case kind::remove:
    routes_.erase(routes_.begin() + static_cast<std::ptrdiff_t>(ri));
    break;
  }
  return {};
}

} // namespace tocsin::delivery
