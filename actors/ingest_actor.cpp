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
  auto deps = self->state.deps;
  // In a cluster, under the epoch of the endpoint's lease.
  if (auto it = self->state.epochs.find(cfg.id); it != self->state.epochs.end())
    deps.epoch = it->second;
  auto a = self->spawn(endpoint_actor_fn, cfg, std::move(deps));
  self->monitor(a); // supervised: see the down handler
  return a;
}

/// Commits what was added since the last flush, answers everyone waiting
/// for it, then hands the new deliveries to their endpoints. Whether the
/// commit was made (the callers that care: an escalation under its lease).
status commit_waiting(self_ptr self) {
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
    if (auto it = st.endpoints.find(endpoint_id); it != st.endpoints.end()) {
      if (st.clustered)
        for (auto& j : jobs)
          st.handed_here.insert(j.state.id);
      self->send(it->second.first, deliver_atom_v, std::move(jobs),
                 handoff.as_of);
    }
  return committed;
}

/// commit_waiting() for the callers that have answered everyone already.
void flush(self_ptr self) {
  if (auto committed = commit_waiting(self); !committed)
    return; // logged, and every request waiting for it refused
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

/// Cluster mode: tells the membership actor which leases there are to place
/// (every endpoint, and the escalation lease when there are rules).
void announce_names(self_ptr self) {
  auto& st = self->state;
  if (!st.clustered || !st.membership)
    return;
  std::vector<std::string> names;
  names.reserve(st.all_endpoints.size() + 1);
  for (auto& [id, cfg] : st.all_endpoints)
    names.push_back(id);
  for (auto& id : st.orphans)
    if (st.all_endpoints.count(id) == 0)
      names.push_back(id);
  if (st.intake->has_escalation_rules())
    names.emplace_back(storage::escalation_lease);
  caf::anon_send(st.membership, names_atom_v, std::move(names));
}

/// Stops driving an endpoint at once (cluster mode: its lease is gone).
/// Attempts in flight are abandoned here: the next owner finds them
/// started and makes them again.
void stop_driving(self_ptr self, const std::string& id) {
  auto& st = self->state;
  st.epochs.erase(id);
  if (auto it = st.endpoints.find(id); it != st.endpoints.end()) {
    self->send_exit(it->second.first, caf::exit_reason::user_shutdown);
    st.endpoints.erase(it);
  }
}

/// Whether the endpoint's actor runs here: always when alone, while this
/// node holds its lease in a cluster.
bool drives(self_ptr self, const std::string& id) {
  return self->state.endpoints.count(id) > 0;
}

/// An endpoint created, changed or deleted (here or, in a cluster, on any
/// node): the actor that drives it, if it runs here, follows.
void endpoint_applied(self_ptr self, const std::string& id,
                      const std::optional<delivery::endpoint_config>& cfg,
                      bool created) {
  auto& st = self->state;
  if (!cfg) {
    if (st.clustered && st.all_endpoints.erase(id) > 0)
      st.orphans.insert(id);
    if (auto it = st.endpoints.find(id); it != st.endpoints.end()) {
      // Its queued deliveries are dead-lettered ("endpoint_deleted") by the
      // actor, the store's a page at a time; a crash before that leaves
      // them to the next start, which does the same.
      self->send(it->second.first, remove_atom_v);
      st.retired.push_back(it->second.first);
      st.endpoints.erase(it);
    }
    announce_names(self);
    return;
  }
  if (st.clustered)
    st.all_endpoints[id] = *cfg;
  if (auto it = st.endpoints.find(id); it != st.endpoints.end()) {
    it->second.second = *cfg;
    self->send(it->second.first, update_atom_v, *cfg);
  } else if (!st.clustered) {
    st.endpoints.emplace(id, std::make_pair(spawn_endpoint(self, *cfg), *cfg));
  }
  if (created)
    announce_names(self);
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
    endpoint_applied(self, c.id, c.config, true);
    log::info("endpoint created", {{"endpoint", c.id}});
    break;
  case kind::update:
    endpoint_applied(self, c.id, c.config, false);
    log::info("endpoint updated", {{"endpoint", c.id}});
    break;
  case kind::remove:
    endpoint_applied(self, c.id, std::nullopt, false);
    log::info("endpoint deleted", {{"endpoint", c.id}});
    break;
  }
  return {};
}

/// Flushes what waits for a commit, so that what comes next is committed
/// on its own (an escalation under its lease's fence) or sees the routing
/// table as it was.
void flush_waiting(self_ptr self) {
  auto& st = self->state;
  if (st.intake->dirty() || !st.waiting.empty() ||
      !st.waiting_replays.empty() || !st.waiting_answers.empty())
    flush(self);
}

