#include "delivery/episodes.hpp"

#include "common/json_parse.hpp"
#include "common/log.hpp"
#include "common/metric_families.hpp"
#include "delivery/own_records.hpp"

#include <nlohmann/json.hpp>

namespace tocsin::delivery {

namespace {

/// The fields the escalation rules look at, from a stored event.
std::optional<storage::event_fields> fields_of(const storage::event_record& e) {
  if (e.fields)
    return e.fields;
  nlohmann::json body; // records of versions that kept no fields
  if (!parse_json(e.body, body, nullptr, stored_json_limits) ||
      !body.is_object())
    return std::nullopt;
  storage::event_fields f;
  f.type = body.value("type", "");
  f.agent_id = body.value("agent_id", "");
  return f;
}

} // namespace

episodes::episodes(storage::store& log, std::vector<escalation_rule> rules,
                   std::size_t max_payload_bytes)
    : log_(log), rules_(rules), max_payload_bytes_(max_payload_bytes),
      escalator_(std::move(rules)), reported_(rules_.size(), 0),
      unlogged_(rules_.size(), 0) {}

status episodes::restore(unix_ms now) {
  escalator_ = escalator{rules_};
  // Groups forgotten while rebuilding were forgotten (and counted) before.
  std::fill(reported_.begin(), reported_.end(), 0);
  reported_total_ = 0;
  if (escalator_.empty())
    return {};
  std::size_t seen = 0;
  restored_recently_.clear();
  // How far behind the log's news may run (a node's follower) and how far
  // apart the nodes' clocks may be, generously.
  constexpr unix_ms recent_ms = 60'000;
  auto st = log_.for_each_event_since(
      now - escalator_.horizon(), [&](const storage::event_record& e) {
        if (auto f = fields_of(e)) {
          escalator_.restore(
              {e.id, f->type, f->agent_id, e.body, e.accepted_at});
          if (e.accepted_at >= now - recent_ms)
            restored_recently_.insert(e.id);
          ++seen;
        }
        return true;
      });
  if (!st)
    return st;
  log::info("escalation rules restored from the event log",
            {{"events", std::to_string(seen)},
             {"groups", std::to_string(escalator_.groups())}});
  for (std::size_t i = 0; i < rules_.size(); ++i)
    reported_[i] = escalator_.forgotten_groups(i);
  reported_total_ = escalator_.forgotten_groups();
  return {};
}

std::vector<fired_escalation>
episodes::observe(const new_event& ev, unix_ms now, pending_commit& pending) {
  std::vector<fired_escalation> out;
  if (escalator_.empty())
    return out;
  auto fired = escalator_.observe({ev.id, ev.type, ev.agent_id, ev.body, now},
                                  &counted_);
  for (auto& c : counted_)
    pending.batch.counted_in_group(ev.id, c.rule, c.group);
  if (escalator_.forgotten_groups() != reported_total_)
    report_forgotten();
  for (auto& d : fired) {
    fired_escalation f;
    f.rule = d.rule;
    f.group = d.group;
    f.at = now;
    f.members = std::move(d.members);
    f.event = own_event(d.type, d.severity, d.agent_id, d.summary,
                        d.details.dump(), now, max_payload_bytes_);
    log::info("escalation rule fired",
              {{"rule", d.rule}, {"group", d.group}, {"event", f.event.id}});
    pending.on_commit.push_back(
        &metrics::families::escalations().with({d.rule}));
    out.push_back(std::move(f));
  }
  return out;
}

std::vector<fired_escalation>
episodes::observe_stored(const storage::event_record& e,
                         pending_commit& pending) {
  if (escalator_.empty() || restored_recently_.erase(e.id) > 0)
    return {};
  auto f = fields_of(e);
  if (!f)
    return {};
  new_event ev;
  ev.id = e.id;
  ev.type = f->type;
  ev.agent_id = f->agent_id;
  ev.body = e.body;
  return observe(ev, e.accepted_at, pending);
}

void episodes::link(const fired_escalation& fired, pending_commit& pending) {
  pending.batch.escalation_recorded(fired.event.id, fired.rule, fired.group,
                                    fired.at, fired.members);
}

void episodes::report_forgotten() {
  for (std::size_t i = 0; i < rules_.size(); ++i) {
    auto now = escalator_.forgotten_groups(i);
    if (now == reported_[i])
      continue;
    metrics::families::escalation_groups_forgotten()
        .with({rules_[i].name})
        .add(now - reported_[i]);
    unlogged_[i] += now - reported_[i];
    reported_[i] = now;
  }
  reported_total_ = escalator_.forgotten_groups();
  if (!log_throttle_.admit())
    return;
  for (std::size_t i = 0; i < rules_.size(); ++i) {
    if (unlogged_[i] == 0)
      continue;
    auto limit = rules_[i].max_groups > 0
                     ? rules_[i].max_groups
                     : escalator_limits{}.max_groups_per_rule;
    log::warn("escalation groups forgotten: the rule tracks as many groups as "
              "it may; those furthest from firing lose their counts",
              {{"rule", rules_[i].name},
               {"forgotten", std::to_string(unlogged_[i])},
               {"max_groups", std::to_string(limit)}});
    unlogged_[i] = 0;
  }
}

} // namespace tocsin::delivery
