// One endpoint's deliveries and what to do with them next, as a plain state
// machine of explicit time (no actors, no I/O, no clock): which attempts may
// start now (in-flight bound, rate limit, circuit breaker, FIFO order), what
// an attempt's result means and what it records, when to look again. Every
// call that changes a delivery adds its log records to a changes the
// caller commits; changes take effect only once the caller says they were
// written (log before effect). The endpoint actor is a thin shell around it.
//
// Memory is bounded by the window, not by the backlog: the queue holds at
// most `window` deliveries that wait (plus those in flight), always the
// next ones due, and everything else stays in the store. The frontier is
// the place in the endpoint's line in the store (a due time, or on a FIFO
// endpoint where a delivery joined the line) from which on nothing is held:
// every pending delivery of the endpoint that is not in memory sits at or after
// it. New deliveries before the frontier come in (the latest ones due go out
// to make room, pushing the frontier back); those after it stay in the store
// until a page reads them, when the queue runs low. A hand-off names the log
// position of its commit, and a page the position it reflects, so a hand-off
// a page has already seen is never taken twice.
#pragma once

#include "delivery/concurrency_limit.hpp"
#include "delivery/endpoint_config.hpp"
#include "delivery/flow_control.hpp"
#include "delivery/job.hpp"
#include "delivery/retry_policy.hpp"
#include "net/http_types.hpp"
#include "storage/store.hpp"

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace tocsin::delivery {

/// How long to wait before trying again when the store refuses a write.
inline constexpr unix_ms store_retry_delay_ms = 1000;

/// The endpoint's health as system.health events tell it: it turns
/// unhealthy when its circuit opens, it is flagged gone, or it dead-letters
/// a delivery (of anything but a system.health event: a health event's own
/// delivery never raises another); healthy again when a delivery succeeds.
/// One change per transition.
enum class health_change { none, unhealthy, recovered };

/// What an attempt's end changed, for the log of the process.
struct attempt_report {
  std::string delivery_id;
  verdict result;
  circuit_breaker::change circuit = circuit_breaker::change::none;
  bool flagged = false; ///< the endpoint was flagged gone just now
  health_change health = health_change::none;
  std::string health_reason = {}; ///< why it turned unhealthy
};

/// A delivery whose outcome was written and has taken effect.
struct settled {
  storage::delivery state;
  bool written = true; ///< false: the write failed, it will be tried again
};

/// What the queue wants read from the store next.
struct page_request {
  storage::line_position from;
  std::size_t limit = 0;
};

/// What a page brought in.
struct page_report {
  std::size_t loaded = 0;        ///< deliveries now held
  std::size_t interrupted = 0;   ///< attempts a crash cut short (retried now)
  std::size_t dead_lettered = 0; ///< the endpoint was deleted
};

class endpoint_queue {
public:
  /// A queue that starts with nothing in memory: whatever the store holds
  /// for the endpoint is paged in (page_wanted()). At most `window`
  /// deliveries wait in memory (at least 1).
  endpoint_queue(endpoint_config config, std::uint64_t seed,
                 std::size_t window);

  const endpoint_config& config() const { return config_; }

  /// New settings for the next attempts (those in flight finish with the
  /// settings they started with). Switching to or from FIFO re-sorts the
  /// queue in acceptance order.
  void reconfigure(endpoint_config config);

  /// Lets go of the deliveries waiting in memory (not those in flight or
  /// settling) and pages the endpoint's line in again from the start: for
  /// when the store may hold pending deliveries that memory should and
  /// does not (reading them failed), or a new order.
  void reread();

  /// Takes deliveries handed over by the commit at log position `as_of`
  /// (new or replayed), each due at its next_attempt_at. Those a page has
  /// seen already, and those past the frontier, are left to the store.
  void add(std::vector<job> jobs, std::uint64_t as_of);

  /// What to read from the store next, when the queue wants a page: it runs
  /// low and the store holds more, or the endpoint was deleted and the store
  /// holds deliveries to dead-letter.
  std::optional<page_request> page_wanted() const;

  /// Whether the delivery with this id is in memory (pages leave it out).
  bool holds(std::string_view delivery_id) const;

  /// A page read for page_wanted() (the jobs, the page's next position and
  /// its log position). Attempts a crash cut short are recorded as
  /// interrupted in `ws`, and deliveries of a deleted endpoint as dead
  /// letters; those wait in "settling" until settle().
  page_report paged(std::vector<job> jobs,
                    std::optional<storage::line_position> next,
                    std::uint64_t as_of, unix_ms now, storage::changes& ws);

  /// The attempts that may start at `now`, each with its "attempt.started"
  /// record added to `ws`. Commit `ws`, then hand them to launched() (and
  /// send them), or to unlaunched() if the write failed: nothing is sent
  /// that the log does not know of.
  std::vector<job> start_due(unix_ms now, storage::changes& ws);
  void launched(std::vector<job> jobs);
  void unlaunched(std::vector<job> jobs, unix_ms now);

  /// An attempt of `delivery_id` ended with `r`. Records its outcome in
  /// `ws` (and a circuit change or a flag, if any); the delivery waits in
  /// "settling" until settle(). Nothing for an unknown id.
  std::optional<attempt_report> finish(const std::string& delivery_id,
                                       const net::inbound_response& r,
                                       unix_ms now, storage::changes& ws);

  /// The outcomes recorded since the last settle() were written (or not):
  /// retries are scheduled, finished deliveries leave; after a failed write
  /// they are retried after store_retry_delay_ms.
  std::vector<settled> settle(bool written, unix_ms now);

  /// The endpoint was deleted: everything queued is dead-lettered
  /// ("endpoint_deleted") in `ws`; attempts in flight finish (a success
  /// counts). Returns how many were dead-lettered.
  std::size_t remove(unix_ms now, storage::changes& ws);

  /// The cluster node whose attempts these are (recorded in each attempt
  /// it starts); empty on a node that is not in a cluster.
  void set_node(std::string node) { node_ = std::move(node); }

  /// No new attempts start (shutting down).
  void drain() { draining_ = true; }

  /// When start_due() may have something to start again (a retry falls due,
  /// a token, a probe, an ordered head), if anything waits for time.
  std::optional<unix_ms> next_wake(unix_ms now);

  /// Nothing in flight, nothing waiting for its outcome to be written, and
  /// (for a deleted endpoint) nothing left in the store to dead-letter.
  bool idle() const {
    return in_flight_.empty() && settling_.empty() && !(removed_ && frontier_);
  }
  bool removed() const { return removed_; }
  /// Deliveries waiting in memory (not those in flight).
  std::size_t queued() const {
    return ready_.size() + due_.size() + waiting_.size();
  }
  /// Whether the store may hold pending deliveries that memory does not.
  bool spilled() const { return frontier_.has_value(); }
  std::size_t in_flight() const { return in_flight_.size(); }
  /// How many attempts may be in flight now (1 on a FIFO endpoint; the
  /// adaptive limit, or max_in_flight when fixed).
  int in_flight_limit() const { return max_in_flight(); }
  /// The lowest latency of the endpoint's recent answers (ms), or -1.
  double latency_floor() const { return limit_.floor(); }
  const circuit_breaker& breaker() const { return breaker_; }

private:
  /// Puts a job where it belongs: ready now, or waiting for its time. On a
  /// FIFO endpoint every job joins the line in order; `again` (a retry of
  /// the head) puts it back in front. A job past the frontier is left to
  /// the store; past the window, the latest one due goes back to it.
  void schedule(job j, bool again = false);
  /// Drops the latest job due from memory (it is in the store).
  void evict_one();
  /// A pending job of a deleted endpoint that is not held: left in the
  /// store, where the removal's pages dead-letter it.
  void leave_to_removal(const job& j);
  /// The job's position in the store's order for this endpoint.
  storage::line_position store_key(const job& j) const;
  /// Where a pending job's next write puts it in the store's order: when
  /// it is due, or, on a FIFO endpoint, where it is (a retry of the head
  /// keeps its place in the line).
  unix_ms place_of(const job& j) const;
  void forget(const std::string& id) { known_.erase(id); }
  void promote_due(unix_ms now);
  /// The job that goes next when it may (the FIFO head, or the first due
  /// in the store's order), or null; and taking it.
  job* next_up();
  job take_next_up();
  int max_in_flight() const;
  void dead_letter(job j, std::string reason, unix_ms now,
                   storage::changes& ws);
  /// Tells the adaptive limit how an attempt that started at `started_at`
  /// ended (`in_flight`: attempts out when it started, itself included).
  void learn(const net::inbound_response& r, int in_flight, unix_ms started_at,
             unix_ms now);

  endpoint_config config_;
  std::size_t window_;
  /// Nothing: memory holds every pending delivery of the endpoint. Else the
  /// store position from which on nothing is held.
  std::optional<storage::line_position> frontier_ = storage::line_position{};
  /// The log position the last page reflected.
  std::uint64_t paged_as_of_ = 0;
  /// Ids of the jobs held: ready, waiting, in flight, settling.
  std::unordered_set<std::string> known_;
  std::deque<job> ready_; ///< FIFO: every job, in order
  /// Not FIFO: due, in the store's order (place: the most severe first).
  std::map<std::pair<unix_ms, std::string>, job> due_;
  /// Not yet due, by (due time, delivery id).
  std::map<std::pair<unix_ms, std::string>, job> waiting_;
  std::unordered_map<std::string, job> in_flight_;
  std::vector<job> settling_; ///< outcome recorded, not yet written
  token_bucket bucket_;
  circuit_breaker breaker_;
  concurrency_limit limit_;
  std::mt19937_64 rng_;
  bool flagged_ = false;
  bool unhealthy_ = false; ///< see health_change
  bool draining_ = false;
  bool removed_ = false;
  std::string node_;
};

} // namespace tocsin::delivery