/// A reload of the config file: its endpoint changes and escalation rules,
/// all or nothing (intake::reconfigure), then the endpoint actors follow.
status reconfigure(self_ptr self, const delivery::reconfiguration& r) {
  auto& st = self->state;
  // Deliveries waiting for the commit were routed with the table as it is,
  // and counted by the rules as they are: both go first.
  flush_waiting(self);
  if (auto s = st.intake->reconfigure(r, st.deps.clock()); !s)
    return s;
  using kind = delivery::endpoint_change::kind;
  for (auto& c : r.endpoints) {
    endpoint_applied(self, c.id,
                     c.what == kind::remove ? std::nullopt : c.config,
                     c.what == kind::create);
    log::info(c.what == kind::create   ? "endpoint created"
              : c.what == kind::update ? "endpoint updated"
                                       : "endpoint deleted",
              {{"endpoint", c.id}, {"by", "config reload"}});
  }
  if (r.escalation && st.clustered) {
    // The rules run on the node that holds the escalation lease: this one
    // counts again from the store with its new rules, as when it takes the
    // lease. Rules that appear or go place or free the lease.
    if (st.escalating)
      if (auto restored = st.intake->restore_escalations(st.deps.clock());
          !restored) {
        log::error("escalation counts not restored; the escalation lease "
                   "is given up",
                   {{"error", restored.error().message}});
        st.escalating.reset();
        caf::anon_send(st.membership, fenced_atom_v,
                       std::string{storage::escalation_lease});
      }
    announce_names(self);
  }
  return {};
}

/// Cluster mode: what the log says other nodes (and this one) did.
void follow(self_ptr self, follow_batch& b) {
  auto& st = self->state;
  // Endpoint changes first: a delivery in the same batch may be for one
  // just created.
  for (auto& [id, definition] : b.endpoints) {
    std::optional<delivery::endpoint_config> cfg;
    if (definition) {
      auto loaded = st.deps.endpoint_loader
                        ? st.deps.endpoint_loader(*definition)
                        : result<delivery::endpoint_config>{
                              error{"internal", "no endpoint loader"}};
      if (!loaded) {
        log::error("an endpoint another node changed cannot be run here; "
                   "it keeps its settings on this node",
                   {{"endpoint", id}, {"error", loaded.error().message}});
        continue;
      }
      cfg = std::move(*loaded);
    }
    flush_waiting(self);
    using synced = delivery::intake::synced;
    switch (st.intake->sync_endpoint(id, cfg)) {
    case synced::nothing:
      break;
    case synced::created:
      endpoint_applied(self, id, cfg, true);
      log::info("endpoint created on another node", {{"endpoint", id}});
      break;
    case synced::updated:
      endpoint_applied(self, id, cfg, false);
      log::info("endpoint updated on another node", {{"endpoint", id}});
      break;
    case synced::removed:
      endpoint_applied(self, id, std::nullopt, false);
      log::info("endpoint deleted on another node", {{"endpoint", id}});
      break;
    }
  }
  std::map<std::string, std::vector<pending_news>> by_endpoint;
  for (auto& n : b.pending)
    if (st.handed_here.erase(n.delivery_id) == 0 && drives(self, n.endpoint_id))
      by_endpoint[n.endpoint_id].push_back(std::move(n));
  for (auto& [id, news] : by_endpoint)
    self->send(st.endpoints.at(id).first, fetch_atom_v, std::move(news));
  if (!st.escalating || b.accepted.empty())
    return;
  auto events = st.deps.log->get_events(b.accepted);
  if (!events) {
    // Counted again from the store by the next holder of the lease, or by
    // this node when it takes it again: give it up now.
    log::error("cannot read accepted events for the escalation rules; the "
               "escalation lease is given up",
               {{"error", events.error().message}});
    st.escalating.reset();
    caf::anon_send(st.membership, fenced_atom_v,
                   std::string{storage::escalation_lease});
    return;
  }
  std::vector<storage::event_record> found;
  found.reserve(events->size());
  for (auto& e : *events)
    if (e)
      found.push_back(std::move(*e));
  flush_waiting(self);
  if (st.intake->observe_accepted(found, *st.escalating) == 0 &&
      !st.intake->dirty())
    return;
  if (auto committed = commit_waiting(self); !committed) {
    // Fenced (another node holds the lease now) or the store is down: the
    // counts are rebuilt from the store by whoever holds the lease next.
    log::warn("escalations not recorded; the escalation lease is given up",
              {{"error", committed.error().message}});
    st.escalating.reset();
    caf::anon_send(st.membership, fenced_atom_v,
                   std::string{storage::escalation_lease});
  }
}

