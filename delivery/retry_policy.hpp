// What happens after an attempt: delivered, retried when, or dead-lettered
// why. Pure functions of the delivery, the response and the clock.
#pragma once

#include "delivery/endpoint_config.hpp"
#include "net/http_types.hpp"
#include "storage/records.hpp"

#include <optional>
#include <random>
#include <string>
#include <string_view>

namespace tocsin::delivery {

/// The error recorded for an attempt that a crash or restart cut short. Such
/// attempts do not count against the attempt budget.
inline constexpr std::string_view interrupted_error =
    "interrupted: the daemon stopped during the attempt";

/// Why a delivery whose endpoint was deleted is dead-lettered.
inline constexpr std::string_view endpoint_deleted_reason = "endpoint_deleted";

enum class outcome { delivered, retry, dead_letter };

struct verdict {
  outcome what = outcome::retry;
  unix_ms next_attempt_at = 0; ///< for retry
  std::string reason;          ///< for dead_letter: stable code
  bool flag_endpoint = false;  ///< 410 Gone: the endpoint asked to be removed
};

/// What a response means, as the endpoint's transport plugin says.
enum class response_class { success, retryable, gone, permanent };

/// Retry-After in milliseconds from `now`: delta-seconds or an HTTP date.
std::optional<std::int64_t> parse_retry_after(std::string_view value,
                                              unix_ms now);

/// Attempts of the current window that count against the budget (not
/// interrupted ones, not those before a replay).
int counted_attempts(const storage::delivery& d);

/// What the endpoint's transport made of a response.
struct classified {
  response_class what = response_class::permanent;
  std::string reason; ///< the transport's words, if any
};

/// Decides after an attempt of `d` finished with `r` at `now`, as the
/// transport classified it (`c`; only consulted when a response arrived).
/// `d.attempts` already holds that attempt.
verdict decide(const retry_policy& p, const storage::delivery& d,
               const net::inbound_response& r, const classified& c, unix_ms now,
               std::mt19937_64& rng);

} // namespace tocsin::delivery
