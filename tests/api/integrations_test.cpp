// The inbound integrations' checks: Slack's and PagerDuty's signatures
// (forged, stale, replayed with another body, rotated secrets) and the
// reading of their bodies into acknowledgements.
#include "api/integrations.hpp"

#include "common/encoding.hpp"

#include "tests/support/form_encoding.hpp"

#include <boost/test/unit_test.hpp>

#include <nlohmann/json.hpp>

using namespace tocsin;
using namespace tocsin::api;
using nlohmann::json;
using tocsin::test::form_encode;

namespace {

constexpr const char* slack_secret = "8f742231b10e8888abcd99yyyzzz85a5";
constexpr unix_ms now = 1'764'201'600'000; // 2025-11-27T00:00:00Z
constexpr const char* event_id = "evt_01JD0000000000000000000001";
/// slack.response_url_hosts' default.
const std::vector<std::string> slack_hosts{"hooks.slack.com"};

std::string slack_signature(std::string_view ts, std::string_view body,
                            std::string_view secret = slack_secret) {
  return "v0=" + hex_encode(hmac_sha256(secret, "v0:" + std::string{ts} + ":" +
                                                    std::string{body}));
}

json click_payload(std::string value = event_id,
                   std::string action = "tocsin.ack") {
  return {{"type", "block_actions"},
          {"user", {{"id", "U123"}, {"username", "alice"}, {"name", "alice"}}},
          {"actions",
           {{{"action_id", action}, {"value", value}, {"block_id", "b1"}}}},
          {"response_url", "https://hooks.slack.com/actions/T1/2/abc"},
          {"container", {{"message_ts", "1.2"}, {"channel_id", "C1"}}}};
}

std::string slack_body(const json& payload) {
  return "payload=" + form_encode(payload.dump());
}

} // namespace

BOOST_AUTO_TEST_SUITE(integrations)

