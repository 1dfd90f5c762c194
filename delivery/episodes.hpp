// The escalation rules as the intake runs them: their counts rebuilt from
// the event log, every accepted event observed, and each escalation made an
// event of its own that is accepted right after the event that fired it, in
// the same commit, linked to the events it was derived from (answering one
// of those answers it). Both are durable, or neither.
#pragma once

#include "common/log.hpp"
#include "delivery/escalation.hpp"
#include "delivery/new_event.hpp"
#include "delivery/pending_commit.hpp"
#include "storage/store.hpp"

#include <cstddef>
#include <string>
#include <unordered_set>
#include <vector>

namespace tocsin::delivery {

/// An escalation that fired, as an event to accept, and the events it was
/// derived from.
struct fired_escalation {
  new_event event;
  std::string rule;
  std::string group;
  unix_ms at = 0;
  /// Every event it was derived from, each followed by '\n' (its details
  /// list only the newest 100).
  std::string members;
};

class episodes {
public:
  episodes(storage::store& log, std::vector<escalation_rule> rules,
           std::size_t max_payload_bytes);

  bool empty() const { return escalator_.empty(); }

  /// Rebuilds the counts from the events accepted in the rules' horizon
  /// before `now` (at start, and after a failed commit, whose events were
  /// counted but not accepted).
  status restore(unix_ms now);

  const std::vector<escalation_rule>& rules() const { return rules_; }

  /// New rules (a reload of the config file), made ready without changing
  /// the ones that run: see prepare_rules() and install().
  struct rule_change {
    std::vector<escalation_rule> rules;
    /// The counts of the rules that are new or changed, rebuilt from the
    /// event log as at start.
    escalator fresh;
  };

  /// Readies `rules` to replace the running ones: the counts of each rule
  /// that is new or defined otherwise than before are rebuilt from the
  /// events accepted in its horizon before `now` (with `rebuild`; without,
  /// they start from nothing: the caller restores them all later). Changes
  /// nothing that runs; an error when the log cannot be read.
  result<rule_change> prepare_rules(std::vector<escalation_rule> rules,
                                    unix_ms now, bool rebuild) const;

  /// Runs the rules of `change` from now on. A rule defined as before keeps
  /// its counts and suppressions; the others have theirs from
  /// prepare_rules(); a rule no longer there is forgotten.
  void install(rule_change change);

  /// Counts `ev`, accepted at `now`, and returns the escalations it fires;
  /// their counters, and where `ev` was counted (see
  /// storage::changes::counted_in_group), go into `pending`. Accept each
  /// event, then link() it. Groups forgotten at a rule's limit are counted
  /// (tocsin_escalation_groups_forgotten_total) and logged, at most once
  /// every 10 s.
  std::vector<fired_escalation> observe(const new_event& ev, unix_ms now,
                                        pending_commit& pending);

  /// Counts an event the log says was accepted (by any node of a cluster),
  /// at its acceptance time, unless the last restore() counted it already.
  std::vector<fired_escalation> observe_stored(const storage::event_record& e,
                                               pending_commit& pending);

  /// Records in `pending` the events `fired` was derived from (one record,
  /// however many: storage::changes::escalation_recorded).
  static void link(const fired_escalation& fired, pending_commit& pending);

private:
  /// Counts and logs the groups forgotten since the last call.
  void report_forgotten();
  /// Feeds `e` the events accepted in its horizon before `now`; how many.
  /// `recent`, if given, gets those of the last minute.
  result<std::size_t> replay_log(escalator& e, unix_ms now,
                                 std::unordered_set<std::string>* recent) const;

  storage::store& log_;
  std::vector<escalation_rule> rules_;
  std::size_t max_payload_bytes_;
  escalator escalator_;
  std::vector<counted_in> counted_;
  /// Per rule: the forgotten groups counted in /metrics so far.
  std::vector<std::size_t> reported_;
  std::size_t reported_total_ = 0;
  /// Per rule: forgotten since the last log line about it.
  std::vector<std::size_t> unlogged_;
  log::throttle log_throttle_;
  /// Events the last restore() counted that the log may still bring to
  /// observe_stored (those accepted in its last minute).
  std::unordered_set<std::string> restored_recently_;
};

} // namespace tocsin::delivery
