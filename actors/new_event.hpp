// What the API hands to the engine: validated events, and the callback that
// answers the producer. Free of CAF so that the HTTP side need not include it.
#pragma once

#include "common/result.hpp"

#include <functional>
#include <string>
#include <vector>

namespace tocsin::actors {

/// A validated event ready to be logged; the ingest actor routes it.
struct new_event {
  std::string id;
  std::string type;
  int severity = 0;
  std::string agent_id;
  std::string body; ///< normalized JSON, the webhook payload
  // As in `body`, so that transports need not parse it again.
  std::string severity_name = {};
  std::string summary = {};
  std::string timestamp = {};
  std::string audit_url = {};
  /// A repeat of this key within 24 h answers with the first event's id.
  std::string idempotency_key = {};
};

/// What a producer is told once its events are durable.
struct ingest_answer {
  std::vector<std::string> ids;
  /// Deliveries created (0 for a repeated idempotency key).
  std::size_t deliveries = 0;
};

/// Runs once with the answer, after the events are durable, or an error.
using ingest_callback = std::function<void(result<ingest_answer>)>;

} // namespace tocsin::actors
