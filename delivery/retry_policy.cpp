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

classification classify(const net::inbound_response& r,
                        const answer_classifier& transport) {
  using source = classification::source;
  if (r.forbidden) // the SSRF guard refused every address: it always will
    return {outcome::permanent, "forbidden_address", source::local};
  if (r.unsendable) // the transport cannot build it: it never will
    return {outcome::permanent, "transport_error", source::local};
  if (!r.error.empty() || r.status == 0)
    return {outcome::retry, {}, source::no_answer};
  auto said = transport ? transport(r.status, r.body_prefix, r.retry_after)
                        : plugins::classification{outcome::permanent, {}};
  auto with_reason = [&](std::string code) {
    return said.reason.empty() ? code : code + ": " + said.reason;
  };
  switch (said.what) {
  case outcome::success:
    return {said.what, std::move(said.reason), source::answer,
            std::move(said.receipt)};
  case outcome::retry:
    return {said.what, std::move(said.reason), source::answer};
  case outcome::disable_endpoint:
    return {said.what, with_reason("endpoint_gone"), source::answer};
  case outcome::permanent:
    break;
  }
  return {outcome::permanent,
          with_reason("rejected_http_" + std::to_string(r.status)),
          source::answer};
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
               const classification& c, std::string_view retry_after,
               unix_ms now, std::mt19937_64& rng) {
  if (c.what != outcome::retry)
    return verdict{c.what, 0,
                   c.what == outcome::success ? std::string{} : c.reason};
  auto n = counted_attempts(d);
  if (n >= p.max_attempts())
    return verdict{outcome::permanent, 0, "attempts_exhausted"};
  auto idx = static_cast<std::size_t>(std::max(n, 1) - 1);
  double delay_ms = p.schedule[idx] * 1000.0;
  if (p.jitter > 0) {
    std::uniform_real_distribution<double> dist{-p.jitter, p.jitter};
    delay_ms *= 1.0 + dist(rng);
  }
  auto window_end = d.window_start + p.window_ms();
  auto next = std::min<unix_ms>(now + std::llround(delay_ms), window_end);
  if (!retry_after.empty())
    if (auto ra = parse_retry_after(retry_after, now);
        ra && now + *ra <= window_end)
      next = std::max<unix_ms>(next, now + *ra);
  return verdict{outcome::retry, std::max(next, now), {}};
}

} // namespace tocsin::delivery
