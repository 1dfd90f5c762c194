// A delivery as an endpoint works on it: its state (the fold of its log
// records) and the event it carries, shared by all of the event's
// deliveries that are in memory at once.
#pragma once

#include "delivery/event_content.hpp"
#include "storage/records.hpp"

#include <memory>
#include <optional>

namespace tocsin::delivery {

struct job {
  storage::delivery state;
  std::shared_ptr<const event_content> event;
  /// Its place in the endpoint's pending index, as last written: when it
  /// is due, or on an ordered endpoint where it joined the line. (In memory
  /// next_attempt_at can move ahead of it when a write is refused and the
  /// attempt postponed.)
  unix_ms indexed_due = 0;
  /// The place the write under way (an attempt's start or end) gives it,
  /// until that write is done.
  unix_ms next_indexed_due = 0;
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
