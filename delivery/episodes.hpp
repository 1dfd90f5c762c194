// The escalation rules as the intake runs them: their counts rebuilt from
// the event log, every accepted event observed, and each escalation made an
// event of its own that is accepted right after the event that fired it, in
// the same commit, linked to the events it was derived from (answering one
// of those answers it). Both are durable, or neither.
#pragma once

#include "delivery/escalation.hpp"
#include "delivery/new_event.hpp"
#include "delivery/pending_commit.hpp"
#include "storage/event_log.hpp"

#include <cstddef>
#include <string>
#include <vector>

namespace tocsin::delivery {

/// An escalation that fired, as an event to accept, and the events it was
/// derived from.
struct fired_escalation {
  new_event event;
  std::vector<std::string> from;
};

class episodes {
public:
  episodes(storage::event_log& log, std::vector<escalation_rule> rules,
           std::size_t max_payload_bytes);

  bool empty() const { return escalator_.empty(); }

  /// Rebuilds the counts from the events accepted in the rules' horizon
  /// before `now` (at start, and after a failed commit, whose events were
  /// counted but not accepted).
  status restore(unix_ms now);

  /// Counts `ev`, accepted at `now`, and returns the escalations it fires;
  /// their counters go into `pending`. Accept each event, then link() it.
  std::vector<fired_escalation> observe(const new_event& ev, unix_ms now,
                                        pending_commit& pending);

  /// Records in `pending` that each event `fired` was derived from leads to
  /// it.
  static void link(const fired_escalation& fired, pending_commit& pending);

private:
  storage::event_log& log_;
  std::vector<escalation_rule> rules_;
  std::size_t max_payload_bytes_;
  escalator escalator_;
};

} // namespace tocsin::delivery
