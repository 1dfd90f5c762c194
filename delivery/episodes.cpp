#include "delivery/episodes.hpp"

#include "common/json_parse.hpp"
#include "common/log.hpp"
#include "common/metric_families.hpp"
#include "delivery/own_records.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>

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

result<std::size_t>
episodes::replay_log(escalator& e, unix_ms now,
                     std::unordered_set<std::string>* recent) const {
  std::size_t seen = 0;
  // How far behind the log's news may run (a node's follower) and how far
  // apart the nodes' clocks may be, generously.
  constexpr unix_ms recent_ms = 60'000;
  auto st = log_.for_each_event_since(
      now - e.horizon(), [&](const storage::event_record& r) {
        if (auto f = fields_of(r)) {
          e.restore({r.id, f->type, f->agent_id, r.body, r.accepted_at});
          if (recent && r.accepted_at >= now - recent_ms)
            recent->insert(r.id);
          ++seen;
        }
        return true;
      });
  if (!st)
    return st.error();
  return seen;
}

status episodes::restore(unix_ms now) {
  escalator_ = escalator{rules_};
  // Groups forgotten while rebuilding were forgotten (and counted) before.
  std::fill(reported_.begin(), reported_.end(), 0);
  reported_total_ = 0;
  if (escalator_.empty())
    return {};
  restored_recently_.clear();
  auto seen = replay_log(escalator_, now, &restored_recently_);
  if (!seen)
    return seen.error();
  log::info("escalation rules restored from the event log",
            {{"events", std::to_string(*seen)},
             {"groups", std::to_string(escalator_.groups())}});
  for (std::size_t i = 0; i < rules_.size(); ++i)
    reported_[i] = escalator_.forgotten_groups(i);
  reported_total_ = escalator_.forgotten_groups();
  return {};
}

result<episodes::rule_change>
episodes::prepare_rules(std::vector<escalation_rule> rules, unix_ms now,
                        bool rebuild) const {
  std::vector<escalation_rule> fresh;
  for (auto& r : rules)
    if (std::find(rules_.begin(), rules_.end(), r) == rules_.end())
      fresh.push_back(r);
  rule_change change{std::move(rules), escalator{fresh}};
  if (rebuild && !fresh.empty()) {
    auto seen = replay_log(change.fresh, now, nullptr);
    if (!seen)
      return seen.error();
    log::info("new and changed escalation rules restored from the event log",
              {{"rules", std::to_string(fresh.size())},
               {"events", std::to_string(*seen)},
               {"groups", std::to_string(change.fresh.groups())}});
  }
  return change;
}

void episodes::install(rule_change change) {
  escalator next{change.rules};
  next.adopt(std::move(change.fresh));
  next.adopt(std::move(escalator_));
  escalator_ = std::move(next);
  rules_ = std::move(change.rules);
  // What the adopted rules had forgotten was counted in /metrics already.
  reported_.assign(rules_.size(), 0);
  for (std::size_t i = 0; i < rules_.size(); ++i)
    reported_[i] = escalator_.forgotten_groups(i);
  reported_total_ = escalator_.forgotten_groups();
  unlogged_.assign(rules_.size(), 0);
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