BOOST_AUTO_TEST_CASE(a_slack_request_with_its_signature_is_accepted) {
  auto body = slack_body(click_payload());
  auto ts = std::to_string(now / 1000);
  BOOST_TEST(verify_slack_request(slack_secret, ts, slack_signature(ts, body),
                                  body, now)
                 .ok());
  // Up to 300 s either way.
  BOOST_TEST(verify_slack_request(slack_secret, ts, slack_signature(ts, body),
                                  body, now + 300'000)
                 .ok());
}

BOOST_AUTO_TEST_CASE(forged_stale_and_replayed_slack_requests_are_refused) {
  auto body = slack_body(click_payload());
  auto ts = std::to_string(now / 1000);
  auto code = [&](std::string_view t, std::string_view sig,
                  std::string_view b) {
    auto st = verify_slack_request(slack_secret, t, sig, b, now);
    return st ? std::string{"ok"} : st.error().code;
  };
  // Forged: another secret, no signature, another scheme, a cut one.
  BOOST_TEST(code(ts, slack_signature(ts, body, "another-secret"), body) ==
             "invalid_signature");
  BOOST_TEST(code(ts, "", body) == "invalid_signature");
  auto good = slack_signature(ts, body);
  BOOST_TEST(code(ts, "v1=" + good.substr(3), body) == "invalid_signature");
  BOOST_TEST(code(ts, good.substr(0, good.size() - 1), body) ==
             "invalid_signature");
  // Replayed with another body, or another timestamp.
  auto other = slack_body(click_payload("evt_01JD0000000000000000000002"));
  BOOST_TEST(code(ts, good, other) == "invalid_signature");
  auto later = std::to_string(now / 1000 + 1);
  BOOST_TEST(code(later, good, body) == "invalid_signature");
  // Stale: correctly signed, but more than 300 s away.
  for (auto t : {now / 1000 - 301, now / 1000 + 301, std::int64_t{0}}) {
    auto old = std::to_string(t);
    BOOST_TEST(code(old, slack_signature(old, body), body) == "stale_request");
  }
  // A timestamp that is no number, even signed.
  for (std::string bad : {"", "abc", "-5", "1e9", "99999999999999999999"})
    BOOST_TEST(code(bad, slack_signature(bad, body), body) ==
               "invalid_signature");
}

BOOST_AUTO_TEST_CASE(a_click_on_acknowledge_is_read) {
  auto clicks =
      parse_slack_interaction(slack_body(click_payload()), slack_hosts);
  BOOST_REQUIRE(clicks.ok());
  BOOST_REQUIRE_EQUAL(clicks->size(), 1u);
  BOOST_TEST(clicks->at(0).event_id == event_id);
  BOOST_TEST(clicks->at(0).user == "alice (U123)");
  BOOST_TEST(clicks->at(0).response_url ==
             "https://hooks.slack.com/actions/T1/2/abc");
  // Other buttons and other interaction types: nothing to do.
  auto other = parse_slack_interaction(
      slack_body(click_payload(event_id, "tocsin.investigate")), slack_hosts);
  BOOST_REQUIRE(other.ok());
  BOOST_TEST(other->empty());
  auto p = click_payload();
  p["type"] = "view_submission";
  BOOST_TEST(parse_slack_interaction(slack_body(p), slack_hosts)->empty());
  // A user with control characters in the name is cleaned.
  p = click_payload();
  p["user"] = {{"username", "mal\nlory\x01"}};
  auto cleaned = parse_slack_interaction(slack_body(p), slack_hosts);
  BOOST_REQUIRE(cleaned.ok());
  BOOST_TEST(cleaned->at(0).user == "mal lory ");
  // So are bidirectional overrides, which would make it read otherwise.
  p["user"] = {{"username", "mallory\xe2\x80\xae\xe2\x81\xa6"
                            "ecila"}};
  cleaned = parse_slack_interaction(slack_body(p), slack_hosts);
  BOOST_REQUIRE(cleaned.ok());
  BOOST_TEST(cleaned->at(0).user == "mallory  ecila");
}

BOOST_AUTO_TEST_CASE(bad_interaction_bodies_are_refused) {
  auto refused = [](const std::string& body) {
    auto r = parse_slack_interaction(body, slack_hosts);
    return !r && r.error().code == "invalid_payload";
  };
  BOOST_TEST(refused(""));
  BOOST_TEST(refused("token=x"));
  BOOST_TEST(refused("payload="));
  BOOST_TEST(refused("payload=%7B"));
  BOOST_TEST(refused("payload=" + form_encode("[1,2]")));
  BOOST_TEST(refused(slack_body(click_payload("evt_bogus"))));
  BOOST_TEST(refused(slack_body(click_payload("../../etc"))));
  auto p = click_payload();
  p["response_url"] = "http://hooks.slack.com/actions/x";
  BOOST_TEST(refused(slack_body(p)));
  p["response_url"] = "not a url";
  BOOST_TEST(refused(slack_body(p)));
  p = click_payload();
  p["actions"] = "no";
  BOOST_TEST(refused(slack_body(p)));
  // A response_url on a host slack.response_url_hosts does not list
  // (tocsin would post there): refused, saying which key allows it.
  for (auto* url : {"https://evil.example/actions/T1/2/abc",
                    "https://hooks.slack.com.evil.example/x",
                    "https://127.0.0.1/x", "https://[::1]/x"}) {
    p = click_payload();
    p["response_url"] = url;
    auto r = parse_slack_interaction(slack_body(p), slack_hosts);
    BOOST_REQUIRE_MESSAGE(!r, url);
    BOOST_TEST(r.error().code == "invalid_payload");
    BOOST_TEST(r.error().message.find("slack.response_url_hosts") !=
                   std::string::npos,
               r.error().message);
  }
  // Listed hosts pass, the name's case aside.
  p = click_payload();
  p["response_url"] = "https://Hooks.Slack.COM/actions/x";
  BOOST_TEST(parse_slack_interaction(slack_body(p), slack_hosts).ok());
  p["response_url"] = "https://127.0.0.1:8443/x";
  BOOST_TEST(parse_slack_interaction(slack_body(p), {"127.0.0.1"}).ok());
  BOOST_TEST(!parse_slack_interaction(slack_body(p), {}).ok());
  // Duplicate keys are refused like everywhere else.
  BOOST_TEST(refused("payload=" +
                     form_encode(R"({"type":"block_actions","type":"x"})")));
}

BOOST_AUTO_TEST_CASE(pagerduty_signatures_are_checked_including_rotation) {
  std::string secret = "pd-webhook-secret-0123456789";
  std::string body = R"({"event":{"event_type":"incident.acknowledged"}})";
  auto sig = "v1=" + hex_encode(hmac_sha256(secret, body));
  auto old = "v1=" + hex_encode(hmac_sha256("the-old-secret-xyz", body));
  BOOST_TEST(verify_pagerduty_request(secret, sig, body).ok());
  BOOST_TEST(verify_pagerduty_request(secret, old + "," + sig, body).ok());
  BOOST_TEST(verify_pagerduty_request(secret, sig + ", " + old, body).ok());
  for (auto bad :
       {std::string{}, old, "v0=" + sig.substr(3), sig + "0", std::string{","}})
    BOOST_TEST(verify_pagerduty_request(secret, bad, body).error().code ==
               "invalid_signature");
  BOOST_TEST(!verify_pagerduty_request(secret, sig, body + " "));
}

BOOST_AUTO_TEST_CASE(pagerduty_webhooks_are_joined_by_the_dedup_key) {
  auto hook = [](std::string type, std::string key) {
    return json{
        {"event",
         {{"id", "01DEN"},
          {"event_type", type},
          {"resource_type", "incident"},
          {"occurred_at", "2026-11-27T05:10:00.123Z"},
          {"agent", {{"id", "PLH1"}, {"summary", "Bob Oncall"}}},
          {"data",
           {{"id", "Q1"}, {"type", "incident"}, {"incident_key", key}}}}}}
        .dump();
  };
  auto key = std::string{"tocsin-"} + event_id;
  auto ack = parse_pagerduty_webhook(hook("incident.acknowledged", key));
  BOOST_REQUIRE(ack.ok());
  BOOST_REQUIRE_EQUAL(ack->size(), 1u);
  BOOST_TEST(ack->at(0).event_id == event_id);
  BOOST_TEST((ack->at(0).state == storage::event_state::acknowledged));
  BOOST_TEST(ack->at(0).by == "Bob Oncall");
  auto res = parse_pagerduty_webhook(hook("incident.resolved", key));
  BOOST_TEST((res->at(0).state == storage::event_state::resolved));
  // Other types, other incidents: nothing to do.
  BOOST_TEST(parse_pagerduty_webhook(hook("incident.triggered", key))->empty());
  BOOST_TEST(parse_pagerduty_webhook(hook("incident.acknowledged", "other-1"))
                 ->empty());
  BOOST_TEST(
      parse_pagerduty_webhook(hook("incident.acknowledged", "tocsin-evt_x"))
          ->empty());
  BOOST_TEST(parse_pagerduty_webhook(R"({"event":{"event_type":5}})")->empty());
  // Not webhooks v3 at all.
  for (auto* bad : {"", "[]", "{}", R"({"event":1})", R"({"messages":[]})"})
    BOOST_TEST(parse_pagerduty_webhook(bad).error().code == "invalid_payload",
               bad);
}

BOOST_AUTO_TEST_SUITE_END()
