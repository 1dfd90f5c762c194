// The records tocsin keeps: events as accepted, deliveries (one per event and
// endpoint) with their attempts, and how they are stored: a compact binary
// form (records of older versions, JSON, are still read).
#pragma once

#include "common/json_writer.hpp"
#include "common/time.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tocsin::storage {

/// The fields of an event that transports format, as in its body: kept
/// beside the body so that a delivery read back from the store needs no
/// parse of it.
struct event_fields {
  std::string type;
  std::string severity;
  std::string agent_id;
  std::string summary;
  std::string timestamp;
  std::string audit_url;

  friend bool operator==(const event_fields&, const event_fields&) = default;
};

/// Where an event stands: open until an operator acknowledges or resolves it.
enum class event_state { open, acknowledged, resolved };

std::string_view to_string(event_state s);
std::optional<event_state> event_state_from(std::string_view s);

/// An operator's answer to an event: who acknowledged or resolved it, when,
/// and from where ("api", "slack", "pagerduty").
struct event_answer {
  event_state state = event_state::acknowledged;
  std::string by;
  std::string source;
  std::string note;
  unix_ms at = 0;
  /// The event the operator answered when it is another one (an escalation
  /// answered with the events it was derived from, or the other way
  /// round); empty when this event was answered itself.
  std::string via = {};

  friend bool operator==(const event_answer&, const event_answer&) = default;
};

/// An accepted event. `body` is its normalized JSON (id, type, timestamp, ...),
/// immutable after acceptance.
struct event_record {
  std::string id;
  std::string body;
  unix_ms accepted_at = 0;
  std::vector<std::string> delivery_ids;
  /// Nothing in records of older versions (read them from the body).
  std::optional<event_fields> fields = {};
  /// Acknowledged, then resolved: in order, at most one of each.
  std::vector<event_answer> answers = {};

  event_state state() const {
    return answers.empty() ? event_state::open : answers.back().state;
  }
};

/// The event's fields: those kept with it, or (records of versions that
/// kept none) read from its body, the severity defaulted by type as at
/// acceptance. Empty strings for what neither has.
event_fields fields_of_event(const event_record& e);

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
  /// The cluster node that made it; empty on a node that is not in one.
  std::string node;

  bool finished() const { return finished_at != 0; }
};

/// What a delivery carries: the event itself (state open), or the news
/// that it was acknowledged or resolved, for transports that follow an
/// event's state (a PagerDuty incident is acknowledged, a Slack message
/// replaced).
struct notice {
  event_state state = event_state::open;
  std::string by;
  unix_ms at = 0;
  /// Where the transport should send it instead of the endpoint's URL (the
  /// response_url of the Slack message that was clicked); empty: the
  /// endpoint's.
  std::string reply_url;
  /// The receipt of the delivery that carried the event to this endpoint
  /// (what it made of it, e.g. a Slack message's channel and ts), for the
  /// transport to edit that instead of sending something new; may be empty.
  std::string receipt = {};
  /// How many other events the same answer changed.
  std::uint32_t along = 0;

  friend bool operator==(const notice&, const notice&) = default;
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
  notice news = {};
  /// What the receiver made of it, as its transport said when it was
  /// delivered: a JSON object (a Slack message's {"channel", "ts"}), or
  /// empty.
  std::string receipt = {};
};

void write_json(json_writer& w, const attempt& a);

/// The stored forms. decode_* read both the binary form and the JSON of
/// older versions; nothing when the text is neither (a damaged record).
std::string encode(const delivery& d);
std::optional<delivery> decode_delivery(std::string_view stored);
std::string encode(const event_record& e);
std::optional<event_record> decode_event(std::string_view stored);

} // namespace tocsin::storage
