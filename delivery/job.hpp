// A delivery as an endpoint works on it: its state (the fold of its log
// records) and the event it carries, shared by all of the event's
// deliveries that are in memory at once.
#pragma once

#include "common/event_types.hpp"
#include "delivery/event_content.hpp"
#include "storage/records.hpp"

#include <algorithm>
#include <memory>
#include <optional>

namespace tocsin::delivery {

/// The store keeps an endpoint's pending deliveries in the order of their
/// places, and an endpoint's queue takes them in that order. On an endpoint
/// that delivers in order (FIFO) a delivery's place is where it joined the
/// line (when it was accepted). On any other it is its event's severity
/// band, the most severe first, and then when it is due: when deliveries
/// wait (a rate limit, a slow receiver, an open circuit), a critical event
/// accepted behind 10,000 low ones goes next, and a page of the backlog
/// brings the most severe first. A band is wider than any Unix time in ms.
inline constexpr unix_ms severity_band_width = unix_ms{1} << 50;

inline unix_ms place_in_line(bool ordered, int severity_rank, unix_ms due) {
  if (ordered)
    return due;
  auto most = static_cast<int>(severities.size()) - 1;
  auto band = most - std::clamp(severity_rank, 0, most);
  return band * severity_band_width + due;
}

/// 0 (info) .. 4 (critical) of an event as a delivery carries it; an event
/// of no known severity goes with the least severe.
inline int severity_rank_of(const event_content* e) {
  return e ? severity_rank(e->severity).value_or(0) : 0;
}

struct job {
  storage::delivery state;
  std::shared_ptr<const event_content> event;
  /// Its place in the endpoint's line, as last written: when it
  /// is due, or on an ordered endpoint where it joined the line. (In memory
  /// next_attempt_at can move ahead of it when a write is refused and the
  /// attempt postponed.)
  unix_ms place = 0;
  /// The place the write under way (an attempt's start or end) gives it,
  /// until that write is done.
  unix_ms next_place = 0;
  /// Attempts in flight when its attempt went out (itself included): whether
  /// the in-flight limit was what held the endpoint back.
  int in_flight_at_start = 0;
};

/// A job for a delivery as the store holds it, at `place` in the pending
/// index (default: when it is due, where new and replayed ones go).
inline job job_of(storage::delivery d,
                  std::shared_ptr<const event_content> event,
                  std::optional<unix_ms> place = std::nullopt) {
  auto due = place.value_or(d.next_attempt_at);
  return job{std::move(d), std::move(event), due};
}

} // namespace tocsin::delivery
