#include "delivery/retry_policy.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <numeric>

namespace tocsin::delivery {

std::int64_t retry_policy::window_ms() const {
  auto secs = std::accumulate(schedule.begin(), schedule.end(), 0.0);
  return static_cast<std::int64_t>(std::llround(secs * 1000));
}

std::optional<std::int64_t> parse_retry_after(std::string_view value,
                                              unix_ms now) {
  while (!value.empty() && value.front() == ' ')
    value.remove_prefix(1);
  while (!value.empty() && value.back() == ' ')
    value.remove_suffix(1);
  if (value.empty())
    return std::nullopt;
  std::int64_t secs = 0;
  auto [ptr, ec] =
      std::from_chars(value.data(), value.data() + value.size(), secs);
  if (ec == std::errc{} && ptr == value.data() + value.size())
    return secs < 0 ? std::nullopt : std::optional{secs * 1000};
  if (auto t = parse_http_date(value))
    return std::max<std::int64_t>(0, *t - now);
  return std::nullopt;
}

int counted_attempts(const storage::delivery& d) {
  auto base = std::min<std::size_t>(static_cast<std::size_t>(d.attempt_base),
                                    d.attempts.size());
  return static_cast<int>(std::count_if(
      d.attempts.begin() + static_cast<std::ptrdiff_t>(base), d.attempts.end(),
      [](auto& a) { return a.error != interrupted_error; }));
}

verdict decide(const retry_policy& p, const storage::delivery& d,
               const net::inbound_response& r, const classified& c, unix_ms now,
               std::mt19937_64& rng) {
  if (r.forbidden) // the SSRF guard refused every address: permanent
    return verdict{outcome::dead_letter, 0, "forbidden_address", false};
  if (r.unsendable) // the transport cannot build it: it never will
    return verdict{outcome::dead_letter, 0, "transport_error", false};
  auto with_reason = [&](std::string code) {
    return c.reason.empty() ? code : code + ": " + c.reason;
  };
  // No response at all is always retried, whatever the transport.
  auto what =
      !r.error.empty() || r.status == 0 ? response_class::retryable : c.what;
  switch (what) {
  case response_class::success:
    return verdict{outcome::delivered, 0, {}, false};
  case response_class::gone:
    return verdict{outcome::dead_letter, 0, with_reason("endpoint_gone"), true};
  case response_class::permanent:
    return verdict{outcome::dead_letter, 0,
                   with_reason("rejected_http_" + std::to_string(r.status)),
                   false};
  case response_class::retryable:
    break;
  }
  auto n = counted_attempts(d);
  if (n >= p.max_attempts())
    return verdict{outcome::dead_letter, 0, "attempts_exhausted", false};
  auto idx = static_cast<std::size_t>(std::max(n, 1) - 1);
  double delay_ms = p.schedule[idx] * 1000.0;
  if (p.jitter > 0) {
    std::uniform_real_distribution<double> dist{-p.jitter, p.jitter};
    delay_ms *= 1.0 + dist(rng);
  }
  auto window_end = d.window_start + p.window_ms();
  auto next = std::min<unix_ms>(now + std::llround(delay_ms), window_end);
  if (!r.retry_after.empty())
    if (auto ra = parse_retry_after(r.retry_after, now);
        ra && now + *ra <= window_end)
      next = std::max<unix_ms>(next, now + *ra);
  return verdict{outcome::retry, std::max(next, now), {}, false};
}

} // namespace tocsin::delivery
