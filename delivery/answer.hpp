// What the API asks for when an operator acknowledges or resolves an event
// (POST /v1/events/{id}/ack|resolve, a Slack button, a PagerDuty webhook),
// and what it is told. Free of CAF.
#pragma once

#include "common/result.hpp"
#include "storage/records.hpp"

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

namespace tocsin::delivery {

struct answer_request {
  std::string event_id;
  /// acknowledged or resolved.
  storage::event_state state = storage::event_state::acknowledged;
  std::string by;     ///< who: a token's name, a Slack user, a PagerDuty user
  std::string source; ///< "api", "slack" or "pagerduty"
  std::string note = {};
  /// Where the news goes for one endpoint of transport `reply_transport`
  /// (the response_url of the Slack message that was clicked): the first
  /// such endpoint the event was delivered to gets it there (replacing the
  /// message); others of the transport get a new message.
  std::string reply_url = {};
  std::string reply_transport = {};
  /// The Slack message that was clicked (its channel and ts), when the
  /// click says: a message a Slack app posted (its delivery's receipt names
  /// it) is edited in place, not replaced through reply_url.
  std::string clicked_channel = {};
  std::string clicked_ts = {};
  /// An answer from a receiver's side (a Slack click, a PagerDuty webhook)
  /// acts only on an event delivered to an endpoint of this transport (a
  /// PagerDuty incident's dedup_key is "tocsin-<event id>": the event named
  /// is the one that endpoint was sent): anything else is refused with
  /// "not_sent_there". Empty: any event (the API).
  std::string only_if_sent_by = {};
};

/// One event's outcome.
struct answered_event {
  std::string event_id;
  storage::event_state state = storage::event_state::open; ///< now
  bool changed = false; ///< false: it was in that state (or further) already
  std::vector<storage::event_answer> answers; ///< as stored
  std::size_t notices = 0; ///< deliveries created to tell endpoints
};

/// The event asked about first, then the events of its escalation episode
/// (answering an escalation answers the events it was derived from).
struct answer_outcome {
  std::vector<answered_event> events;
};

/// Runs once the answer is durable, or with an error: "not_found",
/// "event_expired" (removed by retention), "not_sent_there" (see
/// answer_request::only_if_sent_by), "store_unavailable".
using answer_callback = std::function<void(result<answer_outcome>)>;

} // namespace tocsin::delivery
