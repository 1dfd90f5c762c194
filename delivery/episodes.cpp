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

episodes::episodes(storage::event_log& log, std::vector<escalation_rule> rules,
                   std::size_t max_payload_bytes)
    : log_(log), rules_(rules), max_payload_bytes_(max_payload_bytes),
      escalator_(std::move(rules)) {}

status episodes::restore(unix_ms now) {
  escalator_ = escalator{rules_};
  if (escalator_.empty())
    return {};
  std::size_t seen = 0;
  auto st = log_.for_each_event_since(
      now - escalator_.horizon(), [&](const storage::event_record& e) {
        if (auto f = fields_of(e)) {
          escalator_.restore(
              {e.id, f->type, f->agent_id, e.body, e.accepted_at});
          ++seen;
        }
        return true;
      });
  if (!st)
    return st;
  log::info("escalation rules restored from the event log",
            {{"events", std::to_string(seen)},
             {"groups", std::to_string(escalator_.groups())}});
  return {};
}

std::vector<fired_escalation>
episodes::observe(const new_event& ev, unix_ms now, pending_commit& pending) {
  std::vector<fired_escalation> out;
  if (escalator_.empty())
    return out;
  for (auto& d :
       escalator_.observe({ev.id, ev.type, ev.agent_id, ev.body, now})) {
    fired_escalation f;
    for (auto& id : d.details["escalation"]["event_ids"])
      if (id.is_string())
        f.from.push_back(id.get<std::string>());
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

void episodes::link(const fired_escalation& fired, pending_commit& pending) {
  for (auto& id : fired.from)
    pending.batch.link_escalation(id, fired.event.id);
}

} // namespace tocsin::delivery
