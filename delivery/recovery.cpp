#include "delivery/recovery.hpp"

#include "delivery/retry_policy.hpp"

#include <unordered_map>

namespace tocsin::delivery {

result<recovered>
recover_pending(storage::event_log& log,
                const std::function<bool(const std::string&)>& exists,
                const std::function<bool(const std::string&)>& wanted,
                std::size_t max_payload_bytes, unix_ms now) {
  recovered out;
  std::unordered_map<std::string, std::shared_ptr<const event_content>>
      contents;
  storage::write_set fixes;
  std::optional<error> failure;
  auto st = log.for_each_pending([&](storage::delivery&& d) {
    if (failure)
      return;
    bool orphan = !exists(d.endpoint_id);
    if (!orphan && !wanted(d.endpoint_id))
      return;
    if (!d.attempts.empty() && !d.attempts.back().finished()) {
      auto& a = d.attempts.back();
      a.finished_at = now;
      a.error = interrupted_error;
      d.next_attempt_at = now;
      fixes.put_delivery(d, storage::record_kind::attempt_interrupted,
                         storage::delivery_state::pending);
      ++out.report.interrupted;
    }
    if (orphan) {
      d.state = storage::delivery_state::dead_lettered;
      d.finished_at = now;
      d.reason = endpoint_deleted_reason;
      fixes.put_delivery(d, storage::record_kind::delivery_dead_lettered);
      ++out.report.orphaned;
      return;
    }
    auto& content = contents[d.event_id];
    if (!content) {
      auto ev = log.get_event(d.event_id);
      if (!ev || !*ev) {
        failure = ev ? error{"store_corrupt", "delivery " + d.id +
                                                  " names missing event " +
                                                  d.event_id}
                     : ev.error();
        return;
      }
      content = make_event_content((*ev)->body, max_payload_bytes);
    }
    auto endpoint = d.endpoint_id;
    out.jobs[endpoint].push_back(job{std::move(d), content});
    ++out.report.resumed;
  });
  if (!st)
    return st.error();
  if (failure)
    return *failure;
  if (auto s = log.commit(fixes, storage::durability::synced); !s)
    return s.error();
  return out;
}

} // namespace tocsin::delivery
