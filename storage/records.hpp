// The records tocsin keeps: events as accepted, deliveries (one per event and
// endpoint) with their attempts, and their JSON forms.
#pragma once

#include "common/json_writer.hpp"
#include "common/time.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tocsin::storage {

/// An accepted event. `body` is its normalized JSON (id, type, timestamp, ...),
/// immutable after acceptance.
struct event_record {
  std::string id;
  std::string body;
  unix_ms accepted_at = 0;
  std::vector<std::string> delivery_ids;
};

enum class delivery_state { pending, delivered, dead_lettered };

std::string_view to_string(delivery_state s);
std::optional<delivery_state> delivery_state_from(std::string_view s);

/// One HTTP attempt of a delivery.
struct attempt {
  int number = 0;
  unix_ms started_at = 0;
  unix_ms finished_at = 0; ///< 0 while in flight (or interrupted by a crash)
  int status = 0;          ///< HTTP status; 0 when no response arrived
  double latency_ms = 0;
  std::string response; ///< first 1 KiB of the response body
  std::string error;    ///< network, TLS or timeout error; empty otherwise

  bool finished() const { return finished_at != 0; }
};

/// The current state of one (event, endpoint) pair: a fold of its log records.
struct delivery {
  std::string id; ///< "dlv_..."
  std::string event_id;
  std::string endpoint_id;
  delivery_state state = delivery_state::pending;
  unix_ms created_at = 0;
  unix_ms window_start = 0; ///< first attempt of the current retry window
  /// Attempts made before the current window (a replay starts a new one).
  int attempt_base = 0;
  unix_ms next_attempt_at = 0; ///< when pending
  unix_ms finished_at = 0;     ///< when delivered or dead-lettered
  std::string reason;          ///< why it was dead-lettered
  std::vector<attempt> attempts;
};

void write_json(json_writer& w, const attempt& a);
std::string encode(const delivery& d);
std::optional<delivery> delivery_from_json(std::string_view text);

/// The body is embedded as JSON (not as a string): it is valid JSON already.
std::string encode(const event_record& e);
std::optional<event_record> event_from_json(std::string_view text);

} // namespace tocsin::storage
