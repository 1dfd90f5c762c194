// Whether two validations of one body gave the same events: every field
// equal, the event ids (new for each validation) aside. Header-only: the api
// fuzzer uses it too.
#pragma once

#include "delivery/new_event.hpp"

#include <string>
#include <string_view>

namespace tocsin::test {

/// `text` with every `from` replaced by `to`.
inline std::string replaced(std::string text, std::string_view from,
                            std::string_view to) {
  if (from.empty())
    return text;
  for (auto pos = text.find(from); pos != std::string::npos;
       pos = text.find(from, pos + to.size()))
    text.replace(pos, from.size(), to);
  return text;
}

inline bool same_events(const delivery::ingest_batch& a,
                        const delivery::ingest_batch& b) {
  if (a.events.size() != b.events.size() || a.is_batch != b.is_batch ||
      a.idempotency_digest != b.idempotency_digest)
    return false;
  for (std::size_t i = 0; i < a.events.size(); ++i) {
    auto& x = a.events[i];
    auto& y = b.events[i];
    if (x.type != y.type || x.severity != y.severity ||
        x.agent_id != y.agent_id || x.severity_name != y.severity_name ||
        x.summary != y.summary || x.timestamp != y.timestamp ||
        x.audit_url != y.audit_url || x.idempotency_key != y.idempotency_key ||
        x.idempotency_digest != y.idempotency_digest ||
        x.id.substr(0, 4) != y.id.substr(0, 4) ||
        x.body != replaced(y.body, y.id, x.id) ||
        x.payload != replaced(y.payload, y.id, x.id))
      return false;
  }
  return true;
}

} // namespace tocsin::test
