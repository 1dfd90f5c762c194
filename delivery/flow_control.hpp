// Per-endpoint flow control, as plain state machines of explicit time (no
// clocks, no actors) so that they are tested deterministically: a token
// bucket for the rate limit and a circuit breaker that stops hammering an
// endpoint that keeps failing. Deliveries held back by either wait in the
// endpoint's queue; nothing is dropped.
#pragma once

#include "common/defaults.hpp"
#include "common/time.hpp"

#include <cstdint>
#include <optional>

namespace tocsin::delivery {

struct rate_limit {
  double per_second = 0; ///< 0: unlimited
  int burst = 1;         ///< requests that may go at once after a quiet spell
};

class token_bucket {
public:
  explicit token_bucket(rate_limit limit = {}) { reset(limit); }

  /// New settings; the bucket starts full.
  void reset(rate_limit limit);

  bool limited() const { return limit_.per_second > 0; }

  /// Takes a token if one is available at `now`.
  bool try_take(unix_ms now);

  /// When the next token will be available (>= now).
  unix_ms next_token_at(unix_ms now);

private:
  void refill(unix_ms now);

  rate_limit limit_;
  double tokens_ = 0;
  unix_ms last_ = 0;
};

struct breaker_settings {
  /// Consecutive failures that open it; 0: never.
  int failures = defaults::breaker_failures;
  /// Open this long before a probe.
  unix_ms cooldown = static_cast<unix_ms>(defaults::breaker_cooldown * 1000);
};

/// closed: attempts flow. open: none start until the cooldown ends. half_open:
/// one probe; its success closes the breaker, its failure opens it again.
/// A failure is an attempt without a usable answer (network error, timeout,
/// 429, 5xx): a 4xx means the endpoint is up and resets the count.
class circuit_breaker {
public:
  enum class state { closed, open, half_open };

  explicit circuit_breaker(breaker_settings s = {}) : settings_(s) {}
  void configure(breaker_settings s) { settings_ = s; }

  /// Whether an attempt may start at `now` with `in_flight` running;
  /// moves open -> half_open when the cooldown is over.
  bool allows(unix_ms now, int in_flight);

  /// When to look again if allows() said no (the end of the cooldown), or
  /// nullopt when waiting for an attempt in flight.
  std::optional<unix_ms> reopens_at() const;

  /// What changed, for the log.
  enum class change { none, opened, closed };
  change on_success();
  change on_failure(unix_ms now);
  change on_answer(); ///< a permanent answer: the endpoint is up

  state current() const { return state_; }
  int consecutive_failures() const { return failures_; }

private:
  breaker_settings settings_;
  state state_ = state::closed;
  int failures_ = 0;
  unix_ms open_until_ = 0;
};

} // namespace tocsin::delivery
