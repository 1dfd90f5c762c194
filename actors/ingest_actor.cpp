#include "actors/ingest_actor.hpp"

#include "actors/endpoint_actor.hpp"
#include "common/ids.hpp"
#include "common/log.hpp"
#include "delivery/routing.hpp"

namespace tocsin::actors {

using namespace tocsin::delivery;

namespace {

using self_ptr = caf::stateful_actor<ingest_state>*;

constexpr unix_ms idempotency_window_ms = 24 * 3600 * 1000;

/// A key as stored: scoped to the token that sent it (keys never hold a
/// space, so the scope cannot be forged by a key).
std::string scoped_key(const ingest_batch& b, const std::string& key) {
  return b.idempotency_scope + " " + key;
}

/// What a key was first used for, if that was within the window.
std::optional<storage::idempotency_record>
find_key(ingest_state& st, const std::string& key, unix_ms now) {
  if (auto it = st.pending_keys.find(key); it != st.pending_keys.end())
    return it->second;
  auto rec = st.log->get_idempotency_key(key);
  if (!rec) {
    // Accepting again is the safe side: at worst a duplicate delivery.
    log::error("idempotency lookup failed", {{"error", rec.error().message}});
    return std::nullopt;
  }
  if (*rec && (*rec)->at + idempotency_window_ms > now)
    return std::move(**rec);
  return std::nullopt;
}

void remember_key(ingest_state& st, const std::string& key,
                  storage::idempotency_record rec) {
  st.batch.put_idempotency_key(key, rec);
  st.pending_keys.insert_or_assign(key, std::move(rec));
}

error key_reused(std::string field) {
  return error{"idempotency_key_reused",
               "this idempotency key was used for a different request within "
               "24 h; use a new key for new content",
               std::move(field)};
}

/// How the request's keys are answered, decided before anything is stored
/// (a batch is all or nothing): `repeat_of[i]` is the id event i repeats,
/// or empty for a new event. An error when a key covers other content.
result<std::vector<std::string>>
resolve_keys(ingest_state& st, const ingest_batch& b, unix_ms now) {
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
    if (auto prior = find_key(st, key, now)) {
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

void add(self_ptr self, ingest_request& req) {
  auto& st = self->state;
  auto now = now_ms();
  auto& b = req.batch;
  if (!b.idempotency_key.empty())
    if (auto prior = find_key(st, scoped_key(b, b.idempotency_key), now)) {
      if (prior->digest != b.idempotency_digest)
        return req.done(key_reused("Idempotency-Key"));
      req.answer = std::move(prior->ids);
      st.waiting.push_back(std::move(req));
      return;
    }
  auto repeats = resolve_keys(st, b, now);
  if (!repeats)
    return req.done(repeats.error());
  for (std::size_t i = 0; i < b.events.size(); ++i) {
    auto& ev = b.events[i];
    if (!(*repeats)[i].empty()) {
      ev.id = std::move((*repeats)[i]); // answered with the first id
      continue;
    }
    storage::event_record rec;
    rec.id = ev.id;
    rec.accepted_at = now;
    // The event is stored whole; what endpoints receive may be cut down.
    // Built for the first matching endpoint, shared by the others.
    std::shared_ptr<const event_content> content;
    event_facts facts{ev.type, ev.severity, ev.agent_id};
    st.handoff.resize(st.routes.size());
    for (std::size_t ri = 0; ri < st.routes.size(); ++ri) {
      auto& r = st.routes[ri];
      if (!r.enabled || !matches(r.filter, facts))
        continue;
      if (!content)
        content = make_event_content(ev, st.max_payload_bytes);
      storage::delivery d;
      d.id = new_id("dlv");
      d.event_id = ev.id;
      d.endpoint_id = r.endpoint_id;
      d.created_at = now;
      d.next_attempt_at = now;
      rec.delivery_ids.push_back(d.id);
      st.created.add_delivery(d);
      st.handoff[ri].push_back(delivery_job{std::move(d), content});
      ++req.deliveries;
    }
    rec.body = std::move(ev.body);
    st.batch.add_event(rec);
    st.batch.append(std::move(st.created));
    if (!ev.idempotency_key.empty())
      remember_key(st, scoped_key(b, ev.idempotency_key),
                   {{ev.id}, now, ev.idempotency_digest});
  }
  if (!b.idempotency_key.empty()) {
    std::vector<std::string> ids;
    for (auto& ev : b.events)
      ids.push_back(ev.id);
    remember_key(st, scoped_key(b, b.idempotency_key),
                 {std::move(ids), now, b.idempotency_digest});
  }
  st.waiting.push_back(std::move(req));
}

/// The route of an endpoint id, or routes.size() if there is none.
std::size_t route_of(const ingest_state& st, const std::string& endpoint_id) {
  for (std::size_t i = 0; i < st.routes.size(); ++i)
    if (st.routes[i].endpoint_id == endpoint_id)
      return i;
  return st.routes.size();
}

/// The dead letters a selection names; an error when one named is missing
/// or not dead-lettered.
result<std::vector<storage::delivery>> select(ingest_state& st,
                                              const replay_selection& sel) {
  std::vector<storage::delivery> out;
  if (!sel.delivery_ids.empty()) {
    for (auto& id : sel.delivery_ids) {
      auto d = st.log->get_delivery(id);
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
  if (route_of(st, sel.endpoint_id) == st.routes.size())
    return error{"not_found", "no endpoint " + sel.endpoint_id};
  // The endpoint's own dead letters, from `since`: the others are not read.
  auto chosen =
      st.log->list_dead_letters_of(sel.endpoint_id, sel.since, sel.limit);
  if (!chosen)
    return error{"store_unavailable", chosen.error().message};
  return std::move(*chosen);
}

void replay(self_ptr self, replay_request& req) {
  auto& st = self->state;
  auto chosen = select(st, req.selection);
  if (!chosen)
    return req.done(chosen.error());
  auto now = now_ms();
  std::size_t count = 0;
  st.handoff.resize(st.routes.size());
  for (auto& d : *chosen) {
    // Replayed earlier in this batch: the store does not show it yet.
    if (!st.replaying.insert(d.id).second) {
      if (!req.selection.delivery_ids.empty())
        return req.done(error{"not_dead_lettered",
                              "delivery " + d.id + " is being replayed"});
      continue;
    }
    auto ri = route_of(st, d.endpoint_id);
    if (ri == st.routes.size()) {
      if (!req.selection.delivery_ids.empty())
        return req.done(error{"endpoint_deleted",
                              "the endpoint of " + d.id + " no longer exists"});
      continue;
    }
    auto ev = st.log->get_event(d.event_id);
    if (!ev || !*ev)
      return req.done(
          error{"store_unavailable", "cannot read event " + d.event_id});
    // A fresh window: the attempts so far stay in the record but no longer
    // count against the budget.
    d.state = storage::delivery_state::pending;
    d.reason.clear();
    d.finished_at = 0;
    d.window_start = 0;
    d.attempt_base = static_cast<int>(d.attempts.size());
    d.next_attempt_at = now;
    st.batch.put_delivery(d, storage::record_kind::delivery_replayed,
                          storage::delivery_state::dead_lettered);
    st.handoff[ri].push_back(delivery_job{
        std::move(d), make_event_content((*ev)->body, st.max_payload_bytes)});
    ++count;
  }
  st.waiting_replays.emplace_back(count, std::move(req.done));
}

void flush(self_ptr self) {
  auto& st = self->state;
  st.flush_scheduled = false;
  auto committed = st.log->commit(st.batch, storage::durability::synced);
  st.batch.clear();
  if (!committed) {
    log::error("event log commit failed; events refused",
               {{"error", committed.error().message},
                {"requests", std::to_string(st.waiting.size())}});
    for (auto& req : st.waiting)
      req.done(
          error{"store_unavailable",
                "the event store refused the write; nothing was accepted"});
    for (auto& [count, done] : st.waiting_replays)
      done(error{"store_unavailable",
                 "the event store refused the write; nothing was replayed"});
  } else {
    for (auto& [count, done] : st.waiting_replays)
      done(count);
    for (auto& req : st.waiting) {
      if (req.answer) {
        req.done(ingest_answer{std::move(*req.answer), 0});
        continue;
      }
      ingest_answer answer;
      answer.ids.reserve(req.batch.events.size());
      for (auto& ev : req.batch.events)
        answer.ids.push_back(std::move(ev.id));
      answer.deliveries = req.deliveries;
      req.done(std::move(answer));
    }
    for (std::size_t ri = 0; ri < st.handoff.size(); ++ri)
      if (!st.handoff[ri].empty())
        self->send(st.routes[ri].endpoint, deliver_atom_v,
                   std::move(st.handoff[ri]));
  }
  st.waiting.clear();
  st.waiting_replays.clear();
  st.replaying.clear();
  st.handoff.clear();
  st.pending_keys.clear();
}

/// Creates, changes or deletes an endpoint: logged (synced) first, then in
/// effect for every event that comes after.
void change_endpoint(self_ptr self, endpoint_change_request& req) {
  auto& st = self->state;
  // Deliveries waiting for the flush are indexed by route: hand them over
  // before the routing table changes.
  if (st.flush_scheduled)
    flush(self);
  auto& c = req.change;
  auto ri = route_of(st, c.id);
  bool exists = ri < st.routes.size();
  if (c.what == endpoint_change::kind::create && exists)
    return req.done(
        error{"conflict", "an endpoint with id " + c.id + " already exists"});
  if (c.what != endpoint_change::kind::create) {
    if (!exists)
      return req.done(error{"not_found", "no endpoint " + c.id});
    if (st.routes[ri].revision != c.based_on)
      return req.done(
          error{"conflict", "endpoint " + c.id +
                                " changed meanwhile; read it again and retry"});
  }
  storage::write_set ws;
  switch (c.what) {
  case endpoint_change::kind::create:
    ws.put_endpoint(c.id, c.definition, storage::record_kind::endpoint_created);
    break;
  case endpoint_change::kind::update:
    ws.put_endpoint(
        c.id, c.definition,
        c.record_kind.value_or(storage::record_kind::endpoint_updated));
    break;
  case endpoint_change::kind::remove:
    ws.delete_endpoint(c.id);
    break;
  }
  if (auto s = st.log->commit(ws, storage::durability::synced); !s) {
    log::error("event log commit failed; endpoint change refused",
               {{"endpoint", c.id}, {"error", s.error().message}});
    return req.done(
        error{"store_unavailable",
              "the event store refused the write; nothing changed"});
  }
  switch (c.what) {
  case endpoint_change::kind::create: {
    auto& cfg = *c.config;
    auto a = self->system().spawn(endpoint_actor, cfg, st.log, st.client);
    st.routes.push_back(
        route{cfg.id, cfg.filter, a, cfg.enabled, cfg.revision});
    log::info("endpoint created", {{"endpoint", c.id}});
    break;
  }
  case endpoint_change::kind::update: {
    auto& r = st.routes[ri];
    r.filter = c.config->filter;
    r.enabled = c.config->enabled;
    r.revision = c.config->revision;
    self->send(r.endpoint, update_atom_v, std::move(*c.config));
    log::info("endpoint updated", {{"endpoint", c.id}});
    break;
  }
  case endpoint_change::kind::remove: {
    // Its queued deliveries are dead-lettered ("endpoint_deleted") by the
    // actor; a crash before that leaves them to recovery, which does the same.
    auto a = st.routes[ri].endpoint;
    self->send(a, remove_atom_v);
    self->monitor(a); // forgotten when it quits (down handler)
    st.retired.push_back(std::move(a));
    st.routes.erase(st.routes.begin() + static_cast<std::ptrdiff_t>(ri));
    log::info("endpoint deleted", {{"endpoint", c.id}});
    break;
  }
  }
  req.done({});
}

} // namespace

caf::behavior ingest_actor(caf::stateful_actor<ingest_state>* self,
                           storage::event_log* log, net::https_client* client,
                           std::vector<route> routes,
                           std::size_t max_payload_bytes) {
  self->state.log = log;
  self->state.client = client;
  self->set_down_handler([self](caf::down_msg& msg) {
    std::erase_if(self->state.retired, [&](const caf::actor& a) {
      return a.address() == msg.source;
    });
  });
  self->state.routes = std::move(routes);
  self->state.max_payload_bytes = max_payload_bytes;
  // Everything already in the mailbox is handled before this flush, so one
  // fsync covers all requests that arrived while the last one ran.
  auto schedule_flush = [self] {
    if (!self->state.flush_scheduled) {
      self->state.flush_scheduled = true;
      self->send(self, flush_atom_v);
    }
  };
  return {
      [=](ingest_atom, ingest_request& req) {
        add(self, req);
        schedule_flush();
      },
      [=](replay_atom, replay_request& req) {
        replay(self, req);
        schedule_flush();
      },
      [=](flush_atom) { flush(self); },
      [=](endpoint_atom, endpoint_change_request& req) {
        change_endpoint(self, req);
      },
      [=](endpoints_atom) {
        auto& st = self->state;
        std::vector<caf::actor> all;
        for (auto& r : st.routes)
          all.push_back(r.endpoint);
        all.insert(all.end(), st.retired.begin(), st.retired.end());
        return all;
      },
  };
}

} // namespace tocsin::actors
