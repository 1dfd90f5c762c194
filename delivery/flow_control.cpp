#include "delivery/flow_control.hpp"

#include <algorithm>
#include <cmath>

namespace tocsin::delivery {

void token_bucket::reset(rate_limit limit) {
  limit_ = limit;
  limit_.burst = std::max(1, limit_.burst);
  tokens_ = limit_.burst;
  last_ = 0;
}

void token_bucket::refill(unix_ms now) {
  if (last_ == 0 || now < last_) {
    last_ = now;
    return;
  }
  tokens_ = std::min<double>(limit_.burst, tokens_ + (now - last_) / 1000.0 *
                                                         limit_.per_second);
  last_ = now;
}

bool token_bucket::try_take(unix_ms now) {
  if (!limited())
    return true;
  refill(now);
  if (tokens_ < 1)
    return false;
  tokens_ -= 1;
  return true;
}

unix_ms token_bucket::next_token_at(unix_ms now) {
  if (!limited())
    return now;
  refill(now);
  if (tokens_ >= 1)
    return now;
  auto wait_ms = std::ceil((1 - tokens_) / limit_.per_second * 1000.0);
  return now + static_cast<unix_ms>(wait_ms);
}

bool circuit_breaker::allows(unix_ms now, int in_flight) {
  switch (state_) {
  case state::closed:
    return true;
  case state::open:
    if (now < open_until_)
      return false;
    state_ = state::half_open;
    [[fallthrough]];
  case state::half_open:
    return in_flight == 0; // one probe at a time
  }
  return true;
}

std::optional<unix_ms> circuit_breaker::reopens_at() const {
  if (state_ == state::open)
    return open_until_;
  return std::nullopt;
}

circuit_breaker::change circuit_breaker::on_success() {
  failures_ = 0;
  if (state_ == state::closed)
    return change::none;
  state_ = state::closed;
  return change::closed;
}

circuit_breaker::change circuit_breaker::on_answer() {
  // The endpoint answered: it is up, even if it refused this delivery.
  return on_success();
}

circuit_breaker::change circuit_breaker::on_failure(unix_ms now) {
  ++failures_;
  if (settings_.failures <= 0)
    return change::none;
  if (state_ == state::half_open ||
      (state_ == state::closed && failures_ >= settings_.failures)) {
    bool was_open = state_ != state::closed;
    state_ = state::open;
    open_until_ = now + settings_.cooldown;
    return was_open ? change::none : change::opened;
  }
  return change::none;
}

} // namespace tocsin::delivery
