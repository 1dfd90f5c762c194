#include "actors/ingest_actor.hpp"

#include "common/log.hpp"

namespace tocsin::actors {

namespace {

using self_ptr = ingest_actor::stateful_pointer<ingest_state>;

void schedule_flush(self_ptr self) {
  auto& st = self->state;
  if (!st.flush_scheduled) {
    // Everything already in the mailbox is handled before this flush, so
    // one fsync covers every request that arrived while the last one ran.
    st.flush_scheduled = true;
    self->send(self, flush_atom_v);
  }
}

endpoint_actor spawn_endpoint(self_ptr self,
                              const delivery::endpoint_config& cfg) {
  auto a = self->spawn(endpoint_actor_fn, cfg, self->state.deps);
  self->monitor(a); // supervised: see the down handler
  return a;
}

/// Commits what was added since the last flush, answers everyone waiting
/// for it, then hands the new deliveries to their endpoints.
void flush(self_ptr self) {
  auto& st = self->state;
  st.flush_scheduled = false;
  auto committed = st.intake->commit();
  if (!committed && st.refusals_log.admit())
    log::error("event log commit failed; events refused",
               {{"error", committed.error().message},
                {"requests", std::to_string(st.waiting.size())},
                {"earlier_refusals_not_logged",
                 std::to_string(st.refusals_log.held_back())}});
  for (auto& [promise, answer] : st.waiting)
    if (committed)
      promise.deliver(ingest_reply{std::move(answer)});
    else
      promise.deliver(ingest_reply{
          error{"store_unavailable",
                "the event store refused the write; nothing was accepted"}});
  for (auto& [promise, count] : st.waiting_replays)
    if (committed)
      promise.deliver(replay_reply{count});
    else
      promise.deliver(replay_reply{
          error{"store_unavailable",
                "the event store refused the write; nothing was replayed"}});
  for (auto& [promise, outcome] : st.waiting_answers)
    if (committed)
      promise.deliver(answer_reply{std::move(outcome)});
    else
      promise.deliver(answer_reply{
          error{"store_unavailable",
                "the event store refused the write; nothing was recorded"}});
  st.waiting.clear();
  st.waiting_replays.clear();
  st.waiting_answers.clear();
  auto handoff = st.intake->take_handoff();
  for (auto& [endpoint_id, jobs] : handoff.jobs)
    if (auto it = st.endpoints.find(endpoint_id); it != st.endpoints.end())
      self->send(it->second.first, deliver_atom_v, std::move(jobs),
                 handoff.as_of);
}

/// An endpoint actor that died (not one that finished): start it again. It
/// reads its pending deliveries back from the store like any endpoint actor
/// that starts (an attempt that was in flight counts as interrupted).
void restart(self_ptr self, const std::string& endpoint_id,
             const caf::error& reason) {
  auto& st = self->state;
  auto it = st.endpoints.find(endpoint_id);
  log::error(
      "endpoint actor died; starting it again",
      {{"endpoint", endpoint_id}, {"reason", self->system().render(reason)}});
  // What was on its way to the dead actor must be in the store before the
  // new one reads it.
  if (st.intake->dirty())
    flush(self);
  it->second.first = spawn_endpoint(self, it->second.second);
}

/// Deliveries left pending for endpoints that no longer exist (deleted
/// while the daemon was down, or removed from the config file): an actor
/// per such endpoint dead-letters them ("endpoint_deleted") a page at a
/// time, then ends.
void retire_orphans(self_ptr self) {
  auto& st = self->state;
  auto with_pending = st.deps.log->endpoints_with_pending();
  if (!with_pending) {
    log::error("cannot list the endpoints with pending deliveries; those "
               "of deleted endpoints stay pending until the next start",
               {{"error", with_pending.error().message}});
    return;
  }
  for (auto& id : *with_pending) {
    if (st.endpoints.count(id) > 0)
      continue;
    log::warn("deliveries of a deleted endpoint are dead-lettered",
              {{"endpoint", id}});
    delivery::endpoint_config cfg;
    cfg.id = id;
    auto a = spawn_endpoint(self, cfg);
    self->send(a, remove_atom_v);
    st.retired.push_back(a);
  }
}

status change_endpoint(self_ptr self, const delivery::endpoint_change& c) {
  auto& st = self->state;
  // Deliveries waiting for the commit were routed with the table as it is:
  // hand them over before it changes.
  if (st.intake->dirty() || !st.waiting.empty() ||
      !st.waiting_replays.empty() || !st.waiting_answers.empty())
    flush(self);
  if (auto s = st.intake->change_endpoint(c); !s)
    return s;
  using kind = delivery::endpoint_change::kind;
  switch (c.what) {
  case kind::create:
    st.endpoints.emplace(
        c.id, std::make_pair(spawn_endpoint(self, *c.config), *c.config));
    log::info("endpoint created", {{"endpoint", c.id}});
    break;
  case kind::update: {
    auto& entry = st.endpoints.at(c.id);
    entry.second = *c.config;
    self->send(entry.first, update_atom_v, *c.config);
    log::info("endpoint updated", {{"endpoint", c.id}});
    break;
  }
  case kind::remove: {
    // Its queued deliveries are dead-lettered ("endpoint_deleted") by the
    // actor, the store's a page at a time; a crash before that leaves them
    // to the next start, which does the same.
    auto it = st.endpoints.find(c.id);
    self->send(it->second.first, remove_atom_v);
    st.retired.push_back(it->second.first);
    st.endpoints.erase(it);
    log::info("endpoint deleted", {{"endpoint", c.id}});
    break;
  }
  }
  return {};
}

} // namespace

ingest_actor::behavior_type
ingest_actor_fn(ingest_actor::stateful_pointer<ingest_state> self,
                std::vector<delivery::endpoint_config> endpoints,
                actor_deps deps) {
  auto& st = self->state;
  st.deps = std::move(deps);
  st.deps.supervisor = self->address();
  std::vector<delivery::route> routes;
  for (auto& cfg : endpoints) {
    routes.push_back(delivery::route::of(cfg));
    st.endpoints.emplace(cfg.id,
                         std::make_pair(spawn_endpoint(self, cfg), cfg));
  }
  st.intake.emplace(*st.deps.log, std::move(routes), st.deps.max_payload_bytes,
                    st.deps.escalation);
  // A restart inside a window neither loses the count nor fires twice.
  if (auto restored = st.intake->restore_escalations(st.deps.clock());
      !restored)
    log::error("escalation counts not restored from the event log; they "
               "start from nothing",
               {{"error", restored.error().message}});
  retire_orphans(self);
  self->set_down_handler([self](caf::down_msg& msg) {
    auto& st = self->state;
    if (std::erase_if(st.retired, [&](const endpoint_actor& a) {
          return a.address() == msg.source;
        }) > 0)
      return; // a deleted endpoint finished
    for (auto& [id, entry] : st.endpoints)
      if (entry.first.address() == msg.source) {
        if (msg.reason != caf::exit_reason::user_shutdown)
          restart(self, id, msg.reason);
        return;
      }
  });
  return {
      [=](ingest_atom,
          delivery::ingest_batch& batch) -> caf::result<ingest_reply> {
        auto& st = self->state;
        auto answer = st.intake->add(batch, st.deps.clock());
        if (!answer)
          return ingest_reply{answer.error()};
        // Answered after the commit, repeats too: the ids they repeat may be
        // in this very commit.
        st.waiting.emplace_back(self->make_response_promise<ingest_reply>(),
                                std::move(*answer));
        schedule_flush(self);
        return st.waiting.back().first;
      },
      [=](replay_atom,
          const delivery::replay_selection& sel) -> caf::result<replay_reply> {
        auto& st = self->state;
        auto n = st.intake->replay(sel, st.deps.clock());
        if (!n)
          return replay_reply{n.error()};
        st.waiting_replays.emplace_back(
            self->make_response_promise<replay_reply>(), *n);
        schedule_flush(self);
        return st.waiting_replays.back().first;
      },
      [=](answer_atom,
          const delivery::answer_request& req) -> caf::result<answer_reply> {
        auto& st = self->state;
        auto outcome = st.intake->answer(req, st.deps.clock());
        if (!outcome)
          return answer_reply{outcome.error()};
        st.waiting_answers.emplace_back(
            self->make_response_promise<answer_reply>(), std::move(*outcome));
        schedule_flush(self);
        return st.waiting_answers.back().first;
      },
      [=](endpoint_atom, const delivery::endpoint_change& c) {
        return change_endpoint(self, c);
      },
      [=](flush_atom) { flush(self); },
      [=](sent_atom, const std::string& event_id,
          const std::string& endpoint_id) {
        auto& st = self->state;
        // follow_up reads the store: what waits for the commit goes first.
        if (st.intake->dirty() || !st.waiting.empty() ||
            !st.waiting_replays.empty() || !st.waiting_answers.empty())
          flush(self);
        auto added =
            st.intake->follow_up(event_id, endpoint_id, st.deps.clock());
        if (!added)
          log::error("answer not sent after a late trigger",
                     {{"event", event_id},
                      {"endpoint", endpoint_id},
                      {"error", added.error().message}});
        else if (*added)
          schedule_flush(self);
      },
      [=](health_atom, const delivery::health_report& r) {
        auto& st = self->state;
        auto id = st.intake->raise_health(r, st.deps.clock());
        log::info(r.healthy ? "endpoint healthy again; system.health raised"
                            : "endpoint unhealthy; system.health raised",
                  {{"endpoint", r.endpoint_id}, {"event", id}});
        schedule_flush(self);
      },
      [=](endpoints_atom) {
        std::vector<endpoint_actor> all;
        for (auto& [id, entry] : self->state.endpoints)
          all.push_back(entry.first);
        all.insert(all.end(), self->state.retired.begin(),
                   self->state.retired.end());
        return all;
      },
  };
}

} // namespace tocsin::actors
