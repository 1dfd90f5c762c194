#include "delivery/intake.hpp"

#include "common/defaults.hpp"
#include "common/event_types.hpp"
#include "common/json_writer.hpp"
#include "common/log.hpp"
#include "common/metric_families.hpp"
#include "delivery/own_records.hpp"
#include "delivery/payload.hpp"
#include "delivery/retry_policy.hpp"
#include "delivery/routing.hpp"

#include <map>
#include <utility>

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

intake::intake(storage::store& log, std::vector<route> routes,
               std::size_t max_payload_bytes,
               std::vector<escalation_rule> escalation)
    : log_(log), routes_(std::move(routes)),
      max_payload_bytes_(max_payload_bytes),
      episodes_(log, std::move(escalation), max_payload_bytes) {}

metrics::counter& intake::accepted(const std::string& type) {
  auto& slot = accepted_by_type_[type];
  if (!slot)
    slot = &metrics::families::events_accepted().with({type});
  return *slot;
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
  pending_.batch.idempotency_key_used(key, rec);
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
      auto n = prior->ids.size();
      return ingest_answer{std::move(prior->ids), 0,
                           std::vector<accepted_event>(n, {0, true})};
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
      answer.events.push_back({0, true});
      continue;
    }
    auto deliveries = add_event(ev, now);
    answer.deliveries += deliveries;
    answer.events.push_back({deliveries, false});
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
  // origin: what tells tocsin's own health events from a producer's
  // (producers cannot send origin "tocsin": api/event_validation).
  details.begin_object()
      .field("endpoint_id", r.endpoint_id)
      .field("origin", "tocsin")
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
  storage::changes created;
  std::size_t deliveries = 0;
  for (auto& r : routes_) {
    if (!r.enabled || !matches(r.filter, facts) ||
        r.endpoint_id == except_endpoint)
      continue;
    if (!content)
      content = make_event_content(ev, max_payload_bytes_);
    auto d = new_delivery(ev.id, r.endpoint_id, now);
    rec.delivery_ids.push_back(d.id);
    auto place = r.place(ev.severity, now);
    created.delivery_created(d, place);
    pending_.hand_over(r.endpoint_id, job_of(std::move(d), content, place));
    ++deliveries;
  }
  std::vector<fired_escalation> escalations;
  if (escalate_on_add_)
    escalations = episodes_.observe(ev, now, pending_);
  rec.body = std::move(ev.body);
  pending_.batch.event_accepted(rec);
  pending_.batch.append(std::move(created));
  pending_.on_commit.push_back(&accepted(ev.type));
  // An escalation is accepted right after the event that caused it, in the
  // same commit: both are durable, or neither (and the counts are rebuilt).
  for (auto& fired : escalations) {
    add_event(fired.event, now);
    episodes::link(fired, pending_);
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
    auto ri = route_of(d.endpoint_id);
    if (ri == routes_.size()) {
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
    auto content = make_event_content(**ev, max_payload_bytes_);
    auto place = routes_[ri].place(severity_rank_of(content.get()), now);
    pending_.batch.delivery_changed(
        d, storage::record_kind::delivery_replayed,
        storage::standing{storage::delivery_state::dead_lettered, 0}, place);
    auto endpoint = d.endpoint_id;
    pending_.hand_over(endpoint,
                       job_of(std::move(d), std::move(content), place));
    ++count;
  }
  return count;
}

status intake::commit() {
  auto seq = log_.commit(pending_.batch, storage::durability::synced);
  // Cleared, not replaced: the write set's buffers serve the next commit.
  pending_.batch.clear();
  pending_.answered.clear();
  pending_keys_.clear();
  replaying_.clear();
  auto counters = std::exchange(pending_.on_commit, {});
  auto jobs = std::exchange(pending_.handoff, {});
  if (!seq) {
    // The refused events were counted by the escalation rules: count again
    // from what the store holds.
    if (!episodes_.empty())
      if (auto st = episodes_.restore(last_added_at_); !st)
        log::error("escalation counts not rebuilt after a failed commit",
                   {{"error", st.error().message}});
    return seq.error();
  }
  for (auto* c : counters)
    c->add();
  committed_.jobs = std::move(jobs);
  committed_.as_of = *seq;
  return {};
}

