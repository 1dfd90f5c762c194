// The event every benchmark sends (a policy denial, as a producer would post
// it), and a batch of them as one request body.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace tocsin::bench {

inline nlohmann::json sample_event(const std::string& agent_id = "agent-7") {
  return {{"type", "policy.denied"},
          {"agent_id", agent_id},
          {"summary", "agent-7 tried file.delete on /etc"},
          {"details",
           {{"action", "file.delete"},
            {"rule", "block-delete"},
            {"receipt_id", "rcpt_123"}}}};
}

/// {"events": [...]} with `n` events, the i-th made by `event_of(i)`.
template <class F>
std::string batch_body(int n, F event_of) {
  nlohmann::json b{{"events", nlohmann::json::array()}};
  for (int i = 0; i < n; ++i)
    b["events"].push_back(event_of(i));
  return b.dump();
}

/// `n` copies of sample_event().
inline std::string batch_body(int n) {
  auto ev = sample_event();
  return batch_body(n, [&](int) { return ev; });
}

} // namespace tocsin::bench
