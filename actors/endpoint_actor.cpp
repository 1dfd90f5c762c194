#include "actors/endpoint_actor.hpp"

#include "common/metric_families.hpp"

#include "common/log.hpp"
#include "delivery/request.hpp"

#include <random>
#include <unordered_map>

namespace tocsin::actors {

namespace {

using self_ptr = endpoint_actor::stateful_pointer<endpoint_state>;

/// Asks for a tick at `at` unless an earlier one is pending.
void wake_at(self_ptr self, unix_ms at) {
  auto& st = self->state;
  if (st.tick_at != 0 && st.tick_at <= at)
    return;
  st.tick_at = at;
  auto delay = std::max<unix_ms>(1, at - st.deps.clock());
  self->delayed_send(self, std::chrono::milliseconds{delay}, tick_atom_v);
}

void schedule_flush(self_ptr self) {
  auto& st = self->state;
  if (!st.flush_scheduled) {
    // Behind every message already queued: one write covers all of them.
    st.flush_scheduled = true;
    self->send(self, flush_atom_v);
  }
}

/// Commits what the endpoint recorded, under its lease's epoch in a
/// cluster. A write refused because another node took the lease ends the
/// endpoint's run here: the supervisor is told (once) and stops it.
status write(self_ptr self, storage::changes& ws) {
  auto& st = self->state;
  auto& id = st.queue->config().id;
  if (st.deps.epoch != 0)
    ws.fence(id, st.deps.epoch);
  auto committed = st.deps.log->commit(ws, storage::durability::buffered);
  if (committed)
    return {};
  if (committed.error().code == "fenced" && !st.fenced) {
    st.fenced = true;
    st.queue->drain(); // nothing new starts while the supervisor stops it
    metrics::families::cluster_fenced_writes().with().add();
    log::warn("another node drives the endpoint now; this node stops",
              {{"endpoint", id}, {"error", committed.error().message}});
    if (auto to = caf::actor_cast<ingest_actor>(st.deps.supervisor))
      self->send(to, fenced_atom_v, id);
  }
  return committed.error();
}

/// Answers drain requests and ends a removed endpoint, once nothing runs.
void check_idle(self_ptr self) {
  auto& st = self->state;
  if (!st.queue->idle())
    return;
  for (auto& promise : st.drained)
    promise.deliver(true);
  st.drained.clear();
  if (st.queue->removed())
    self->quit();
}

/// Reads the next page of the endpoint's pending deliveries from the store,
/// if the queue wants one: the events are read once per page and event.
/// What it records (interrupted attempts, dead letters of a deleted
/// endpoint) is written at the next flush.
void page_in(self_ptr self, unix_ms now) {
  auto& st = self->state;
  auto& q = *st.queue;
  auto want = q.page_wanted();
  if (!want)
    return;
  auto& id = q.config().id;
  auto page = st.deps.log->line_of(
      id, want->from, want->limit,
      [&q](std::string_view delivery_id) { return q.holds(delivery_id); });
  std::vector<delivery::job> jobs;
  std::optional<error> failed;
  if (!page)
    failed = page.error();
  // The page's events, each read once, in one batched lookup.
  std::unordered_map<std::string,
                     std::shared_ptr<const delivery::event_content>>
      contents;
  std::vector<std::string> event_ids;
  if (page)
    for (auto& d : page->deliveries)
      if (contents.emplace(d.event_id, nullptr).second)
        event_ids.push_back(d.event_id);
  if (!event_ids.empty()) {
    auto events = st.deps.log->get_events(event_ids);
    if (!events)
      failed = events.error();
    else
      for (std::size_t i = 0; i < event_ids.size(); ++i)
        // A missing event cannot be sent: the job goes without one and is
        // dead-lettered when its request cannot be built.
        if (auto& ev = (*events)[i])
          contents[event_ids[i]] =
              delivery::make_event_content(*ev, st.deps.max_payload_bytes);
  }
  if (!failed)
    for (std::size_t i = 0; i < page->deliveries.size(); ++i) {
      auto& d = page->deliveries[i];
      auto content = contents[d.event_id];
      jobs.push_back(
          delivery::job_of(std::move(d), std::move(content), page->places[i]));
    }
  if (failed) {
    log::error("cannot read the endpoint's pending deliveries; trying "
               "again in a second",
               {{"endpoint", id}, {"error", failed->message}});
    wake_at(self, now + delivery::store_retry_delay_ms);
    return;
  }
  bool first = !st.paged_once;
  st.paged_once = true;
  auto r = q.paged(std::move(jobs), std::move(page->next), page->as_of, now,
                   st.outcomes);
  if (first && r.loaded + r.interrupted > 0)
    log::info("pending deliveries resume from the store",
              {{"endpoint", id},
               {"first_page", std::to_string(r.loaded + r.interrupted)},
               {"more_in_store", q.spilled() ? "yes" : "no"}});
  if (r.interrupted > 0)
    log::warn(
        "attempts cut short by a restart are made again",
        {{"endpoint", id}, {"deliveries", std::to_string(r.interrupted)}});
  if (r.interrupted + r.dead_lettered > 0)
    schedule_flush(self);
}

/// Deliveries another node made pending (a cluster): read from the store,
/// each with its event, and added as of the log position that made them
/// pending (a page that saw that position has them already). Those no
/// longer pending (delivered here meanwhile) are left alone.
void fetch(self_ptr self, std::vector<pending_news>& news) {
  auto& st = self->state;
  auto& q = *st.queue;
  std::vector<std::string> ids;
  ids.reserve(news.size());
  for (auto& n : news)
    if (!q.holds(n.delivery_id))
      ids.push_back(n.delivery_id);
  if (ids.empty())
    return;
  auto found = st.deps.log->get_deliveries(ids);
  std::vector<std::string> event_ids;
  std::unordered_map<std::string,
                     std::shared_ptr<const delivery::event_content>>
      contents;
  if (found)
    for (auto& d : *found)
      if (d && d->state == storage::delivery_state::pending &&
          contents.emplace(d->event_id, nullptr).second)
        event_ids.push_back(d->event_id);
  auto events =
      found ? st.deps.log->get_events(event_ids)
            : decltype(st.deps.log->get_events(event_ids)){found.error()};
  if (!events) {
    // They stay in the store, where nothing else would page them in (the
    // queue may hold everything it knows of): the line is read again from
    // the start, a second from now if the store is still out of reach.
    log::error(
        "cannot read deliveries another node made pending; the endpoint's "
        "line is read again from the store",
        {{"endpoint", q.config().id}, {"error", events.error().message}});
    q.reread();
    return;
  }
  for (std::size_t i = 0; i < event_ids.size(); ++i)
    if (auto& ev = (*events)[i])
      contents[event_ids[i]] =
          delivery::make_event_content(*ev, st.deps.max_payload_bytes);
  std::unordered_map<std::string_view, std::uint64_t> seq_of;
  for (auto& n : news)
    seq_of[n.delivery_id] = n.seq;
  auto ordered = q.config().ordered;
  for (auto& d : *found) {
    if (!d || d->state != storage::delivery_state::pending)
      continue;
    auto seq = seq_of[d->id];
    auto content = contents[d->event_id];
    auto place = delivery::place_in_line(
        ordered, delivery::severity_rank_of(content.get()), d->next_attempt_at);
    std::vector<delivery::job> one;
    one.push_back(delivery::job_of(std::move(*d), std::move(content), place));
    q.add(std::move(one), seq);
  }
}

/// Sends the attempts `starting` once their "attempt.started" records were
/// committed (`written`); after a failed write they go back to wait, unsent.
void launch(self_ptr self, std::vector<delivery::job> starting,
            const status& written, unix_ms now) {
  auto& st = self->state;
  auto& q = *st.queue;
  if (starting.empty())
    return;
  if (!written) {
    if (st.store_errors_log.admit())
      log::error("event log write failed; attempts postponed",
                 {{"endpoint", q.config().id},
                  {"error", written.error().message},
                  {"earlier_failures_not_logged",
                   std::to_string(st.store_errors_log.held_back())}});
    q.unlaunched(std::move(starting), now);
    return;
  }
  std::vector<std::pair<std::string, result<net::outbound_request>>> reqs;
  for (auto& job : starting)
    reqs.emplace_back(
        job.state.id,
        delivery::build_request(q.config(), job, now, st.deps.public_url));
  q.launched(std::move(starting));
  auto handle = caf::actor_cast<endpoint_actor>(self);
  std::vector<std::pair<net::outbound_request, net::https_client::completion>>
      sends;
  sends.reserve(reqs.size());
  for (auto& [id, req] : reqs) {
    if (!req) {
      net::inbound_response failed;
      failed.unsendable = true;
      failed.error = req.error().code + ": " + req.error().message;
      self->send(self, done_atom_v, id, std::move(failed));
      continue;
    }
    sends.emplace_back(
        std::move(*req), [handle, id = id](net::inbound_response resp) {
          caf::anon_send(handle, done_atom_v, id, std::move(resp));
        });
  }
  st.deps.client->send_all(std::move(sends));
}

/// Shows the in-flight limit and what is out (gauges, the API's board) when
/// they changed.
void show(endpoint_state& st) {
  auto& q = *st.queue;
  endpoint_live now{q.in_flight_limit(), static_cast<int>(q.in_flight()),
                    q.latency_floor()};
  if (now == st.shown)
    return;
  st.shown = now;
  st.measured.in_flight_limit->set(now.in_flight_limit);
  st.measured.in_flight->set(now.in_flight);
  if (st.deps.board)
    st.deps.board->set(q.config().id, now);
}

/// Starts what is due (its attempts logged first), sends it, and asks for a
/// tick when the next thing falls due.
void pump(self_ptr self) {
  auto& st = self->state;
  auto& q = *st.queue;
  auto now = st.deps.clock();
  page_in(self, now);
  storage::changes ws;
  auto starting = q.start_due(now, ws);
  if (!starting.empty()) {
    auto written = write(self, ws);
    launch(self, std::move(starting), written, now);
  }
  if (auto at = q.next_wake(now))
    wake_at(self, *at);
  show(st);
}

void report(const endpoint_state& st, const delivery::attempt_report& r,
            unix_ms now) {
  auto& q = *st.queue;
  auto& id = q.config().id;
  using change = delivery::circuit_breaker::change;
  if (r.circuit == change::opened)
    log::warn("circuit opened: the endpoint keeps failing; deliveries wait",
              {{"endpoint", id},
               {"failures", std::to_string(q.breaker().consecutive_failures())},
               {"probe_in_ms",
                std::to_string(q.breaker().reopens_at().value_or(now) - now)}});
  else if (r.circuit == change::closed)
    log::info("circuit closed: the endpoint answers again", {{"endpoint", id}});
  if (r.flagged)
    log::warn("the endpoint says it is gone; flagged for review",
              {{"endpoint", id}, {"reason", r.result.reason}});
}

} // namespace

endpoint_metrics endpoint_metrics::of(const delivery::endpoint_config& c) {
  namespace families = metrics::families;
  endpoint_metrics m;
  const char* classes[] = {"2xx", "3xx", "4xx", "5xx", "error"};
  for (std::size_t i = 0; i < m.attempts.size(); ++i)
    m.attempts[i] = &families::attempts().with({c.transport, classes[i]});
  m.delivered = &families::deliveries().with({c.transport, "delivered"});
  m.dead_lettered =
      &families::deliveries().with({c.transport, "dead_lettered"});
  m.latency = &families::attempt_duration().with();
  m.circuit_open = &families::circuit_open().with({c.id});
  m.in_flight_limit = &families::in_flight_limit().with({c.id});
  m.in_flight = &families::in_flight().with({c.id});
  return m;
}

void endpoint_metrics::attempt(const net::inbound_response& r) {
  auto cls = r.status >= 200 && r.status < 600 ? r.status / 100 - 2 : 4;
  attempts[static_cast<std::size_t>(cls)]->add();
  if (r.status != 0)
    latency->observe(r.latency_ms / 1000);
}

namespace {

/// Writes the outcomes recorded since the last flush, and with them (one
/// write, not two) the attempts that can start now that theirs have ended.
void flush(self_ptr self) {
  auto& st = self->state;
  st.flush_scheduled = false;
  auto now = st.deps.clock();
  // start_due() takes only deliveries waiting in memory, never one whose
  // outcome is in the set. Not on an ordered endpoint: there the next one
  // waits until the head's outcome has taken effect (a retry holds it back).
  std::vector<delivery::job> starting;
  if (!st.queue->config().ordered)
    starting = st.queue->start_due(now, st.outcomes);
  auto committed = write(self, st.outcomes);
  st.outcomes.clear();
  auto& id = st.queue->config().id;
  if (!committed && st.store_errors_log.admit())
    log::error("event log write failed; outcomes not recorded",
               {{"endpoint", id},
                {"error", committed.error().message},
                {"earlier_failures_not_logged",
                 std::to_string(st.store_errors_log.held_back())}});
  auto& plugin = st.queue->config().plugin;
  bool follows_state = plugin && plugin->follows_state();
  auto supervisor = caf::actor_cast<ingest_actor>(st.deps.supervisor);
  for (auto& s : st.queue->settle(committed.ok(), st.deps.clock())) {
    auto& d = s.state;
    // A trigger delivered (durably) to an endpoint that follows events'
    // state: the ingest actor sends the news of an answer given meanwhile.
    if (s.written && d.state == storage::delivery_state::delivered)
      st.measured.delivered->add();
    else if (s.written && d.state == storage::delivery_state::dead_lettered)
      st.measured.dead_lettered->add();
    if (s.written && follows_state && supervisor &&
        d.state == storage::delivery_state::delivered &&
        d.news.state == storage::event_state::open)
      self->send(supervisor, sent_atom_v, d.event_id, d.endpoint_id);
    if (s.written && d.state == storage::delivery_state::dead_lettered &&
        !(st.queue->removed() && d.reason == delivery::endpoint_deleted_reason))
      log::warn("delivery dead-lettered", {{"endpoint", id},
                                           {"delivery", d.id},
                                           {"event", d.event_id},
                                           {"reason", d.reason}});
  }
  launch(self, std::move(starting), committed, now);
}

} // namespace

endpoint_actor::behavior_type
endpoint_actor_fn(endpoint_actor::stateful_pointer<endpoint_state> self,
                  delivery::endpoint_config config, actor_deps deps) {
  auto& st = self->state;
  st.deps = std::move(deps);
  st.measured = endpoint_metrics::of(config);
  st.measured.circuit_open->set(0);
  st.queue.emplace(std::move(config), std::random_device{}(),
                   st.deps.queue_window);
  if (!st.deps.node.empty())
    st.queue->set_node(st.deps.node);
  // Whatever the store holds for the endpoint comes in a page at a time.
  self->send(self, tick_atom_v);
  return {
      [=](deliver_atom, std::vector<delivery::job>& jobs, std::uint64_t as_of) {
        self->state.queue->add(std::move(jobs), as_of);
        pump(self);
      },
      [=](fetch_atom, std::vector<pending_news>& news) {
        fetch(self, news);
        pump(self);
      },
      [=](done_atom, const std::string& id, net::inbound_response& resp) {
        auto& st = self->state;
        auto now = st.deps.clock();
        if (auto r = st.queue->finish(id, resp, now, st.outcomes)) {
          st.measured.attempt(resp);
          if (r->circuit != delivery::circuit_breaker::change::none)
            st.measured.circuit_open->set(
                r->circuit == delivery::circuit_breaker::change::opened);
          report(st, *r, now);
          if (r->health != delivery::health_change::none)
            if (auto to = caf::actor_cast<ingest_actor>(st.deps.supervisor))
              self->send(to, health_atom_v,
                         delivery::health_report{
                             st.queue->config().id,
                             r->health == delivery::health_change::recovered,
                             r->health_reason});
          schedule_flush(self);
        }
      },
      [=](update_atom, delivery::endpoint_config& cfg) {
        self->state.measured = endpoint_metrics::of(cfg);
        self->state.queue->reconfigure(std::move(cfg));
        pump(self);
      },
      [=](remove_atom) {
        auto& st = self->state;
        auto n = st.queue->remove(st.deps.clock(), st.outcomes);
        log::warn("endpoint deleted; its queued deliveries are dead-lettered",
                  {{"endpoint", st.queue->config().id},
                   {"dead_lettered", std::to_string(n)},
                   {"in_flight", std::to_string(st.queue->in_flight())}});
        schedule_flush(self);
        check_idle(self);
      },
      [=](tick_atom) {
        self->state.tick_at = 0; // pump() asks for the next one
        pump(self);
      },
      [=](flush_atom) {
        flush(self);
        pump(self);
        check_idle(self);
      },
      [=](drain_atom) -> caf::result<bool> {
        auto& st = self->state;
        st.queue->drain();
        if (st.queue->idle())
          return true;
        st.drained.push_back(self->make_response_promise<bool>());
        return st.drained.back();
      },
  };
}

} // namespace tocsin::actors
