#include "delivery/endpoint_queue.hpp"

#include "common/json_writer.hpp"

#include <algorithm>
#include <tuple>

namespace tocsin::delivery {

using storage::delivery_state;
using storage::record_kind;

namespace {

concurrency_options limit_options(const endpoint_config& c) {
  concurrency_options o;
  o.max = std::max(1, c.max_in_flight);
  o.min = std::clamp(c.min_in_flight, 1, o.max);
  o.initial = defaults::initial_in_flight;
  return o;
}

} // namespace

endpoint_queue::endpoint_queue(endpoint_config config, std::uint64_t seed,
                               std::size_t window)
    : config_(std::move(config)), window_(std::max<std::size_t>(1, window)),
      limit_(limit_options(config_)), rng_(seed) {
  bucket_.reset(config_.rate);
  breaker_.configure(config_.breaker);
}

storage::line_position endpoint_queue::store_key(const job& j) const {
  return storage::line_position{j.place, j.state.id};
}

unix_ms endpoint_queue::place_of(const job& j) const {
  return config_.ordered ? j.place
                         : place_in_line(false, severity_rank_of(j.event.get()),
                                         j.state.next_attempt_at);
}

bool endpoint_queue::holds(std::string_view delivery_id) const {
  return known_.count(std::string{delivery_id}) > 0;
}

int endpoint_queue::max_in_flight() const {
  if (config_.ordered)
    return 1;
  if (config_.concurrency == concurrency_mode::fixed)
    return std::max(1, config_.max_in_flight);
  return limit_.limit();
}

void endpoint_queue::learn(const net::inbound_response& r, int in_flight,
                           unix_ms started_at, unix_ms now) {
  if (config_.ordered || config_.concurrency == concurrency_mode::fixed)
    return;
  if (r.forbidden || r.unsendable)
    return; // never reached the receiver
  auto kind = answer_kind::ok;
  if (r.status == 0)
    kind = answer_kind::failure;
  else if (r.status == 429 || r.status == 503)
    kind = answer_kind::overload;
  limit_.record(kind, r.latency_ms, in_flight, started_at, now);
  // While the circuit is open the receiver is gone: it is met again from
  // the floor of the limit, not with what it took before.
  if (breaker_.current() != circuit_breaker::state::closed)
    limit_.restart();
}

void endpoint_queue::reconfigure(endpoint_config cfg) {
  if (cfg.rate.per_second != config_.rate.per_second ||
      cfg.rate.burst != config_.rate.burst)
    bucket_.reset(cfg.rate);
  breaker_.configure(cfg.breaker);
  if (cfg.min_in_flight != config_.min_in_flight ||
      cfg.max_in_flight != config_.max_in_flight) {
    auto bounds = limit_options(cfg);
    limit_.bound(bounds.min, bounds.max);
  }
  bool reorder = cfg.ordered != config_.ordered;
  config_ = std::move(cfg);
  if (!reorder)
    return;
  // The store's order for this endpoint changed (due time <-> acceptance):
  // page it in again from the start, in the new order.
  reread();
}

void endpoint_queue::reread() {
  // Let go of what waits; what is in flight or settling stays.
  for (auto& j : ready_)
    forget(j.state.id);
  for (auto& [key, j] : due_)
    forget(j.state.id);
  for (auto& [key, j] : waiting_)
    forget(j.state.id);
  ready_.clear();
  due_.clear();
  waiting_.clear();
  frontier_ = storage::line_position{};
}

void endpoint_queue::evict_one() {
  // The job that comes last in the store's order goes: the least severe,
  // latest one. Scanned, not indexed: it happens only when a job comes in
  // ahead of a full window (a more severe event, a retry).
  auto before = [](const job& a, const job& b) {
    return std::tie(a.place, a.state.id) < std::tie(b.place, b.state.id);
  };
  job j;
  auto last_waiting = waiting_.end();
  for (auto it = waiting_.begin(); it != waiting_.end(); ++it)
    if (last_waiting == waiting_.end() ||
        before(last_waiting->second, it->second))
      last_waiting = it;
  bool from_waiting = last_waiting != waiting_.end();
  if (from_waiting && !due_.empty() &&
      before(last_waiting->second, std::prev(due_.end())->second))
    from_waiting = false;
  if (from_waiting) {
    j = std::move(last_waiting->second);
    waiting_.erase(last_waiting);
  } else if (!due_.empty()) {
    auto last = std::prev(due_.end());
    j = std::move(last->second);
    due_.erase(last);
  } else {
    j = std::move(ready_.back());
    ready_.pop_back();
  }
  forget(j.state.id);
  auto key = store_key(j);
  if (!frontier_ || key < *frontier_)
    frontier_ = std::move(key);
}

void endpoint_queue::schedule(job j, bool again) {
  if (frontier_ && !(store_key(j) < *frontier_)) {
    forget(j.state.id); // the store has it; a page brings it back in turn
    return;
  }
  known_.insert(j.state.id);
  if (config_.ordered) {
    if (again)
      ready_.push_front(std::move(j));
    else
      ready_.push_back(std::move(j));
  } else {
    auto key = std::make_pair(j.state.next_attempt_at, j.state.id);
    waiting_.insert_or_assign(std::move(key), std::move(j));
  }
  while (queued() > window_)
    evict_one();
}

void endpoint_queue::add(std::vector<job> jobs, std::uint64_t as_of) {
  // A page at or after this commit saw these deliveries: it brought them in,
  // or left them in the store, or they were finished since. Either way they
  // are not new.
  if (as_of <= paged_as_of_)
    return;
  for (auto& j : jobs) {
    if (holds(j.state.id))
      continue;
    if (removed_) {
      // Dead-lettered with the rest: make sure the removal pages reach it.
      auto key = store_key(j);
      if (!frontier_ || key < *frontier_)
        frontier_ = std::move(key);
      continue;
    }
    schedule(std::move(j));
  }
}

std::optional<page_request> endpoint_queue::page_wanted() const {
  if (!frontier_ || draining_)
    return std::nullopt;
  if (removed_) {
    // One page at a time, each dead-lettered and written before the next.
    if (!settling_.empty())
      return std::nullopt;
    return page_request{*frontier_, window_};
  }
  if (queued() > window_ / 2)
    return std::nullopt;
  return page_request{*frontier_, window_ - queued()};
}

page_report endpoint_queue::paged(std::vector<job> jobs,
                                  std::optional<storage::line_position> next,
                                  std::uint64_t as_of, unix_ms now,
                                  storage::changes& ws) {
  page_report report;
  paged_as_of_ = std::max(paged_as_of_, as_of);
  frontier_ = std::move(next);
  std::string reason{endpoint_deleted_reason};
  for (auto& j : jobs) {
    if (holds(j.state.id))
      continue;
    auto& d = j.state;
    if (!d.attempts.empty() && !d.attempts.back().finished()) {
      // Started and never finished: the process that sent it is gone. It
      // does not count against the budget, and goes again now.
      auto& a = d.attempts.back();
      a.finished_at = now;
      a.error = interrupted_error;
      ++report.interrupted;
      if (!removed_) {
        d.next_attempt_at = now;
        j.next_place = place_of(j);
        ws.delivery_changed(d, record_kind::attempt_interrupted,
                            storage::standing{delivery_state::pending, j.place},
                            j.next_place);
        known_.insert(d.id);
        settling_.push_back(std::move(j));
        continue;
      }
    }
    if (removed_) {
      known_.insert(d.id);
      dead_letter(std::move(j), reason, now, ws);
      ++report.dead_lettered;
      continue;
    }
    ++report.loaded;
    schedule(std::move(j));
  }
  return report;
}

void endpoint_queue::promote_due(unix_ms now) {
  while (!waiting_.empty() && waiting_.begin()->first.first <= now) {
    auto& j = waiting_.begin()->second;
    // In the store's order: the most severe first, then the earliest due.
    auto key = std::make_pair(j.place, j.state.id);
    due_.emplace(std::move(key), std::move(j));
    waiting_.erase(waiting_.begin());
  }
}

job* endpoint_queue::next_up() {
  if (config_.ordered)
    return ready_.empty() ? nullptr : &ready_.front();
  return due_.empty() ? nullptr : &due_.begin()->second;
}

job endpoint_queue::take_next_up() {
  if (config_.ordered) {
    auto j = std::move(ready_.front());
    ready_.pop_front();
    return j;
  }
  auto j = std::move(due_.begin()->second);
  due_.erase(due_.begin());
  return j;
}

std::vector<job> endpoint_queue::start_due(unix_ms now, storage::changes& ws) {
  std::vector<job> starting;
  if (draining_ || removed_)
    return starting;
  promote_due(now);
  for (;;) {
    auto busy = static_cast<int>(in_flight_.size() + starting.size());
    auto* next = next_up();
    if (busy >= max_in_flight() || !next)
      break;
    if (!breaker_.allows(now, busy))
      break; // open, or half-open with its probe out
    if (next->state.next_attempt_at > now)
      break; // FIFO: the head holds back the rest
    if (!bucket_.try_take(now))
      break;
    auto j = take_next_up();
    auto& d = j.state;
    if (counted_attempts(d) == 0)
      d.window_start = now;
    storage::attempt a;
    a.number = static_cast<int>(d.attempts.size()) + 1;
    a.started_at = now;
    a.node = node_;
    d.attempts.push_back(a);
    j.next_place = place_of(j);
    ws.delivery_changed(d, record_kind::attempt_started,
                        storage::standing{delivery_state::pending, j.place},
                        j.next_place);
    starting.push_back(std::move(j));
  }
  return starting;
}

void endpoint_queue::launched(std::vector<job> jobs) {
  auto out = static_cast<int>(in_flight_.size() + jobs.size());
  for (auto& j : jobs) {
    j.place = j.next_place; // as the attempt was written
    j.in_flight_at_start = out;
    auto id = j.state.id;
    in_flight_.emplace(std::move(id), std::move(j));
  }
}

void endpoint_queue::unlaunched(std::vector<job> jobs, unix_ms now) {
  // Back in front, in their order, without the unrecorded attempt.
  for (auto it = jobs.rbegin(); it != jobs.rend(); ++it) {
    it->state.attempts.pop_back();
    it->state.next_attempt_at = now + store_retry_delay_ms;
    schedule(std::move(*it), true);
  }
}

std::optional<attempt_report>
endpoint_queue::finish(const std::string& delivery_id,
                       const net::inbound_response& r, unix_ms now,
                       storage::changes& ws) {
  auto it = in_flight_.find(delivery_id);
  if (it == in_flight_.end())
    return std::nullopt;
  auto j = std::move(it->second);
  in_flight_.erase(it);
  auto& d = j.state;
  auto& a = d.attempts.back();
  a.finished_at = now;
  a.status = r.status;
  a.latency_ms = r.latency_ms;
  a.response = r.body_prefix;
  a.error = r.error;

  attempt_report report;
  report.delivery_id = d.id;
  auto* plugin = config_.plugin.get();
  auto c = classify(r, [plugin](int status, std::string_view body,
                                std::string_view retry_after) {
    return plugin ? plugin->classify(status, body, retry_after)
                  : plugins::classification{outcome::permanent, {}};
  });
  // The breaker hears what the endpoint said or did not say; a refusal
  // before sending is not the endpoint's doing.
  using source = classification::source;
  if (c.from == source::no_answer || c.what == outcome::retry)
    report.circuit = breaker_.on_failure(now);
  else if (c.from == source::answer)
    report.circuit = c.what == outcome::success ? breaker_.on_success()
                                                : breaker_.on_answer();
  learn(r, j.in_flight_at_start, a.started_at, now);
  auto v = decide(config_.retry, d, c, r.retry_after, now, rng_);
  if (removed_ && v.what == outcome::retry)
    v = verdict{outcome::permanent, 0, std::string{endpoint_deleted_reason}};

  auto kind = record_kind::delivery_retry_scheduled;
  if (v.delivered()) {
    d.state = delivery_state::delivered;
    d.finished_at = now;
    if (!c.receipt.empty())
      d.receipt = std::move(c.receipt);
    kind = record_kind::delivery_delivered;
  } else if (v.dead_lettered()) {
    d.state = delivery_state::dead_lettered;
    d.finished_at = now;
    d.reason = v.reason;
    kind = record_kind::delivery_dead_lettered;
  } else {
    d.next_attempt_at = v.next_attempt_at;
  }
  // The new state once, then the outcome as its own record.
  j.next_place = place_of(j);
  ws.delivery_changed(d, record_kind::attempt_finished,
                      storage::standing{delivery_state::pending, j.place},
                      j.next_place);
  ws.delivery_outcome(kind, d);
  if (report.circuit != circuit_breaker::change::none) {
    bool opened = report.circuit == circuit_breaker::change::opened;
    json_writer f;
    f.begin_object().field("endpoint_id", config_.id);
    if (opened)
      f.field("failures", breaker_.consecutive_failures())
          .field("probe_at", *breaker_.reopens_at());
    ws.noted(opened ? record_kind::endpoint_circuit_opened
                    : record_kind::endpoint_circuit_closed,
             f.end_object().take());
  }
  if (v.flags_endpoint() && !flagged_) {
    flagged_ = report.flagged = true;
    ws.noted(record_kind::endpoint_flagged,
             json_writer{}
                 .begin_object()
                 .field("endpoint_id", config_.id)
                 .field("reason", d.reason)
                 .end_object()
                 .take());
  }
  // Health: one change per transition, never caused by a health event's
  // own delivery (no loops between endpoints that fail together) nor by
  // the endpoint's deletion.
  bool about_health = j.event && j.event->type == "system.health";
  if (!unhealthy_) {
    if (report.circuit == circuit_breaker::change::opened)
      report.health_reason = "circuit opened after " +
                             std::to_string(breaker_.consecutive_failures()) +
                             " consecutive failures";
    else if (report.flagged)
      report.health_reason = "the endpoint says it is gone: " + d.reason;
    else if (v.dead_lettered() && !about_health && !removed_)
      report.health_reason = "dead-lettering deliveries: " + d.reason;
    if (!report.health_reason.empty()) {
      unhealthy_ = true;
      report.health = health_change::unhealthy;
    }
  } else if (v.delivered()) {
    unhealthy_ = false;
    report.health = health_change::recovered;
  }
  report.result = std::move(v);
  settling_.push_back(std::move(j));
  return report;
}

std::vector<settled> endpoint_queue::settle(bool written, unix_ms now) {
  std::vector<settled> out;
  auto jobs = std::move(settling_);
  settling_.clear();
  for (auto& j : jobs) {
    auto& d = j.state;
    if (!written) {
      // The attempt stays "started" in the log (a restart retries it);
      // here, try again after a pause without the unrecorded outcome.
      d.state = delivery_state::pending;
      d.reason.clear();
      d.finished_at = 0;
      d.next_attempt_at = now + store_retry_delay_ms;
      out.push_back({d, false});
      if (removed_)
        leave_to_removal(j);
      else
        schedule(std::move(j), true);
      continue;
    }
    if (d.state != delivery_state::pending) {
      forget(d.id);
      out.push_back({std::move(d), true}); // the queue is done with it
      continue;
    }
    out.push_back({d, true});
    j.place = j.next_place;
    // A retry decided before the endpoint was deleted, written after.
    if (removed_)
      leave_to_removal(j);
    else
      schedule(std::move(j), true);
  }
  return out;
}

void endpoint_queue::dead_letter(job j, std::string reason, unix_ms now,
                                 storage::changes& ws) {
  auto& d = j.state;
  d.state = delivery_state::dead_lettered;
  d.finished_at = now;
  d.reason = std::move(reason);
  ws.delivery_changed(d, record_kind::delivery_dead_lettered,
                      storage::standing{delivery_state::pending, j.place});
  settling_.push_back(std::move(j));
}

void endpoint_queue::leave_to_removal(const job& j) {
  // Pending in the store: the removal's pages come back for it.
  forget(j.state.id);
  auto key = store_key(j);
  if (!frontier_ || key < *frontier_)
    frontier_ = std::move(key);
}

std::size_t endpoint_queue::remove(unix_ms now, storage::changes& ws) {
  removed_ = true;
  std::string reason{endpoint_deleted_reason};
  auto queued = this->queued();
  for (auto& j : ready_)
    dead_letter(std::move(j), reason, now, ws);
  ready_.clear();
  for (auto& [key, j] : due_)
    dead_letter(std::move(j), reason, now, ws);
  due_.clear();
  for (auto& [key, j] : waiting_)
    dead_letter(std::move(j), reason, now, ws);
  waiting_.clear();
  return queued;
}

std::optional<unix_ms> endpoint_queue::next_wake(unix_ms now) {
  if (draining_ || removed_)
    return std::nullopt;
  std::optional<unix_ms> wake;
  auto consider = [&](unix_ms t) {
    if (!wake || t < *wake)
      wake = t;
  };
  if (!waiting_.empty())
    consider(waiting_.begin()->first.first);
  auto* next = next_up();
  if (next && static_cast<int>(in_flight_.size()) < max_in_flight()) {
    // Something is due and there is room: what holds it back?
    if (auto reopen = breaker_.reopens_at())
      consider(*reopen);
    else if (breaker_.current() == circuit_breaker::state::half_open)
      ; // waiting for the probe's answer, not for time
    else if (auto due = next->state.next_attempt_at; due > now)
      consider(due);
    else
      consider(bucket_.next_token_at(now));
  }
  return wake;
}

} // namespace tocsin::delivery
