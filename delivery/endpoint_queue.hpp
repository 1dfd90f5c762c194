// One endpoint's deliveries and what to do with them next, as a plain state
// machine of explicit time (no actors, no I/O, no clock): which attempts may
// start now (in-flight bound, rate limit, circuit breaker, FIFO order), what
// an attempt's result means and what it records, when to look again. Every
// call that changes a delivery adds its log records to a write_set the
// caller commits; changes take effect only once the caller says they were
// written (log before effect). The endpoint actor is a thin shell around it.
#pragma once

#include "delivery/endpoint_config.hpp"
#include "delivery/flow_control.hpp"
#include "delivery/job.hpp"
#include "delivery/retry_policy.hpp"
#include "net/http_types.hpp"
#include "storage/event_log.hpp"

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace tocsin::delivery {

/// How long to wait before trying again when the store refuses a write.
inline constexpr unix_ms store_retry_delay_ms = 1000;

/// What an attempt's end changed, for the log of the process.
struct attempt_report {
  std::string delivery_id;
  verdict result;
  circuit_breaker::change circuit = circuit_breaker::change::none;
  bool flagged = false; ///< the endpoint was flagged gone just now
};

/// A delivery whose outcome was written and has taken effect.
struct settled {
  storage::delivery state;
  bool written = true; ///< false: the write failed, it will be tried again
};

class endpoint_queue {
public:
  endpoint_queue(endpoint_config config, std::uint64_t seed);

  const endpoint_config& config() const { return config_; }

  /// New settings for the next attempts (those in flight finish with the
  /// settings they started with). Switching to or from FIFO re-sorts the
  /// queue in acceptance order.
  void reconfigure(endpoint_config config);

  /// Takes deliveries to attempt (new, recovered or replayed), each at its
  /// next_attempt_at.
  void add(std::vector<job> jobs);

  /// The attempts that may start at `now`, each with its "attempt.started"
  /// record added to `ws`. Commit `ws`, then hand them to launched() (and
  /// send them), or to unlaunched() if the write failed: nothing is sent
  /// that the log does not know of.
  std::vector<job> start_due(unix_ms now, storage::write_set& ws);
  void launched(std::vector<job> jobs);
  void unlaunched(std::vector<job> jobs, unix_ms now);

  /// An attempt of `delivery_id` ended with `r`. Records its outcome in
  /// `ws` (and a circuit change or a flag, if any); the delivery waits in
  /// "settling" until settle(). Nothing for an unknown id.
  std::optional<attempt_report> finish(const std::string& delivery_id,
                                       const net::inbound_response& r,
                                       unix_ms now, storage::write_set& ws);

  /// The outcomes recorded since the last settle() were written (or not):
  /// retries are scheduled, finished deliveries leave; after a failed write
  /// they are retried after store_retry_delay_ms.
  std::vector<settled> settle(bool written, unix_ms now);

  /// The endpoint was deleted: everything queued is dead-lettered
  /// ("endpoint_deleted") in `ws`; attempts in flight finish (a success
  /// counts). Returns how many were dead-lettered.
  std::size_t remove(unix_ms now, storage::write_set& ws);

  /// No new attempts start (shutting down).
  void drain() { draining_ = true; }

  /// When start_due() may have something to start again (a retry falls due,
  /// a token, a probe, an ordered head), if anything waits for time.
  std::optional<unix_ms> next_wake(unix_ms now);

  /// Nothing in flight and nothing waiting for its outcome to be written.
  bool idle() const { return in_flight_.empty() && settling_.empty(); }
  bool removed() const { return removed_; }
  std::size_t queued() const { return ready_.size() + waiting_.size(); }
  std::size_t in_flight() const { return in_flight_.size(); }
  const circuit_breaker& breaker() const { return breaker_; }

private:
  /// Puts a job where it belongs: ready now, or waiting for its time. On a
  /// FIFO endpoint every job joins the line in order; `again` (a retry of
  /// the head) puts it back in front.
  void schedule(job j, bool again = false);
  void promote_due(unix_ms now);
  int max_in_flight() const;
  void dead_letter(job j, std::string reason, unix_ms now,
                   storage::write_set& ws);

  endpoint_config config_;
  std::deque<job> ready_; ///< due (FIFO: every job, in order)
  /// Not yet due, by (due time, delivery id).
  std::map<std::pair<unix_ms, std::string>, job> waiting_;
  std::unordered_map<std::string, job> in_flight_;
  std::vector<job> settling_; ///< outcome recorded, not yet written
  token_bucket bucket_;
  circuit_breaker breaker_;
  std::mt19937_64 rng_;
  bool flagged_ = false;
  bool draining_ = false;
  bool removed_ = false;
};

} // namespace tocsin::delivery
