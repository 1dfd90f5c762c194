// A delivery as an endpoint works on it: its state (the fold of its log
// records) and the event it carries, shared by all of the event's
// deliveries that are in memory at once.
#pragma once

#include "delivery/event_content.hpp"
#include "storage/records.hpp"

#include <memory>

namespace tocsin::delivery {

struct job {
  storage::delivery state;
  std::shared_ptr<const event_content> event;
  /// The due time the store indexes the delivery under: its
  /// next_attempt_at as last written. (In memory next_attempt_at can move
  /// ahead of it when a write is refused and the attempt postponed.)
  unix_ms indexed_due = 0;
};

/// A job for a delivery as the store holds it.
inline job job_of(storage::delivery d,
                  std::shared_ptr<const event_content> event) {
  auto due = d.next_attempt_at;
  return job{std::move(d), std::move(event), due};
}

} // namespace tocsin::delivery
