// What the end-to-end tests of answers share (respond, episode, slack_app):
// playing Slack (signed button clicks) and PagerDuty (signed webhooks v3),
// the receivers' usual answers, and looking at what the daemon did (waiting
// on conditions, never on time, except for a short settle that shows that
// nothing more arrives).
#pragma once

#include "tests/e2e/fixture.hpp"

#include "common/encoding.hpp"

#include "tests/support/form_encoding.hpp"

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <string>
#include <thread>
#include <vector>

namespace tocsin::test {

inline constexpr auto wait_time = eventually_time;
/// Long enough for a request the daemon should not send to show up.
inline constexpr auto settle_time = std::chrono::milliseconds{300};

inline const nlohmann::json fast_schedule = {0.05, 0.05, 0.05, 0.05};

inline constexpr const char* slack_secret = "tocsin-e2e-slack-signing-secret";
inline constexpr const char* pagerduty_secret =
    "tocsin-e2e-pagerduty-webhook-sec";
inline constexpr const char* routing_key = "R0ut1ngKeyR0ut1ngKeyR0ut1ngKey32";

/// [slack] with the signing secret; the test receivers (on 127.0.0.1)
/// stand in for hooks.slack.com as the clicks' response_url host.
inline std::string slack_config() {
  return std::string{"[slack]\nsigning_secret = \""} + slack_secret +
         "\"\nresponse_url_hosts = [\"127.0.0.1\"]\n";
}

inline std::string pagerduty_config() {
  return std::string{"[pagerduty]\nwebhook_secret = \""} + pagerduty_secret +
         "\"\n";
}

// ---- Receivers -------------------------------------------------------------

/// What a Slack incoming webhook answers.
inline canned_response slack_ok() {
  return answer(200, "ok");
}

inline canned_response pagerduty_accepted() {
  return answer(202, R"({"status":"success","message":"Event processed",)"
                     R"("dedup_key":"x"})");
}

/// What a Slack response_url answers.
inline canned_response response_url_ok() {
  return answer(200, R"({"ok":true})");
}

/// POST /v1/endpoints bodies: a Slack incoming webhook and a PagerDuty
/// service on the receiver `r`.
inline nlohmann::json slack_endpoint(const https_receiver& r) {
  return {{"url", daemon_fixture::url_of(r)},
          {"transport", "slack"},
          {"retry_schedule", fast_schedule}};
}

inline nlohmann::json pagerduty_endpoint(const https_receiver& r) {
  return {{"url", daemon_fixture::url_of(r)},
          {"transport", "pagerduty"},
          {"options", {{"routing_key", routing_key}}},
          {"retry_schedule", fast_schedule}};
}

/// A response_url on the receiver `r`, as Slack gives one in a click.
inline std::string
response_url_of(const https_receiver& r,
                const std::string& path = "/actions/T1/2/abc") {
  return "https://127.0.0.1:" + std::to_string(r.port()) + path;
}

// ---- Slack -----------------------------------------------------------------

inline std::string slack_signature(const std::string& secret,
                                   const std::string& ts,
                                   const std::string& body) {
  return "v0=" + tocsin::hex_encode(
                     tocsin::hmac_sha256(secret, "v0:" + ts + ":" + body));
}

/// Which button of which message a click is on, and who clicks.
struct click_spec {
  std::string action_id = "tocsin.ack"; ///< or "tocsin.resolve"
  std::string username = "alice";
  std::string user_id = "U123";
  /// The message clicked: where Slack shows it (container.channel_id,
  /// channel.id) and its ts (container.message_ts, message.ts).
  std::string channel_id = "C1";
  std::string message_ts = "1.2";
};

/// A click on a button (by default "Acknowledge") of the message of
/// `event_id`, as Slack posts it: block_actions with the message's
/// container, channel and message, and the response_url of that message.
inline std::string click_body(const std::string& event_id,
                              const std::string& response_url,
                              const click_spec& c = {}) {
  using nlohmann::json;
  json payload{
      {"type", "block_actions"},
      {"user",
       {{"id", c.user_id}, {"username", c.username}, {"name", c.username}}},
      {"api_app_id", "A0TOCSIN01"},
      {"team", {{"id", "T1"}, {"domain", "example"}}},
      {"actions",
       {{{"action_id", c.action_id},
         {"block_id", "b1"},
         {"type", "button"},
         {"value", event_id},
         {"action_ts", "1764201600.000100"}}}},
      {"response_url", response_url},
      {"container",
       {{"type", "message"},
        {"message_ts", c.message_ts},
        {"channel_id", c.channel_id},
        {"is_ephemeral", false}}},
      {"channel", {{"id", c.channel_id}, {"name", "ai-safety"}}},
      {"message",
       {{"type", "message"}, {"ts", c.message_ts}, {"text", "tocsin alert"}}}};
  return "payload=" + form_encode(payload.dump());
}

/// The former signature: an "Acknowledge" click by `username`.
inline std::string click_body(const std::string& event_id,
                              const std::string& response_url,
                              const std::string& username,
                              const std::string& user_id = "U123") {
  click_spec c;
  c.username = username;
  c.user_id = user_id;
  return click_body(event_id, response_url, c);
}

inline std::string unix_seconds(std::int64_t offset = 0) {
  return std::to_string(static_cast<std::int64_t>(std::time(nullptr)) + offset);
}

inline http_result post_slack(daemon_fixture& f, const std::string& body,
                              const std::string& ts,
                              const std::string& signature) {
  return f.client().request(
      "POST", "/v1/integrations/slack/interactions", body,
      {{"content-type", "application/x-www-form-urlencoded"},
       {"x-slack-request-timestamp", ts},
       {"x-slack-signature", signature}});
}

/// A click signed now with the right secret.
inline http_result click(daemon_fixture& f, const std::string& body) {
  auto ts = unix_seconds();
  return post_slack(f, body, ts, slack_signature(slack_secret, ts, body));
}

// ---- PagerDuty -------------------------------------------------------------

inline std::string pagerduty_signature(const std::string& secret,
                                       const std::string& body) {
  return "v1=" + tocsin::hex_encode(tocsin::hmac_sha256(secret, body));
}

/// A webhook v3 body: incident `incident_key` changed (event_type
/// "incident.acknowledged" or "incident.resolved") by `agent`.
inline std::string pagerduty_body(const std::string& event_type,
                                  const std::string& incident_key,
                                  const std::string& agent = "Bob Oncall") {
  using nlohmann::json;
  return json{
      {"event",
       {{"id", "5ac64822-4adc-4fda-ade0-410becf0de4f"},
        {"event_type", event_type},
        {"resource_type", "incident"},
        {"occurred_at", "2025-11-27T00:00:05.000Z"},
        {"agent",
         {{"html_url", "https://acme.pagerduty.com/users/PLH1HKV"},
          {"id", "PLH1HKV"},
          {"self", "https://api.pagerduty.com/users/PLH1HKV"},
          {"summary", agent},
          {"type", "user_reference"}}},
        {"client", nullptr},
        {"data",
         {{"id", "PGR0VU2"},
          {"type", "incident"},
          {"incident_key", incident_key},
          {"status",
           event_type == "incident.resolved" ? "resolved" : "acknowledged"},
          {"title", "policy.denied"}}}}}}
      .dump();
}

inline http_result post_pagerduty(daemon_fixture& f, const std::string& body,
                                  const std::string& signature) {
  return f.client().request("POST", "/v1/integrations/pagerduty/webhook", body,
                            {{"content-type", "application/json"},
                             {"x-pagerduty-signature", signature}});
}

// ---- Looking at what happened ----------------------------------------------

/// Polls GET /v1/events/{id} until its state is `state`; the event.
inline nlohmann::json wait_state(daemon_fixture& f, const std::string& id,
                                 const std::string& state) {
  nlohmann::json ev;
  bool reached = eventually([&] {
    ev = f.event(id);
    return ev["state"] == state;
  });
  BOOST_TEST(reached,
             "event " << id << " never " << state << ": " << ev.dump());
  return ev;
}

/// Polls until the event has at least `n` deliveries and none is pending;
/// the event.
inline nlohmann::json wait_deliveries(daemon_fixture& f, const std::string& id,
                                      std::size_t n) {
  nlohmann::json ev;
  bool done = eventually([&] {
    ev = f.event(id);
    if (ev["deliveries"].size() < n)
      return false;
    for (auto& d : ev["deliveries"])
      if (d["state"] == "pending")
        return false;
    return true;
  });
  BOOST_TEST(done, "deliveries of " << id << " not finished: " << ev.dump());
  return ev;
}

/// The deliveries of `ev` to `endpoint_id` that are notices of `notice`
/// ("" for the event's own delivery).
inline std::vector<nlohmann::json>
deliveries_to(const nlohmann::json& ev, const std::string& endpoint_id,
              const std::string& notice = "") {
  std::vector<nlohmann::json> out;
  for (auto& d : ev["deliveries"])
    if (d["endpoint_id"] == endpoint_id && d.value("notice", "") == notice)
      out.push_back(d);
  return out;
}

inline std::size_t notice_count(const nlohmann::json& ev) {
  std::size_t n = 0;
  for (auto& d : ev["deliveries"])
    n += d.contains("notice") ? 1u : 0u;
  return n;
}

inline nlohmann::json body_of(const received_request& req) {
  auto j = nlohmann::json::parse(req.body, nullptr, false);
  BOOST_REQUIRE_MESSAGE(j.is_object(), "not a JSON object: " << req.body);
  return j;
}

/// The receiver's requests' bodies, as JSON.
inline std::vector<nlohmann::json> bodies_of(const https_receiver& r) {
  std::vector<nlohmann::json> out;
  for (auto& req : r.requests())
    out.push_back(body_of(req));
  return out;
}

/// The buttons of a Block Kit message's actions blocks.
inline std::vector<nlohmann::json> buttons_of(const nlohmann::json& msg) {
  std::vector<nlohmann::json> out;
  if (!msg.contains("blocks") || !msg["blocks"].is_array())
    return out;
  for (auto& block : msg["blocks"])
    if (block.contains("elements") && block["elements"].is_array())
      for (auto& element : block["elements"])
        if (element.is_object() && element.value("type", "") == "button")
          out.push_back(element);
  return out;
}

/// The message's button with `action_id`, or null.
inline nlohmann::json button(const nlohmann::json& msg,
                             const std::string& action_id) {
  for (auto& b : buttons_of(msg))
    if (b.value("action_id", "") == action_id)
      return b;
  return nullptr;
}

/// Whether a Block Kit message has a button with action_id "tocsin.ack".
inline bool has_ack_button(const nlohmann::json& msg) {
  return !button(msg, "tocsin.ack").is_null();
}

/// The text of the message's context blocks.
inline std::string context_text(const nlohmann::json& msg) {
  std::string out;
  if (!msg.contains("blocks") || !msg["blocks"].is_array())
    return out;
  for (auto& block : msg["blocks"])
    if (block.value("type", "") == "context")
      for (auto& element : block["elements"])
        if (element.is_object() && element.contains("text") &&
            element["text"].is_string())
          out += element["text"].get<std::string>() + "\n";
  return out;
}

/// Nothing more reaches the receivers: each has `counts` requests after a
/// pause.
inline void expect_quiet(const std::vector<const https_receiver*>& receivers,
                         const std::vector<std::size_t>& counts,
                         const std::string& after) {
  std::this_thread::sleep_for(settle_time);
  for (std::size_t i = 0; i < receivers.size(); ++i)
    BOOST_TEST(receivers[i]->count() == counts[i],
               "after " << after << ": receiver " << i << " has "
                        << receivers[i]->count() << " requests, expected "
                        << counts[i]);
}

inline std::string error_code(const http_result& r) {
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  if (j.is_object() && j.contains("error") && j["error"].is_object())
    return j["error"].value("code", "");
  return "<no error in: " + r.body + r.error + ">";
}

/// The API's answer to an ack or resolve, as JSON.
inline nlohmann::json answer_of(const http_result& r) {
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  BOOST_REQUIRE_MESSAGE(j.is_object(), r.status << " " << r.body << r.error);
  return j;
}

} // namespace tocsin::test
