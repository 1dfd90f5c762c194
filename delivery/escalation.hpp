// Escalation rules ([[escalation]], DESIGN.md "Escalation and
// acknowledgement"): "5 or more policy.denied from one agent within 10
// minutes" raises one derived event of the rule's severity per group per
// episode. Pure: no I/O, no actors, time is the events' acceptance time.
#pragma once

#include "common/result.hpp"
#include "common/time.hpp"

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace tocsin::delivery {

/// One [[escalation]] rule, as check_rule() accepts it.
struct escalation_rule {
  /// [A-Za-z0-9._-]{1,64}, unique among the rules.
  std::string name;
  /// The event types counted (1 to 5 of common/event_types.hpp, no
  /// repeats); `type = "x"` in the config is `{"x"}`.
  std::vector<std::string> event_types;
  /// Events of one group inside the window that make it fire: 2 to 1000.
  int threshold = 0;
  /// The sliding window: an event at t counts the group's events accepted in
  /// (t - window, t]. At least 1 ms.
  unix_ms window = 0;
  /// "agent_id", or "details.<key>" for a top-level key of the event's
  /// details (<key>: [A-Za-z0-9_-]{1,64}).
  std::string group_by = "agent_id";
  /// Of the derived event: critical, high, medium, low or info.
  std::string severity = "critical";
  /// After a firing, the same group does not fire again for this long
  /// (0: as soon as `threshold` new events are in the window).
  unix_ms suppress_for = 0;
  /// Template of the derived event's summary; placeholders {agent_id},
  /// {group}, {count}, {window} (seconds), {rule}, {type}; empty: the
  /// default_escalation_summary. Cut to 1024 bytes once filled in.
  std::string summary;
  /// Groups this rule tracks at once (0: escalator_limits'
  /// max_groups_per_rule); see escalator_limits.
  std::size_t max_groups = 0;

  friend bool operator==(const escalation_rule&,
                         const escalation_rule&) = default;
};

inline constexpr std::string_view default_escalation_summary =
    "{group}: {count} {type} events in {window}s (rule {rule})";
inline constexpr int max_escalation_threshold = 1000;
/// Longer group values (agent_id's own limit) are not counted: a rule must
/// not hold unbounded strings per group.
inline constexpr std::size_t max_escalation_group_bytes = 256;
/// A derived event lists at most this many of the events it counts (the
/// newest); `count` says how many it counts.
inline constexpr std::size_t max_listed_event_ids = 100;

/// Whether `r` is usable: nothing on success, else an error whose `field`
/// names the offending member ("threshold", "group_by", ...) and whose
/// `message` says what is wrong in a few words ("must be ..."), for the
/// config to prefix with the rule's place. Unique names are the caller's to
/// check.
status check_rule(const escalation_rule& r);

/// What the escalator looks at in an accepted event. Views: valid for the
/// call only.
struct observed_event {
  std::string_view id;
  std::string_view type;
  std::string_view agent_id; ///< empty if the event has none
  /// The event's JSON as tocsin normalized it at acceptance (the stored
  /// body). Parsed only when a rule of the event's type groups by details,
  /// or when it mentions "escalation" (to recognize derived events).
  std::string_view body;
  unix_ms accepted_at = 0;
};

/// An escalation: the caller makes it an event of its own (new id,
/// timestamp) and accepts it like any other.
struct derived_event {
  std::string rule;
  std::string group;
  /// The type of the event that made the rule fire.
  std::string type;
  std::string severity;
  /// The group when the rule groups by agent_id, else the agent of the event
  /// that made it fire (empty if it had none).
  std::string agent_id;
  std::string summary;
  /// {"escalation": {"rule", "group", "count", "window" (seconds, a
  /// number), "first_at", "last_at" (RFC 3339 UTC, ms), "event_ids"}}, and
  /// "event_ids_truncated": true when `event_ids` lists only the newest
  /// max_listed_event_ids of the `count` events. The event must carry it as
  /// its `details`: that is how restore() and every rule recognize it.
  nlohmann::ordered_json details;
  /// Every event counted (all `count` of them), oldest first, each followed
  /// by '\n': what the store keeps as the escalation's members.
  std::string members;
};

/// Where observe() counted an event: one per rule that counted it. Views:
/// valid until the escalator's next call.
struct counted_in {
  std::string_view rule;
  std::string_view group;
};

struct escalator_limits {
  /// Groups one rule tracks at once (unless the rule says otherwise). Past
  /// it, one group is forgotten for each new one: expired ones first, else
  /// the one furthest from firing — the fewest events in its episode, then
  /// the one seen least recently — so that a flood of new groups cannot
  /// flush one a single event short of its threshold while others are
  /// further. A forgotten group's count starts again from nothing and its
  /// suppression ends (counted: forgotten_groups()). O(log n) per event.
  std::size_t max_groups_per_rule = 100000;
};

/// Runs the rules over accepted events, in acceptance order.
///
/// Semantics, per (rule, group):
/// - An episode counts the group's matching events accepted after the
///   group's previous escalation: events counted by an escalation are never
///   counted again.
/// - The rule fires on the event (at t) that makes the episode's events in
///   (t - window, t] number `threshold` or more, provided t >= the previous
///   firing + suppress_for. At most one derived event per episode: firing
///   ends the episode. When suppression holds a firing back, the next event
///   after it ends fires if the window then still holds `threshold` events
///   (time alone fires nothing).
/// - The derived event counts the newest `threshold` events of the window
///   (`count` == threshold, `first_at` the oldest of them, `last_at` t):
///   only while suppressed can the window hold more, and those older ones
///   end with the episode all the same. So a group keeps at most
///   threshold - 1 events between two calls. It lists the newest
///   max_listed_event_ids of them; `members` has them all.
/// - Events whose group value is missing, empty, not a string or longer than
///   max_escalation_group_bytes are not counted. Neither is any event whose
///   details hold an "escalation" object (a derived event): no loops.
/// - Time never runs backwards here: an event accepted before one seen
///   earlier is taken at the later time (a clock step).
///
/// Restart: feed restore() the events accepted at or after
/// now - horizon(), in acceptance order, the derived events included; the
/// state is then the one the escalator had before (short of
/// max_groups_per_rule evictions). A derived event (details.escalation.rule
/// naming a rule counting its type) marks its group fired at its
/// `last_at`, and the events its group holds up to the newest of its
/// `event_ids` counted, in observe() as in restore(): a
/// derived event fed back changes nothing, and one that was stored is never
/// raised again. One lost in a crash before it was stored is raised again
/// by the next event of its group, if the window still holds `threshold`.
class escalator {
public:
  /// Each rule passed check_rule(); names are unique.
  explicit escalator(std::vector<escalation_rule> rules,
                     escalator_limits limits = {});
  ~escalator();
  escalator(escalator&&) noexcept;
  escalator& operator=(escalator&&) noexcept;

  /// Counts `e` and returns the escalations it causes (one per rule at
  /// most). Events of a type no rule counts cost a lookup. `counted`, if
  /// given, is set to where `e` was counted.
  [[nodiscard]] std::vector<derived_event>
  observe(const observed_event& e, std::vector<counted_in>* counted = nullptr);

  /// Rebuilds the state from an event accepted before a restart: counts it
  /// like observe() but never fires.
  void restore(const observed_event& e);

  /// Takes over the state `other` holds for each rule defined exactly as
  /// one of this escalator's (same name, same everything) that has no state
  /// here yet: its groups, counts and suppressions, as if this escalator
  /// had observed what `other` did. What `other` holds of other rules is
  /// left. How many rules were taken over. (A reload of the rules keeps
  /// the state of those that did not change.)
  std::size_t adopt(escalator&& other);

  /// Forgets groups that can no longer fire or suppress anything: whose
  /// newest event is max(window, suppress_for) or more before `now`. Also
  /// done a few groups at a time on every observe(); call it when idle to
  /// give the memory back.
  void prune(unix_ms now);

  /// How far back (ms) restore() must be fed: max(window, suppress_for)
  /// over the rules; 0 without rules.
  unix_ms horizon() const;

  bool empty() const;
  const std::vector<escalation_rule>& rules() const;
  /// Groups tracked now, over all rules.
  std::size_t groups() const;
  /// Groups forgotten because a rule was at its group limit (live state
  /// lost, not merely expired), since construction: all rules, or the rule
  /// at `rule_index` (in rules()).
  std::size_t forgotten_groups() const;
  std::size_t forgotten_groups(std::size_t rule_index) const;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace tocsin::delivery