handoff intake::take_handoff() {
  auto out = std::move(committed_);
  committed_ = {};
  return out;
}

status intake::change_endpoint(const endpoint_change& c) {
  reconfiguration r;
  r.endpoints.push_back(c);
  return reconfigure(r, 0);
}

status intake::reconfigure(const reconfiguration& r, unix_ms now) {
  using kind = endpoint_change::kind;
  // Each change against the table as the ones before it leave it: the
  // endpoints by id and revision.
  std::map<std::string, std::int64_t> table;
  for (auto& route : routes_)
    table.emplace(route.endpoint_id, route.revision);
  for (auto& c : r.endpoints) {
    if (c.what != kind::remove && !c.config)
      return error{"invalid_change", "endpoint " + c.id + ": no settings"};
    auto it = table.find(c.id);
    if (c.what == kind::create && it != table.end())
      return error{"conflict",
                   "an endpoint with id " + c.id + " already exists"};
    if (c.what != kind::create) {
      if (it == table.end())
        return error{"not_found", "no endpoint " + c.id};
      if (it->second != c.based_on)
        return error{"conflict", "endpoint " + c.id +
                                     " changed meanwhile; read it again and "
                                     "retry"};
    }
    if (c.what == kind::remove)
      table.erase(c.id);
    else
      table[c.id] = c.config->revision;
  }
  std::optional<episodes::rule_change> rules;
  if (r.escalation) {
    auto ready = episodes_.prepare_rules(*r.escalation, now, escalate_on_add_);
    if (!ready)
      return error{"store_unavailable",
                   "the escalation rules' counts cannot be rebuilt from the "
                   "event log: " +
                       ready.error().message};
    rules = std::move(*ready);
  }
  storage::changes ws;
  for (auto& c : r.endpoints)
    switch (c.what) {
    case kind::create:
      ws.endpoint_put(c.id, c.definition,
                      storage::record_kind::endpoint_created);
      break;
    case kind::update:
      ws.endpoint_put(
          c.id, c.definition,
          c.record_kind.value_or(storage::record_kind::endpoint_updated));
      break;
    case kind::remove:
      ws.endpoint_deleted(c.id);
      break;
    }
  if (!ws.empty())
    if (auto st = log_.commit(ws, storage::durability::synced); !st) {
      std::string ids;
      for (auto& c : r.endpoints)
        ids += (ids.empty() ? "" : ", ") + c.id;
      log::error("event log commit failed; endpoint change refused",
                 {{"endpoint", ids}, {"error", st.error().message}});
      return error{"store_unavailable",
                   "the event store refused the write; nothing changed"};
    }
  for (auto& c : r.endpoints) {
    auto ri = route_of(c.id);
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
  }
  if (rules)
    episodes_.install(std::move(*rules));
  return {};
}

std::size_t
intake::observe_accepted(const std::vector<storage::event_record>& events,
                         const storage::lease_grant& fence) {
  std::size_t fired = 0;
  for (auto& e : events)
    for (auto& f : episodes_.observe_stored(e, pending_)) {
      // Accepted like any event (its deliveries routed here); the rules see
      // it when the log says it was accepted, as they see every event.
      add_event(f.event, f.at);
      episodes::link(f, pending_);
      ++fired;
    }
  if (!pending_.batch.empty())
    pending_.batch.fence(fence.name, fence.epoch);
  return fired;
}

intake::synced
intake::sync_endpoint(const std::string& id,
                      const std::optional<endpoint_config>& config) {
  auto ri = route_of(id);
  bool exists = ri < routes_.size();
  if (!config) {
    if (!exists)
      return synced::nothing;
    routes_.erase(routes_.begin() + static_cast<std::ptrdiff_t>(ri));
    return synced::removed;
  }
  if (!exists) {
    routes_.push_back(route::of(*config));
    return synced::created;
  }
  if (routes_[ri].revision == config->revision)
    return synced::nothing;
  routes_[ri] = route::of(*config);
  return synced::updated;
}

} // namespace tocsin::delivery
