// The two inbound integrations (DESIGN.md, "Escalation and acknowledgement"):
// Slack's interaction callbacks (a click on "Acknowledge") and PagerDuty's
// webhooks v3 (an incident acknowledged or resolved there). Each request is
// authenticated by its sender's signature over the raw body, checked before
// anything of the body is decoded; then the body is read into what tocsin
// should do. Pure functions: no I/O, the time passed in (and fuzzed).
#pragma once

#include "common/result.hpp"
#include "common/time.hpp"
#include "storage/records.hpp"

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace tocsin::api {

/// Slack refuses requests older than this; so does tocsin (replays).
inline constexpr unix_ms slack_max_skew_ms = 300'000;

/// X-Slack-Signature must be "v0=" + hex HMAC-SHA256(signing secret,
/// "v0:" + X-Slack-Request-Timestamp + ":" + body), compared in constant
/// time, and the timestamp (Unix seconds) within 300 s of `now`. Errors:
/// "invalid_signature", "stale_request".
status verify_slack_request(std::string_view signing_secret,
                            std::string_view timestamp,
                            std::string_view signature, std::string_view body,
                            unix_ms now);

/// The largest body the integration routes read: Slack's interaction
/// callbacks and PagerDuty's webhooks are a few KiB.
inline constexpr std::size_t integration_max_body_bytes = 64 * 1024;

/// What can be checked of a Slack request from its head, before its body is
/// read: X-Slack-Signature present, X-Slack-Request-Timestamp a Unix time
/// within 300 s of `now`. Errors: "invalid_signature", "stale_request" (as
/// verify_slack_request, which still checks the signature over the body).
status check_slack_headers(std::string_view timestamp,
                           std::string_view signature, unix_ms now);

/// From the head: X-PagerDuty-Signature present. Error: "invalid_signature".
status check_pagerduty_headers(std::string_view signature);

/// A click on a tocsin button in a Slack message.
struct slack_click {
  std::string event_id;     ///< the button's value
  std::string user;         ///< who clicked: "name (U123)" as Slack says
  std::string response_url; ///< where the message can be replaced
  /// What the button asks: acknowledged (tocsin.ack) or resolved
  /// (tocsin.resolve).
  storage::event_state state = storage::event_state::acknowledged;
  /// The message clicked (its channel and ts), when the payload says.
  std::string channel = {};
  std::string message_ts = {};
};

/// Reads an interaction callback: application/x-www-form-urlencoded with one
/// field `payload` holding JSON of type "block_actions". The clicks on
/// "tocsin.ack" and "tocsin.resolve" buttons (usually one); none for other
/// interactions (other buttons, other types), which are answered 200 and
/// ignored. Errors ("invalid_payload"): not a form with a JSON payload, a
/// button whose value is not an event id, a response_url that is not
/// https or whose host is not one of `response_url_hosts` (lower case;
/// slack.response_url_hosts, Slack's is hooks.slack.com): tocsin posts to
/// it, and the signature only says that Slack's app secret signed the
/// body, not that the URL in it is Slack's.
result<std::vector<slack_click>>
parse_slack_interaction(std::string_view body,
                        const std::vector<std::string>& response_url_hosts);

/// X-PagerDuty-Signature holds one or more comma-separated "v1=" + hex
/// HMAC-SHA256(webhook secret, body) (several while a secret is rotated):
/// accepted when any matches, in constant time. Error: "invalid_signature".
status verify_pagerduty_request(std::string_view webhook_secret,
                                std::string_view signature,
                                std::string_view body);

/// An incident changed in PagerDuty, joined to the tocsin event whose
/// trigger opened it (the dedup_key tocsin sent is the incident's key).
struct pagerduty_change {
  std::string event_id;
  storage::event_state state = storage::event_state::acknowledged;
  std::string by; ///< the PagerDuty user (or integration) who did it
};

/// Reads a webhook v3 body ({"event": {"event_type", "agent", "data"}}):
/// incident.acknowledged and incident.resolved of incidents tocsin opened
/// (data.incident_key "tocsin-evt_..."); nothing for other event types or
/// other incidents (answered 200 and ignored, as PagerDuty expects). Error
/// ("invalid_payload"): not a JSON object with an "event" object.
result<std::vector<pagerduty_change>>
parse_pagerduty_webhook(std::string_view body);

} // namespace tocsin::api
