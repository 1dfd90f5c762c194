// How many attempts an endpoint may have in flight, learned from its answers:
// a plain controller of explicit time, in the spirit of TCP's congestion
// window and of latency-gradient limits (Netflix's concurrency-limits,
// Envoy's adaptive concurrency), written for webhook receivers.
//
//  - The floor: the lowest latency seen over the last `floor_window` — what
//    the receiver takes when nothing waits in it.
//  - Near the floor: within `tolerance` times it, or `slack_ms` above it,
//    whichever is more. The slack is for fast receivers: on a
//    sub-millisecond floor a millisecond more is the sender's own
//    scheduling, not the receiver queueing. It is small on purpose: past
//    the point where more in flight buys no more answers per second, the
//    latency grows by the same factor as the limit (Little's law), and a
//    limit that grows on nonetheless only costs CPU and connections.
//  - Rise: while answers come back near the floor and the limit was used
//    (at least half of it in flight), the limit grows by one per limit's
//    worth of such answers (additive: one step per round trip of the whole
//    window). After an outage (restart()) it starts again from `min` and
//    grows by one per answer (doubling per round trip) up to half of what
//    it was, then additively: a receiver that comes back is not met with
//    the whole backlog at once.
//  - Fall: an answer slower than that, a 429/503, a timeout or a connection
//    error cuts the limit by `backoff` (multiplicative) — once per round
//    trip, as TCP does once per window: answers to attempts that started
//    before the last cut were sent under the old limit and cut nothing more.
//  - Always between `min` and `max`.
#pragma once

#include "common/time.hpp"

#include <algorithm>
#include <cstddef>
#include <deque>
#include <optional>
#include <utility>

namespace tocsin::delivery {

struct concurrency_options {
  int min = 1;
  int max = 256;
  int initial = 16;
  /// Latency within this many times the floor, or within `slack_ms` above
  /// it, counts as "near the floor".
  double tolerance = 1.4;
  double slack_ms = 2;
  /// What a cut keeps of the limit.
  double backoff = 0.8;
  /// How far back the floor looks.
  unix_ms floor_window = 30'000;
};

/// How an attempt ended, as the controller sees it.
enum class answer_kind {
  ok,       ///< an answer that is not an overload (any 2xx-5xx but 429/503)
  overload, ///< 429 or 503: the receiver says it has too much
  failure,  ///< a timeout or a connection error
};

class concurrency_limit {
public:
  explicit concurrency_limit(concurrency_options o = {})
      : o_(o), limit_(std::clamp(o.initial, o.min, o.max)) {}

  int limit() const { return limit_; }
  /// The floor (ms), or -1 before the first answer.
  double floor() const { return samples_.empty() ? -1 : floor_; }

  /// New bounds (the endpoint was reconfigured); the limit is kept within.
  void bound(int min, int max) {
    o_.min = min;
    o_.max = max;
    limit_ = std::clamp(limit_, min, max);
  }

  /// The receiver is unreachable (its circuit is open): start again from
  /// `min` once it answers, growing quickly up to half of the limit it had
  /// before the outage (repeated calls during one outage keep that).
  void restart() {
    slow_start_until_ = std::max({slow_start_until_, o_.min, limit_ / 2});
    limit_ = o_.min;
    good_ = 0;
  }

  /// An attempt that started at `started_at` ended at `now` after
  /// `latency_ms`; `in_flight` attempts (itself included) were out when it
  /// started.
  void record(answer_kind kind, double latency_ms, int in_flight,
              unix_ms started_at, unix_ms now) {
    started_ = started_at;
    if (kind != answer_kind::ok) {
      // An overload says how much the receiver takes: no quick growth past
      // it. No answer at all says nothing about that.
      if (kind == answer_kind::overload)
        slow_start_until_ = 0;
      cut(now);
      return;
    }
    remember(latency_ms, now);
    if (latency_ms > std::max(floor_ * o_.tolerance, floor_ + o_.slack_ms)) {
      slow_start_until_ = 0;
      cut(now);
      return;
    }
    // Growth only when the limit was what held attempts back.
    if (in_flight * 2 < limit_)
      return;
    if (limit_ < slow_start_until_) {
      ++limit_;
      return;
    }
    if (++good_ >= limit_) {
      good_ = 0;
      limit_ = std::min(o_.max, limit_ + 1);
    }
  }

  /// The same, for an attempt that started `latency_ms` before `now`.
  void record(answer_kind kind, double latency_ms, int in_flight, unix_ms now) {
    record(kind, latency_ms, in_flight, now - static_cast<unix_ms>(latency_ms),
           now);
  }

private:
  void cut(unix_ms now) {
    good_ = 0;
    if (cut_at_ && started_ <= *cut_at_)
      return; // sent under the limit before the last cut
    cut_at_ = now;
    limit_ = std::max(o_.min, static_cast<int>(limit_ * o_.backoff));
  }

  /// Keeps the minimum over the window with a monotonic deque.
  void remember(double latency_ms, unix_ms now) {
    while (!samples_.empty() && samples_.back().second >= latency_ms)
      samples_.pop_back();
    samples_.emplace_back(now, latency_ms);
    while (samples_.front().first < now - o_.floor_window)
      samples_.pop_front();
    floor_ = samples_.front().second;
  }

  concurrency_options o_;
  int limit_;
  int good_ = 0;
  /// After restart(): grows by one per answer up to this.
  int slow_start_until_ = 0;
  /// When the limit was last cut; the attempt being recorded started at
  /// started_.
  std::optional<unix_ms> cut_at_;
  unix_ms started_ = 0;
  double floor_ = 0;
  std::deque<std::pair<unix_ms, double>> samples_;
};

} // namespace tocsin::delivery
