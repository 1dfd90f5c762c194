#include "actors/endpoint_actor.hpp"

#include "actors/retry_policy.hpp"
#include "common/log.hpp"
#include "transports/webhook.hpp"

#include <nlohmann/json.hpp>

namespace tocsin::actors {

namespace {

using self_ptr = caf::stateful_actor<endpoint_state>*;

// How long to wait before trying again when the store refuses a write.
constexpr auto store_retry_delay = std::chrono::seconds{1};

void pump(self_ptr self);

/// Puts a job where it belongs: ready now, or waiting for its timer.
void schedule(self_ptr self, delivery_job job) {
  auto& st = self->state;
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

void start_attempt(self_ptr self, delivery_job job) {
  auto& st = self->state;
  auto& d = job.state;
  auto now = now_ms();
  if (d.window_start == 0 || counted_attempts(d) == 0)
    d.window_start = now;
  storage::attempt a;
  a.number = static_cast<int>(d.attempts.size()) + 1;
  a.started_at = now;
  d.attempts.push_back(a);
  storage::write_set ws;
  ws.put_delivery(d, "attempt.started");
  if (auto s = st.log->commit(ws, storage::durability::buffered); !s) {
    // Nothing may be sent that the log does not know of: back off and retry.
    log::error("event log write failed; attempt postponed",
               {{"endpoint", st.config.id},
                {"delivery", d.id},
                {"error", s.error().message}});
    d.attempts.pop_back();
    d.next_attempt_at = now + std::chrono::milliseconds{store_retry_delay}.count();
    schedule(self, std::move(job));
    return;
  }
  auto req = transports::make_webhook_request(
    st.config.target, {d.event_id, now / 1000, *job.payload},
    st.config.signing_keys);
  req.timeout = st.config.timeout;
  auto id = d.id;
  st.in_flight.emplace(id, std::move(job));
  auto handle = caf::actor_cast<caf::actor>(self);
  st.client->send(std::move(req),
                  [handle, id](transports::inbound_response resp) {
                    caf::anon_send(handle, done_atom_v, id, std::move(resp));
                  });
}

void finish_attempt(self_ptr self, const std::string& id,
                    transports::inbound_response resp) {
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
  auto v = decide(st.config.retry, d, resp, now, st.rng);
  storage::write_set ws;
  ws.put_delivery(d, "attempt.finished");
  switch (v.what) {
    case outcome::delivered:
      d.state = storage::delivery_state::delivered;
      d.finished_at = now;
      ws.put_delivery(d, "delivery.delivered");
      break;
    case outcome::retry:
      d.next_attempt_at = v.next_attempt_at;
      ws.put_delivery(d, "delivery.retry_scheduled");
      break;
    case outcome::dead_letter:
      d.state = storage::delivery_state::dead_lettered;
      d.finished_at = now;
      d.reason = v.reason;
      ws.put_delivery(d, "delivery.dead_lettered");
      break;
  }
  if (v.flag_endpoint && !st.flagged) {
    st.flagged = true;
    ws.add_record("endpoint.flagged",
                  nlohmann::json{{"endpoint_id", st.config.id},
                                 {"reason", "endpoint answered 410 Gone"}}
                    .dump());
    log::warn("endpoint answered 410 Gone; flagged for review",
              {{"endpoint", st.config.id}});
  }
  if (auto s = st.log->commit(ws, storage::durability::buffered); !s) {
    // The attempt stays "started" in the log; after a restart it is
    // retried. Here, retry after a pause without recording the outcome.
    log::error("event log write failed; outcome not recorded",
               {{"endpoint", st.config.id},
                {"delivery", d.id},
                {"error", s.error().message}});
    d.state = storage::delivery_state::pending;
    d.next_attempt_at = now + std::chrono::milliseconds{store_retry_delay}.count();
    schedule(self, std::move(job));
    return;
  }
  if (v.what == outcome::dead_letter)
    log::warn("delivery dead-lettered", {{"endpoint", st.config.id},
                                         {"delivery", d.id},
                                         {"event", d.event_id},
                                         {"reason", d.reason}});
  if (v.what == outcome::retry)
    schedule(self, std::move(job));
}

void pump(self_ptr self) {
  auto& st = self->state;
  while (!st.draining && !st.ready.empty() &&
         static_cast<int>(st.in_flight.size()) < st.config.max_in_flight) {
    auto job = std::move(st.ready.front());
    st.ready.pop_front();
    start_attempt(self, std::move(job));
  }
}

} // namespace

caf::behavior endpoint_actor(caf::stateful_actor<endpoint_state>* self,
                             endpoint_config config, storage::event_log* log,
                             transports::https_client* client) {
  self->state.config = std::move(config);
  self->state.log = log;
  self->state.client = client;
  return {
    [=](deliver_atom, delivery_job& job) {
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
    [=](done_atom, const std::string& id, transports::inbound_response& resp) {
      finish_attempt(self, id, std::move(resp));
      pump(self);
    },
    [=](drain_atom) {
      self->state.draining = true;
      return static_cast<int>(self->state.in_flight.size());
    },
  };
}

} // namespace tocsin::actors