/// The handlers both shapes share.
ingest_actor::behavior_type behavior(self_ptr self) {
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
      [=](reload_atom, const delivery::reconfiguration& r) {
        return reconfigure(self, r);
      },
      [=](flush_atom) { flush(self); },
      [=](sent_atom, const std::string& event_id,
          const std::string& endpoint_id) {
        auto& st = self->state;
        // follow_up reads the store: what waits for the commit goes first.
        flush_waiting(self);
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
      [=](own_atom, const std::string& name, std::uint64_t epoch) {
        auto& st = self->state;
        if (name == storage::escalation_lease) {
          // Counted again from the store: whatever the last holder counted
          // and did not record is counted here.
          if (auto restored = st.intake->restore_escalations(st.deps.clock());
              !restored) {
            log::error("escalation counts not restored; the escalation "
                       "lease is given up",
                       {{"error", restored.error().message}});
            caf::anon_send(st.membership, fenced_atom_v, name);
            return;
          }
          st.escalating = storage::lease_grant{name, epoch};
          log::info("this node runs the escalation rules",
                    {{"epoch", std::to_string(epoch)}});
          return;
        }
        stop_driving(self, name);
        st.epochs[name] = epoch;
        auto it = st.all_endpoints.find(name);
        if (it == st.all_endpoints.end()) {
          // Deleted meanwhile: what it left pending is dead-lettered.
          delivery::endpoint_config cfg;
          cfg.id = name;
          auto a = spawn_endpoint(self, cfg);
          self->send(a, remove_atom_v);
          st.retired.push_back(a);
          return;
        }
        st.endpoints.emplace(
            name, std::make_pair(spawn_endpoint(self, it->second), it->second));
        log::info("this node drives the endpoint now",
                  {{"endpoint", name}, {"epoch", std::to_string(epoch)}});
      },
      [=](disown_atom, const std::string& name) {
        auto& st = self->state;
        if (name == storage::escalation_lease) {
          st.escalating.reset();
          return;
        }
        if (drives(self, name))
          log::warn("the endpoint's lease was lost; this node stops driving it",
                    {{"endpoint", name}});
        stop_driving(self, name);
      },
      [=](hand_over_atom, const std::string& name) -> caf::result<bool> {
        auto& st = self->state;
        if (name == storage::escalation_lease) {
          flush_waiting(self);
          st.escalating.reset();
          return true;
        }
        auto it = st.endpoints.find(name);
        if (it == st.endpoints.end())
          return true;
        // Nothing new starts; once nothing is in flight (outcomes written)
        // the actor stops and the lease can go.
        auto actor = it->second.first;
        auto promise = self->make_response_promise<bool>();
        self->request(actor, caf::infinite, drain_atom_v)
            .then(
                [=](bool) mutable {
                  auto& st = self->state;
                  if (auto it = st.endpoints.find(name);
                      it != st.endpoints.end() && it->second.first == actor)
                    stop_driving(self, name);
                  log::info("endpoint handed over", {{"endpoint", name}});
                  promise.deliver(true);
                },
                [=](caf::error&) mutable { promise.deliver(true); });
        return promise;
      },
      [=](follow_atom, follow_batch& b) { follow(self, b); },
      [=](fenced_atom, const std::string& name) {
        auto& st = self->state;
        stop_driving(self, name);
        if (st.membership)
          caf::anon_send(st.membership, fenced_atom_v, name);
      },
  };
}

void setup(self_ptr self, std::vector<delivery::endpoint_config>& endpoints,
           actor_deps& deps, bool clustered) {
  auto& st = self->state;
  st.deps = std::move(deps);
  st.deps.supervisor = self->address();
  st.clustered = clustered;
  std::vector<delivery::route> routes;
  for (auto& cfg : endpoints) {
    routes.push_back(delivery::route::of(cfg));
    if (clustered)
      st.all_endpoints.emplace(cfg.id, cfg);
    else
      st.endpoints.emplace(cfg.id,
                           std::make_pair(spawn_endpoint(self, cfg), cfg));
  }
  st.intake.emplace(*st.deps.log, std::move(routes), st.deps.max_payload_bytes,
                    st.deps.escalation);
}

} // namespace

ingest_actor::behavior_type
ingest_actor_fn(ingest_actor::stateful_pointer<ingest_state> self,
                std::vector<delivery::endpoint_config> endpoints,
                actor_deps deps) {
  setup(self, endpoints, deps, false);
  auto& st = self->state;
  // A restart inside a window neither loses the count nor fires twice.
  if (auto restored = st.intake->restore_escalations(st.deps.clock());
      !restored)
    log::error("escalation counts not restored from the event log; they "
               "start from nothing",
               {{"error", restored.error().message}});
  retire_orphans(self);
  return behavior(self);
}

ingest_actor::behavior_type
clustered_ingest_actor_fn(ingest_actor::stateful_pointer<ingest_state> self,
                          std::vector<delivery::endpoint_config> endpoints,
                          actor_deps deps, caf::actor membership) {
  setup(self, endpoints, deps, true);
  auto& st = self->state;
  st.membership = std::move(membership);
  // Deliveries left by endpoints deleted while no node ran: the node that
  // takes such an endpoint's lease dead-letters them.
  if (auto pending = st.deps.log->endpoints_with_pending())
    for (auto& id : *pending)
      if (st.all_endpoints.count(id) == 0)
        st.orphans.insert(id);
  // The rules run on the node that holds the escalation lease, over the
  // events the log says were accepted.
  st.intake->escalate_on_add(false);
  announce_names(self);
  return behavior(self);
}

} // namespace tocsin::actors
