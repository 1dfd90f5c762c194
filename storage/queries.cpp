// What the listings of events ask of a store, whichever backend reads.
#include "common/ids.hpp"
#include "storage/store.hpp"

namespace tocsin::storage {

event_id_range id_range_of(const event_query& q) {
  event_id_range r;
  r.lower = q.since > 0 ? id_floor("evt", q.since) : "evt_";
  r.upper = q.until ? id_floor("evt", *q.until) : "evt`"; // '_' + 1
  if (!q.before.empty() && q.before < r.upper)
    r.upper = q.before; // exclusive: the page before ended with it
  if (q.limit == 0)
    r.upper = r.lower;
  return r;
}

bool matches(const event_query& q, const event_record& e) {
  if (q.state && e.state() != *q.state)
    return false;
  if (q.type.empty() && q.severity.empty() && q.agent_id.empty())
    return true;
  auto f = fields_of_event(e);
  return (q.type.empty() || f.type == q.type) &&
         (q.severity.empty() || f.severity == q.severity) &&
         (q.agent_id.empty() || f.agent_id == q.agent_id);
}

} // namespace tocsin::storage
