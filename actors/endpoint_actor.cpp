#include "actors/endpoint_actor.hpp"

#include "common/log.hpp"
#include "delivery/retry_policy.hpp"
#include "delivery/signature_headers.hpp"

#include "common/json_writer.hpp"

#include <algorithm>

namespace tocsin::actors {

using namespace tocsin::delivery;

namespace {

using self_ptr = caf::stateful_actor<endpoint_state>*;

// How long to wait before trying again when the store refuses a write.
constexpr auto store_retry_delay = std::chrono::seconds{1};

/// Makes sure pump runs again at `at` (a token, a probe or a head is due).
void tick_at(self_ptr self, unix_ms at) {
  auto& st = self->state;
  if (st.tick_at != 0 && st.tick_at <= at)
    return; // an earlier tick is pending; that pump schedules the next
  st.tick_at = at;
  self->delayed_send(
      self, std::chrono::milliseconds{std::max<unix_ms>(0, at - now_ms())},
      tick_atom_v);
}

/// Puts a job where it belongs: ready now, or waiting for its timer. On an
/// ordered endpoint every job joins the queue in order; `again` (a retry of
/// one that was already at the head) puts it back at the front.
void schedule(self_ptr self, delivery_job job, bool again = false) {
  auto& st = self->state;
  if (st.config.ordered) {
    if (again)
      st.ready.push_front(std::move(job));
    else
      st.ready.push_back(std::move(job));
    return;
  }
  auto delay = job.state.next_attempt_at - now_ms();
  if (delay <= 0) {
    st.ready.push_back(std::move(job));
    return;
  }
  auto id = job.state.id;
  st.waiting.insert_or_assign(id, std::move(job));
  self->delayed_send(self, std::chrono::milliseconds{delay}, retry_atom_v,
                     std::move(id));
}

/// The request the endpoint's transport builds for `job`, signed when the
/// transport asks for it; an error when it cannot be built.
result<net::outbound_request>
make_request(const endpoint_config& cfg, const delivery_job& job, unix_ms now) {
  auto& ev = *job.event;
  plugins::event_view view;
  view.id = ev.id;
  view.type = ev.type;
  view.severity = ev.severity;
  view.agent_id = ev.agent_id;
  view.summary = ev.summary;
  view.timestamp = ev.timestamp;
  view.payload_json = ev.payload;
  view.audit_url = ev.audit_url;
  auto built = cfg.plugin->build_request(
      view, plugins::endpoint_view{cfg.id, cfg.url, cfg.options_json});
  if (!built)
    return built.error();
  net::outbound_request req;
  req.target = cfg.target;
  if (built->url) {
    auto u = parse_url(*built->url);
    if (!u)
      return error{"transport_error",
                   "the transport's URL: " + u.error().message};
    if (u->scheme != "https")
      return error{"insecure_url", "the transport's URL is not https://"};
    req.target = std::move(*u);
  }
  req.method = std::move(built->method);
  req.headers = std::move(built->headers);
  req.body = std::move(built->body);
  req.timeout = cfg.timeout;
  if (cfg.plugin->signs_requests()) {
    // Rotated-out keys sign until their grace period ends.
    std::vector<delivery::signing_key> keys;
    for (auto& k : cfg.signing_keys)
      if (k.expires_at == 0 || k.expires_at > now)
        keys.push_back(k.key);
    auto sig = delivery::signature_headers(
        {job.state.event_id, now / 1000, req.body}, keys);
    req.headers.insert(req.headers.end(), sig.begin(), sig.end());
  }
  return req;
}

void send_attempt(self_ptr self, delivery_job job, unix_ms now) {
  auto& st = self->state;
  auto req = make_request(st.config, job, now);
  auto id = job.state.id;
  st.in_flight.emplace(id, std::move(job));
  auto handle = caf::actor_cast<caf::actor>(self);
  if (!req) {
    net::inbound_response failed;
    failed.unsendable = true;
    failed.error = req.error().code + ": " + req.error().message;
    self->send(self, done_atom_v, std::move(id), std::move(failed));
    return;
  }
  st.client->send(std::move(*req), [handle, id](net::inbound_response resp) {
    caf::anon_send(handle, done_atom_v, id, std::move(resp));
  });
}

/// What the endpoint's transport makes of a response that arrived.
classified classify_response(const endpoint_config& cfg,
                             const net::inbound_response& r) {
  if (!r.error.empty() || r.status == 0)
    return {response_class::retryable, {}};
  auto c = cfg.plugin->classify(r.status, r.body_prefix, r.retry_after);
  switch (c.what) {
  case plugins::outcome::success:
    return {response_class::success, std::move(c.reason)};
  case plugins::outcome::retry:
    return {response_class::retryable, std::move(c.reason)};
  case plugins::outcome::disable_endpoint:
    return {response_class::gone, std::move(c.reason)};
  case plugins::outcome::permanent:
    break;
  }
  return {response_class::permanent, std::move(c.reason)};
}

/// Starts as many due deliveries as the in-flight bound allows. Their
/// "attempt.started" records go to the log in one write before any is sent.
void pump(self_ptr self) {
  auto& st = self->state;
  if (st.draining || st.removed)
    return;
  auto max_in_flight = st.config.ordered ? 1 : st.config.max_in_flight;
  if (static_cast<int>(st.in_flight.size()) >= max_in_flight ||
      st.ready.empty())
    return;
  auto now = now_ms();
  std::vector<delivery_job> starting;
  storage::write_set ws;
  for (;;) {
    auto busy = static_cast<int>(st.in_flight.size() + starting.size());
    if (busy >= max_in_flight || st.ready.empty())
      break;
    if (!st.breaker.allows(now, busy)) {
      if (auto at = st.breaker.reopens_at())
        tick_at(self, *at);
      break; // half-open: wait for the probe's answer
    }
    if (auto due = st.ready.front().state.next_attempt_at; due > now) {
      tick_at(self, due); // ordered: the head holds back the rest
      break;
    }
    if (!st.bucket.try_take(now)) {
      tick_at(self, st.bucket.next_token_at(now));
      break;
    }
    auto job = std::move(st.ready.front());
    st.ready.pop_front();
    auto& d = job.state;
    if (counted_attempts(d) == 0)
      d.window_start = now;
    storage::attempt a;
    a.number = static_cast<int>(d.attempts.size()) + 1;
    a.started_at = now;
    d.attempts.push_back(a);
    ws.put_delivery(d, storage::record_kind::attempt_started,
                    storage::delivery_state::pending);
    starting.push_back(std::move(job));
  }
  if (auto s = st.log->commit(ws, storage::durability::buffered); !s) {
    // Nothing may be sent that the log does not know of: back off and retry.
    log::error("event log write failed; attempts postponed",
               {{"endpoint", st.config.id}, {"error", s.error().message}});
    for (auto& job : starting) {
      job.state.attempts.pop_back();
      job.state.next_attempt_at =
          now + std::chrono::milliseconds{store_retry_delay}.count();
      schedule(self, std::move(job), true);
    }
    return;
  }
  for (auto& job : starting)
    send_attempt(self, std::move(job), now);
}

/// Feeds an attempt's result to the circuit breaker; logs when it opens or
/// closes.
void note_answer(self_ptr self, const net::inbound_response& r,
                 const classified& c, unix_ms now) {
  auto& st = self->state;
  if (r.forbidden || r.unsendable)
    return; // not the endpoint's doing
  auto change = circuit_breaker::change::none;
  if (!r.error.empty() || r.status == 0 || c.what == response_class::retryable)
    change = st.breaker.on_failure(now);
  else if (c.what == response_class::success)
    change = st.breaker.on_success();
  else
    change = st.breaker.on_answer();
  if (change == circuit_breaker::change::none)
    return;
  bool opened = change == circuit_breaker::change::opened;
  json_writer fields;
  fields.begin_object().field("endpoint_id", st.config.id);
  if (opened)
    fields.field("failures", st.breaker.consecutive_failures())
        .field("probe_at", *st.breaker.reopens_at());
  st.outcomes.add_record(opened ? storage::record_kind::endpoint_circuit_opened
                                : storage::record_kind::endpoint_circuit_closed,
                         fields.end_object().take());
  if (opened)
    log::warn(
        "circuit opened: the endpoint keeps failing; deliveries wait",
        {{"endpoint", st.config.id},
         {"failures", std::to_string(st.breaker.consecutive_failures())},
         {"probe_in_ms", std::to_string(*st.breaker.reopens_at() - now)}});
  else
    log::info("circuit closed: the endpoint answers again",
              {{"endpoint", st.config.id}});
}

/// Records the outcome of an attempt; it takes effect at the next flush.
void finish_attempt(self_ptr self, const std::string& id,
                    net::inbound_response resp) {
  auto& st = self->state;
  auto it = st.in_flight.find(id);
  if (it == st.in_flight.end())
    return;
  auto job = std::move(it->second);
  st.in_flight.erase(it);
  auto& d = job.state;
  auto now = now_ms();
  auto& a = d.attempts.back();
  a.finished_at = now;
  a.status = resp.status;
  a.latency_ms = resp.latency_ms;
  a.response = resp.body_prefix;
  a.error = resp.error;
  auto c = classify_response(st.config, resp);
  auto v = decide(st.config.retry, d, resp, c, now, st.rng);
  note_answer(self, resp, c, now);
  if (st.removed && v.what == outcome::retry)
    v = verdict{outcome::dead_letter, 0, std::string{endpoint_deleted_reason},
                false};
  auto outcome_kind = storage::record_kind::delivery_retry_scheduled;
  switch (v.what) {
  case outcome::delivered:
    d.state = storage::delivery_state::delivered;
    d.finished_at = now;
    outcome_kind = storage::record_kind::delivery_delivered;
    break;
  case outcome::retry:
    d.next_attempt_at = v.next_attempt_at;
    break;
  case outcome::dead_letter:
    d.state = storage::delivery_state::dead_lettered;
    d.finished_at = now;
    d.reason = v.reason;
    outcome_kind = storage::record_kind::delivery_dead_lettered;
    break;
  }
  // The new state once, then the outcome as its own record.
  st.outcomes.put_delivery(d, storage::record_kind::attempt_finished,
                           storage::delivery_state::pending);
  json_writer fields;
  fields.begin_object()
      .field("delivery_id", d.id)
      .field("event_id", d.event_id)
      .field("endpoint_id", d.endpoint_id);
  if (!d.reason.empty())
    fields.field("reason", d.reason);
  st.outcomes.add_record(outcome_kind, fields.end_object().take());
  if (v.flag_endpoint && !st.flagged) {
    st.flagged = true;
    st.outcomes.add_record(storage::record_kind::endpoint_flagged,
                           json_writer{}
                               .begin_object()
                               .field("endpoint_id", st.config.id)
                               .field("reason", d.reason)
                               .end_object()
                               .take());
    log::warn("the endpoint says it is gone; flagged for review",
              {{"endpoint", st.config.id}, {"reason", d.reason}});
  }
  st.settled.push_back(std::move(job));
  if (!st.flush_scheduled) {
    // Behind every message already queued: one write covers all of them.
    st.flush_scheduled = true;
    self->send(self, flush_atom_v);
  }
}

void flush(self_ptr self) {
  auto& st = self->state;
  st.flush_scheduled = false;
  auto committed = st.log->commit(st.outcomes, storage::durability::buffered);
  st.outcomes.clear();
  auto settled = std::move(st.settled);
  st.settled.clear();
  auto now = now_ms();
  for (auto& job : settled) {
    auto& d = job.state;
    if (!committed) {
      // The attempt stays "started" in the log (a restart retries it); here,
      // try again after a pause without the unrecorded outcome.
      log::error("event log write failed; outcome not recorded",
                 {{"endpoint", st.config.id},
                  {"delivery", d.id},
                  {"error", committed.error().message}});
      d.state = storage::delivery_state::pending;
      d.reason.clear();
      d.next_attempt_at =
          now + std::chrono::milliseconds{store_retry_delay}.count();
      schedule(self, std::move(job), true);
      continue;
    }
    switch (d.state) {
    case storage::delivery_state::pending:
      schedule(self, std::move(job), true);
      break;
    case storage::delivery_state::dead_lettered:
      if (st.removed && d.reason == endpoint_deleted_reason)
        break; // summed up by remove()
      log::warn("delivery dead-lettered", {{"endpoint", st.config.id},
                                           {"delivery", d.id},
                                           {"event", d.event_id},
                                           {"reason", d.reason}});
      break;
    case storage::delivery_state::delivered:
      break;
    }
  }
}

/// Records a dead letter for `job` (taking effect at the next flush).
void dead_letter(self_ptr self, delivery_job job, std::string reason,
                 unix_ms now) {
  auto& st = self->state;
  auto& d = job.state;
  d.state = storage::delivery_state::dead_lettered;
  d.finished_at = now;
  d.reason = std::move(reason);
  st.outcomes.put_delivery(d, storage::record_kind::delivery_dead_lettered,
                           storage::delivery_state::pending);
  st.settled.push_back(std::move(job));
}

void schedule_flush(self_ptr self) {
  auto& st = self->state;
  if (!st.flush_scheduled) {
    st.flush_scheduled = true;
    self->send(self, flush_atom_v);
  }
}

/// The endpoint is gone: nothing queued will be attempted.
void remove(self_ptr self) {
  auto& st = self->state;
  st.removed = true;
  auto now = now_ms();
  std::string reason{endpoint_deleted_reason};
  auto queued = st.ready.size() + st.waiting.size();
  for (auto& job : st.ready)
    dead_letter(self, std::move(job), reason, now);
  st.ready.clear();
  for (auto& [id, job] : st.waiting)
    dead_letter(self, std::move(job), reason, now);
  st.waiting.clear();
  log::warn("endpoint deleted; its queued deliveries are dead-lettered",
            {{"endpoint", st.config.id},
             {"dead_lettered", std::to_string(queued)},
             {"in_flight", std::to_string(st.in_flight.size())}});
  schedule_flush(self);
}

} // namespace

caf::behavior endpoint_actor(caf::stateful_actor<endpoint_state>* self,
                             endpoint_config config, storage::event_log* log,
                             net::https_client* client) {
  self->state.config = std::move(config);
  self->state.log = log;
  self->state.client = client;
  self->state.bucket.reset(self->state.config.rate);
  self->state.breaker.configure(self->state.config.breaker);
  return {
      [=](deliver_atom, std::vector<delivery_job>& jobs) {
        for (auto& job : jobs)
          schedule(self, std::move(job));
        pump(self);
      },
      [=](retry_atom, const std::string& id) {
        auto& st = self->state;
        // A timer of an earlier schedule of this delivery may still fire.
        if (auto it = st.waiting.find(id);
            it != st.waiting.end() &&
            it->second.state.next_attempt_at <= now_ms()) {
          st.ready.push_back(std::move(it->second));
          st.waiting.erase(it);
        }
        pump(self);
      },
      [=](done_atom, const std::string& id, net::inbound_response& resp) {
        finish_attempt(self, id, std::move(resp));
      },
      [=](flush_atom) {
        flush(self);
        pump(self);
        auto& st = self->state;
        if (st.removed && st.in_flight.empty() && st.settled.empty())
          self->quit();
      },
      [=](update_atom, endpoint_config& cfg) {
        // Attempts in flight finish with the settings they started with.
        auto& st = self->state;
        auto& old = st.config;
        if (cfg.rate.per_second != old.rate.per_second ||
            cfg.rate.burst != old.rate.burst)
          st.bucket.reset(cfg.rate);
        st.breaker.configure(cfg.breaker);
        if (cfg.ordered != old.ordered) {
          // Ordered endpoints keep every job in `ready`; others keep only
          // the due ones there.
          std::vector<delivery_job> all;
          for (auto& job : st.ready)
            all.push_back(std::move(job));
          for (auto& [id, job] : st.waiting)
            all.push_back(std::move(job));
          st.ready.clear();
          st.waiting.clear();
          std::sort(all.begin(), all.end(), [](auto& a, auto& b) {
            return a.state.id < b.state.id; // ids are time-ordered
          });
          st.config = std::move(cfg);
          for (auto& job : all)
            schedule(self, std::move(job));
        } else {
          st.config = std::move(cfg);
        }
        pump(self);
      },
      [=](tick_atom) {
        // pump() asks for the next tick if it still has to wait.
        self->state.tick_at = 0;
        pump(self);
      },
      [=](remove_atom) { remove(self); },
      [=](drain_atom) {
        self->state.draining = true;
        return static_cast<int>(self->state.in_flight.size() +
                                self->state.settled.size());
      },
  };
}

} // namespace tocsin::actors
