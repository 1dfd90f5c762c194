// What the API hands to the engine: validated events, and the callback that
// answers the producer. Free of CAF so that the HTTP side need not include it.
#pragma once

#include "common/result.hpp"

#include <functional>
#include <string>
#include <vector>

namespace tocsin::delivery {

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
  /// SHA-256 of what the key covers (the event as sent, canonical JSON):
  /// the same key with other content is refused, not taken for a repeat.
  std::string idempotency_digest = {};
  /// The payload cut to delivery.max_payload_bytes, when the body is over
  /// it (computed at validation, off the ingest actor); empty: the body.
  std::string payload = {};
};

/// One POST /v1/events: its events, all or none.
struct ingest_batch {
  std::vector<new_event> events;
  /// Sent as {"events": [...]} (errors then name "events[i]....").
  bool is_batch = false;
  /// The Idempotency-Key header: covers the whole request.
  std::string idempotency_key = {};
  /// SHA-256 of the whole request (canonical JSON).
  std::string idempotency_digest = {};
  /// Whose keys these are: keys are scoped to the token that sent them.
  std::string idempotency_scope = {};
};

/// One event of a request as its producer is told.
struct accepted_event {
  /// Deliveries created for it: 0 when no endpoint matched it (it is
  /// stored all the same), or for a repeat.
  std::size_t deliveries = 0;
  /// A repeat of an idempotency key: the first event's id, nothing new.
  bool repeat = false;
};

/// What a producer is told once its events are durable.
struct ingest_answer {
  std::vector<std::string> ids;
  /// Deliveries created (0 for a repeated idempotency key).
  std::size_t deliveries = 0;
  /// Per event, in the order of `ids`.
  std::vector<accepted_event> events = {};
};

/// Runs once with the answer, after the events are durable, or an error:
/// "store_unavailable", or "idempotency_key_reused" (a key of the request
/// was used before for other content; nothing was stored).
using ingest_callback = std::function<void(result<ingest_answer>)>;

} // namespace tocsin::delivery
