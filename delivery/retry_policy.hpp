// What happens after an attempt: what its result means (classify), then
// whether the delivery is delivered, retried when, or dead-lettered why
// (decide). Pure functions of the delivery, the result and the clock.
#pragma once

#include "common/defaults.hpp"
#include "net/http_types.hpp"
#include "plugins/plugin_loader.hpp"
#include "storage/records.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace tocsin::delivery {

/// The one vocabulary for what an attempt came to, from the transport
/// plugin's answer to the verdict: success, retry, permanent (dead-letter),
/// disable_endpoint (dead-letter and flag the endpoint: 410 Gone).
using plugins::outcome;

struct retry_policy {
  /// Seconds between attempts; size() + 1 attempts in all.
  std::vector<double> schedule = defaults::retry_schedule();
  /// Relative jitter on each delay (0.1 = ±10 %), never past the window.
  double jitter = defaults::jitter;

  /// The whole window, first attempt to last, in milliseconds.
  std::int64_t window_ms() const;
  int max_attempts() const { return static_cast<int>(schedule.size()) + 1; }
};

/// The error recorded for an attempt that a crash or restart cut short. Such
/// attempts do not count against the attempt budget.
inline constexpr std::string_view interrupted_error =
    "interrupted: the daemon stopped during the attempt";

/// Why a delivery whose endpoint was deleted is dead-lettered.
inline constexpr std::string_view endpoint_deleted_reason = "endpoint_deleted";

/// What an attempt's result means.
struct classification {
  outcome what = outcome::retry;
  /// The dead-letter reason code if it is one ("forbidden_address",
  /// "rejected_http_400: <the transport's words>", ...), or the transport's
  /// words for a retry.
  std::string reason;
  /// Where the result came from; only an endpoint's answers and silences
  /// move its circuit breaker.
  enum class source {
    answer,    ///< the endpoint answered (a status line arrived)
    no_answer, ///< network error, TLS error, timeout
    local,     ///< refused before sending: SSRF guard, unbuildable request
  } from = source::no_answer;
  /// For a success: what the receiver made of it, as the transport says
  /// (plugins::classification::receipt); kept with the delivery.
  std::string receipt = {};
};

/// The endpoint's transport's reading of an answer (status, body prefix,
/// Retry-After): plugins::transport_plugin::classify.
using answer_classifier = std::function<plugins::classification(
    int status, std::string_view body_prefix, std::string_view retry_after)>;

/// Decided here, once: no answer (an error, no status) is a retry whatever
/// the transport would say; the SSRF guard's refusal ("forbidden_address")
/// and a request the transport could not build ("transport_error") are
/// permanent; an answer means what `transport` says.
classification classify(const net::inbound_response& r,
                        const answer_classifier& transport);

/// The decision after an attempt.
struct verdict {
  outcome what = outcome::retry;
  unix_ms next_attempt_at = 0; ///< for retry
  std::string reason;          ///< for a dead letter: stable code

  bool delivered() const { return what == outcome::success; }
  bool dead_lettered() const {
    return what == outcome::permanent || what == outcome::disable_endpoint;
  }
  /// 410 Gone: the endpoint asked to be removed; flag it.
  bool flags_endpoint() const { return what == outcome::disable_endpoint; }
};

/// Retry-After in milliseconds from `now`: delta-seconds or an HTTP date.
std::optional<std::int64_t> parse_retry_after(std::string_view value,
                                              unix_ms now);

/// Attempts of the current window that count against the budget (not
/// interrupted ones, not those before a replay).
int counted_attempts(const storage::delivery& d);

/// Decides after an attempt of `d` finished as `c` says, at `now`;
/// `retry_after` is the answer's header, if any. `d.attempts` already holds
/// that attempt.
verdict decide(const retry_policy& p, const storage::delivery& d,
               const classification& c, std::string_view retry_after,
               unix_ms now, std::mt19937_64& rng);

} // namespace tocsin::delivery
