// The shipped PagerDuty transport, loaded from the build's plugin directory
// like any plugin: golden Events API v2 bodies for every event type and
// severity, the severity map, acknowledge, PagerDuty's limits, the options it
// accepts and its classification table.
//
// Golden files: tests/plugins/golden/pagerduty_<type>.json, compared as
// parsed JSON. TOCSIN_UPDATE_GOLDEN=1 rewrites them from what the plugin
// builds (review the diff).
#include "tests/support/plugin_calls.hpp"
#include "tests/transports/transport_test_support.hpp"

#include <map>
#include <string>
#include <vector>

#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

using namespace tocsin::plugins;
using namespace tocsin::test;
using json = nlohmann::json;

namespace {

const transport_plugin& pagerduty() {
  return shipped_plugin("pagerduty");
}

constexpr std::string_view routing_key = "R0ut1ngKeyR0ut1ngKeyR0ut1ngKey12";
static_assert(routing_key.size() == 32);

std::string options_with(const json& extra = json::object()) {
  json o = {{"routing_key", routing_key}};
  o.update(extra);
  return o.dump();
}

using event = sample_event;

/// One event of each type, with its default severity.
std::vector<event> one_of_each_type() {
  return {
      {.id = "evt_01JD5Z8W2Q3N4M5P6R7S8T9V0W",
       .type = "policy.denied",
       .severity = "high",
       .agent_id = "agent-7",
       .summary = "agent-7 tried to drop the production database",
       .details = {{"action", "db.drop"},
                   {"rule", "no-destructive-prod"},
                   {"receipt_id", "rcpt_123"}},
       .audit_url = "https://audit.example/receipts/rcpt_123"},
      {.id = "evt_01JD5Z8W2Q3N4M5P6R7S8T9V0X",
       .type = "approval.required",
       .severity = "medium",
       .agent_id = "agent-3",
       .summary = "Transfer of 2,500 EUR needs a human approval",
       .details = {{"action", "payments.transfer"},
                   {"rule", "human-approval-over-1000"},
                   {"amount", 2500}}},
      {.id = "evt_01JD5Z8W2Q3N4M5P6R7S8T9V0Y",
       .type = "content.detected",
       .severity = "high",
       .agent_id = "agent-9",
       .summary = "Output contained what looks like a social security number",
       .details = {{"rule", "pii.ssn"},
                   {"receipt_id", "rcpt_9"},
                   {"matches", 2},
                   {"redacted", true}},
       .audit_url = "https://audit.example/receipts/rcpt_9"},
      {.id = "evt_01JD5Z8W2Q3N4M5P6R7S8T9V0Z",
       .type = "anomaly.detected",
       .severity = "medium",
       .agent_id = "agent-1",
       .summary = "Tool calls per minute 17x above baseline",
       .details = {{"metric", "tool_calls_per_minute"},
                   {"value", 340},
                   {"baseline", 20},
                   {"tools", {"shell", "http"}}}},
      {.id = "evt_01JD5Z8W2Q3N4M5P6R7S8T9V10",
       .type = "system.health",
       .severity = "info",
       .summary = "Policy engine reachable again after 42 s",
       .details = {{"component", "policy-engine"}, {"downtime_seconds", 42}}},
  };
}

json build(event e, const std::string& options = options_with()) {
  auto v = e.view();
  auto r = build_with(pagerduty(), v,
                      {"ep_pd",
                       "https://events.pagerduty.com/v2/"
                       "enqueue",
                       options});
  BOOST_TEST_REQUIRE(r.ok(), (r.ok() ? "" : r.error().message));
  check_post(*r, "application/json");
  auto j = json::parse(r->body, nullptr, false);
  BOOST_TEST_REQUIRE(j.is_object(), r->body);
  return j;
}

std::filesystem::path golden_path(const std::string& type) {
  return tocsin::test::golden_path("pagerduty", type);
}

/// The golden body for `type`, compared without regard to field order.
json golden(const std::string& type) {
  return read_golden<json>(golden_path(type));
}

const std::map<std::string, std::string> default_map{{"critical", "critical"},
                                                     {"high", "error"},
                                                     {"medium", "warning"},
                                                     {"low", "info"},
                                                     {"info", "info"}};

} // namespace

BOOST_AUTO_TEST_SUITE(pagerduty_transport)

BOOST_AUTO_TEST_CASE(table) {
  auto& p = pagerduty();
  BOOST_TEST(p.name() == "pagerduty");
  BOOST_TEST(p.version() == "1.0.0");
  BOOST_TEST(!p.signs_requests());
  BOOST_TEST(p.default_rate_per_second() == 2.0);
  BOOST_TEST(p.default_burst() == 10u);
}

BOOST_AUTO_TEST_CASE(golden_bodies_for_each_type) {
  for (auto& e : one_of_each_type()) {
    BOOST_TEST_CONTEXT(e.type) {
      auto v = e.view();
      auto r = build_with(
          pagerduty(), v,
          {"ep_pd", "https://events.pagerduty.com/v2/enqueue", options_with()});
      BOOST_TEST_REQUIRE(r.ok());
      check_golden<json>(golden_path(e.type), r->body);
    }
  }
}

BOOST_AUTO_TEST_CASE(golden_files_say_what_the_spec_says) {
  // Independent of the plugin: the goldens hold the shape of the spec.
  for (auto& e : one_of_each_type()) {
    BOOST_TEST_CONTEXT(e.type) {
      auto g = golden(e.type);
      BOOST_TEST(g["routing_key"] == std::string{routing_key});
      BOOST_TEST(g["event_action"] == "trigger");
      BOOST_TEST(g["dedup_key"] == "tocsin-" + e.id);
      BOOST_TEST(g["client"] == "tocsin");
      auto& p = g["payload"];
      BOOST_TEST(p["summary"] == e.summary);
      BOOST_TEST(p["source"] ==
                 (e.agent_id.empty() ? std::string{"tocsin"} : e.agent_id));
      BOOST_TEST(p["severity"] == default_map.at(e.severity));
      BOOST_TEST(p["timestamp"] == e.timestamp);
      BOOST_TEST(p["component"] == e.type.substr(0, e.type.find('.')));
      BOOST_TEST(p["group"] == "tocsin");
      BOOST_TEST(p["class"] == e.type);
      auto details = json::parse(e.details.dump());
      if (!e.agent_id.empty())
        details["agent_id"] = e.agent_id;
      details["event_id"] = e.id;
      BOOST_TEST(p["custom_details"] == details);
      if (e.audit_url.empty())
        BOOST_TEST(!g.contains("links"));
      else
        BOOST_TEST(g["links"] == json::parse(R"([{"href":")" + e.audit_url +
                                             R"(","text":"Audit record"}])"));
    }
  }
}

BOOST_AUTO_TEST_CASE(a_trigger_links_to_the_event_on_the_dashboard) {
  auto e = one_of_each_type().front();
  e.event_url = "https://tocsin.example/#event=" + e.id;
  auto g = build(e);
  auto links = g["links"];
  BOOST_TEST_REQUIRE(links.is_array());
  BOOST_TEST(links.back() == json::parse(R"({"href":")" + e.event_url +
                                         R"(","text":"Event in tocsin"})"));
  BOOST_TEST(g["client_url"] == e.event_url);
  // Without a public URL: no such link.
  e.event_url.clear();
  auto plain = build(e);
  BOOST_TEST(!plain.contains("client_url"));
}

BOOST_AUTO_TEST_CASE(every_type_at_every_severity) {
  for (auto& base : one_of_each_type())
    for (auto& [severity, pd] : default_map) {
      BOOST_TEST_CONTEXT(base.type << " at " << severity) {
        auto e = base;
        e.severity = severity;
        auto expected = golden(e.type);
        expected["payload"]["severity"] = pd;
        BOOST_TEST(build(e) == expected);
      }
    }
}

BOOST_AUTO_TEST_CASE(exact_body_of_a_policy_denial) {
  auto e = one_of_each_type().front();
  BOOST_TEST(build(e) == json::parse(R"({
    "routing_key": "R0ut1ngKeyR0ut1ngKeyR0ut1ngKey12",
    "event_action": "trigger",
    "dedup_key": "tocsin-evt_01JD5Z8W2Q3N4M5P6R7S8T9V0W",
    "payload": {
      "summary": "agent-7 tried to drop the production database",
      "source": "agent-7",
      "severity": "error",
      "timestamp": "2026-11-27T05:10:00.123Z",
      "component": "policy",
      "group": "tocsin",
      "class": "policy.denied",
      "custom_details": {
        "action": "db.drop",
        "rule": "no-destructive-prod",
        "receipt_id": "rcpt_123",
        "agent_id": "agent-7",
        "event_id": "evt_01JD5Z8W2Q3N4M5P6R7S8T9V0W"
      }
    },
    "links": [{"href": "https://audit.example/receipts/rcpt_123",
               "text": "Audit record"}],
    "client": "tocsin"
  })"));
}

BOOST_AUTO_TEST_CASE(system_health_without_agent_or_summary) {
  event e{.id = "evt_01JD5Z8W2Q3N4M5P6R7S8T9V0W",
          .type = "system.health",
          .severity = "info"};
  auto j = build(e);
  BOOST_TEST(j["payload"]["summary"] == "system.health");
  BOOST_TEST(j["payload"]["source"] == "tocsin");
  BOOST_TEST(j["payload"]["component"] == "system");
  BOOST_TEST(!j["payload"]["custom_details"].contains("agent_id"));
  BOOST_TEST(j["payload"]["custom_details"]["event_id"] == e.id);
}

BOOST_AUTO_TEST_CASE(truncated_payload_is_marked) {
  auto e = one_of_each_type()[3];
  e.truncated = true;
  auto j = build(e);
  BOOST_TEST(j["payload"]["custom_details"]["truncated"] == true);
  e.truncated = false;
  BOOST_TEST(!build(e)["payload"]["custom_details"].contains("truncated"));
}

BOOST_AUTO_TEST_CASE(severity_map_default_and_overridden) {
  auto base = one_of_each_type().front();
  std::map<std::string, std::string> overridden = default_map;
  overridden["high"] = "critical";
  overridden["info"] = "warning";
  overridden["critical"] = "error";
  auto options = options_with(
      {{"severity_map",
        {{"high", "critical"}, {"info", "warning"}, {"critical", "error"}}}});
  for (auto& [severity, pd] : default_map) {
    BOOST_TEST_CONTEXT(severity) {
      auto e = base;
      e.severity = severity;
      BOOST_TEST(build(e)["payload"]["severity"] == pd);
      BOOST_TEST(build(e, options)["payload"]["severity"] ==
                 overridden.at(severity));
    }
  }
}

BOOST_AUTO_TEST_CASE(component_and_group_options) {
  auto e = one_of_each_type().front();
  auto j = build(
      e, options_with({{"component", "payments-agent"}, {"group", "prod-eu"}}));
  BOOST_TEST(j["payload"]["component"] == "payments-agent");
  BOOST_TEST(j["payload"]["group"] == "prod-eu");
}

BOOST_AUTO_TEST_CASE(acknowledge_and_resolve_send_only_the_keys) {
  for (auto e : one_of_each_type()) {
    BOOST_TEST_CONTEXT(e.type) {
      auto trigger = build(e);
      e.state = event_state::acknowledged;
      e.state_by = "U024BE7LH";
      auto ack = build(e);
      BOOST_TEST(ack == json({{"routing_key", routing_key},
                              {"event_action", "acknowledge"},
                              {"dedup_key", "tocsin-" + e.id}}));
      BOOST_TEST(ack["dedup_key"] == trigger["dedup_key"]);
      e.state = event_state::resolved;
      auto resolve = build(e);
      BOOST_TEST(resolve == json({{"routing_key", routing_key},
                                  {"event_action", "resolve"},
                                  {"dedup_key", "tocsin-" + e.id}}));
    }
  }
}

BOOST_AUTO_TEST_CASE(limits) {
  auto e = one_of_each_type().front();
  // 5,000 characters of 1-, 2-, 3- and 4-byte sequences.
  std::string summary;
  const char* pieces[] = {"a", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x9a\xa8"};
  for (int i = 0; i < 5000; ++i)
    summary += pieces[i % 4];
  BOOST_TEST_REQUIRE(code_points(summary) == 5000u);
  e.summary = summary;
  e.id = "evt_" + std::string(400, 'x');
  auto j = build(e);
  auto s = j["payload"]["summary"].get<std::string>();
  BOOST_TEST(valid_utf8(s));
  BOOST_TEST(code_points(s) <= 1024u);
  BOOST_TEST(code_points(s) >= 1000u);
  BOOST_TEST(summary.starts_with(s.substr(0, s.size() - 3)));
  auto dedup = j["dedup_key"].get<std::string>();
  BOOST_TEST(dedup.size() <= 255u);
  BOOST_TEST(dedup.starts_with("tocsin-evt_"));

  // Every cut point lands on a UTF-8 boundary.
  for (int shift = 0; shift < 4; ++shift) {
    BOOST_TEST_CONTEXT("shift " << shift) {
      auto f = one_of_each_type().front();
      const std::size_t offsets[] = {0, 1, 3, 6}; // after a, é, €
      f.summary = summary.substr(offsets[shift]);
      BOOST_TEST_REQUIRE(valid_utf8(f.summary));
      auto cut = build(f)["payload"]["summary"].get<std::string>();
      BOOST_TEST(valid_utf8(cut));
      BOOST_TEST(code_points(cut) == 1024u);
    }
  }

  // Exactly 1024 characters: kept as is.
  e.summary.clear();
  for (int i = 0; i < 1024; ++i)
    e.summary += pieces[i % 4];
  BOOST_TEST(build(e)["payload"]["summary"] == e.summary);
}

BOOST_AUTO_TEST_CASE(options_valid) {
  auto& p = pagerduty();
  BOOST_TEST(p.validate_options(options_with()).ok());
  BOOST_TEST(p.validate_options(options_with({{"severity_map",
                                               {{"critical", "critical"},
                                                {"high", "critical"},
                                                {"medium", "error"},
                                                {"low", "warning"},
                                                {"info", "info"}}},
                                              {"component", "agents"},
                                              {"group", "prod"}}))
                 .ok());
  BOOST_TEST(
      p.validate_options(options_with({{"severity_map", json::object()}}))
          .ok());
  BOOST_TEST(
      p.validate_options(options_with({{"component", std::string(255, 'c')}}))
          .ok());
}

BOOST_AUTO_TEST_CASE(options_refused) {
  auto& p = pagerduty();
  struct row {
    std::string options;
    std::string message_has;
  };
  std::vector<row> rows{
      {"{}", "routing_key is required"},
      {R"({"routing_key": null})", "routing_key must be a string"},
      {R"({"routing_key": 12})", "routing_key must be a string"},
      {json{{"routing_key", std::string(31, 'a')}}.dump(),
       "routing_key must be exactly 32 characters"},
      {json{{"routing_key", std::string(33, 'a')}}.dump(),
       "routing_key must be exactly 32 characters"},
      {json{{"routing_key", std::string(31, 'a') + "-"}}.dump(),
       "routing_key must be exactly 32 characters of A-Z, a-z, 0-9"},
      {options_with({{"severity_map", {{"high", "urgent"}}}}),
       "severity_map.high must be one of critical, error, warning, info"},
      {options_with({{"severity_map", {{"high", 3}}}}),
       "severity_map.high must be one of"},
      {options_with({{"severity_map", {{"severe", "critical"}}}}),
       "severity_map: unknown severity 'severe'"},
      {options_with({{"severity_map", "high=critical"}}),
       "severity_map must be an object"},
      {options_with({{"component", ""}}),
       "component must be a string of 1 to 255 characters"},
      {options_with({{"component", std::string(256, 'c')}}),
       "component must be a string of 1 to 255 characters"},
      {options_with({{"group", 7}}),
       "group must be a string of 1 to 255 characters"},
      {options_with({{"routing-key", "x"}}), "unknown option 'routing-key'"},
      {options_with({{"urgency", "high"}}), "unknown option 'urgency'"},
      {"[]", "options must be a JSON object"},
      {R"("R0ut1ngKeyR0ut1ngKeyR0ut1ngKey12")",
       "options must be a JSON object"},
      {"{not json", "options must be a JSON object"},
  };
  for (auto& [options, message_has] : rows) {
    BOOST_TEST_CONTEXT(options) {
      auto st = p.validate_options(options);
      BOOST_TEST_REQUIRE(!st.ok());
      BOOST_TEST(st.error().code == "invalid_options");
      BOOST_TEST(st.error().message.find(message_has) != std::string::npos,
                 st.error().message);
      // The integration key is a credential: never echoed.
      BOOST_TEST(st.error().message.find(std::string(31, 'a')) ==
                 std::string::npos);
    }
  }
}

BOOST_AUTO_TEST_CASE(build_refuses_bad_options) {
  auto e = one_of_each_type().front();
  auto v = e.view();
  auto r = build_with(pagerduty(), v, {"ep_pd", "https://x.example/", "{}"});
  BOOST_TEST_REQUIRE(!r.ok());
  BOOST_TEST(r.error().message.find("routing_key is required") !=
             std::string::npos);
}

BOOST_AUTO_TEST_CASE(classification_table) {
  const std::string invalid_event =
      R"({"status":"invalid event","message":"Event object is invalid",)"
      R"("errors":["Length of 'routing_key' is incorrect"]})";
  struct row {
    int status;
    std::string body;
    outcome expected;
    std::string reason; // exact; "*" followed by text: contains
  };
  for (auto& [status, body, expected, reason] : std::vector<row>{
           {202,
            R"({"status":"success","message":"Event processed",)"
            R"("dedup_key":"tocsin-evt_1"})",
            outcome::success, ""},
           {200, "", outcome::success, ""},
           {204, "", outcome::success, ""},
           {400, invalid_event, outcome::permanent,
            "invalid event: Length of 'routing_key' is incorrect"},
           {400,
            R"({"status":"invalid event","message":"Event object is invalid",)"
            R"("errors":["'payload.summary' is missing","'payload.source' is )"
            R"(missing"]})",
            outcome::permanent,
            "invalid event: 'payload.summary' is missing; 'payload.source' is "
            "missing"},
           {400, R"({"status":"invalid event","message":"Event is bad"})",
            outcome::permanent, "invalid event: Event is bad"},
           {400, "<html>\r\n<h1>Bad Request</h1>\r\n</html>\n",
            outcome::permanent,
            "bad request (HTTP 400): <html>  <h1>Bad Request</h1>  </html>"},
           {400, "", outcome::permanent, "bad request (HTTP 400)"},
           {401, "", outcome::permanent, "refused (HTTP 401)"},
           {403, "", outcome::permanent, "refused (HTTP 403)"},
           {404, "", outcome::permanent, "*not found (HTTP 404)"},
           {408, "", outcome::retry, "request timeout (HTTP 408)"},
           {413, "", outcome::permanent, "refused (HTTP 413)"},
           {429, R"({"status":"throttle event"})", outcome::retry,
            "rate limited"},
           {500, "", outcome::retry, "PagerDuty server error (HTTP 500)"},
           {502, "", outcome::retry, "PagerDuty server error (HTTP 502)"},
           {503, "", outcome::retry, "PagerDuty server error (HTTP 503)"},
           {302, "", outcome::permanent, "unexpected status (HTTP 302)"},
       }) {
    BOOST_TEST_CONTEXT("status " << status << " body " << body) {
      auto c = classify_with(pagerduty(), status, body, "", options_with());
      BOOST_TEST((c.what == expected), to_string(c.what));
      if (!reason.empty() && reason[0] == '*')
        BOOST_TEST(c.reason.find(reason.substr(1)) != std::string::npos,
                   c.reason);
      else
        BOOST_TEST(c.reason == reason);
    }
  }
}

BOOST_AUTO_TEST_CASE(long_error_bodies_make_one_short_line) {
  json many = {{"status", "invalid event"}, {"errors", json::array()}};
  for (int i = 0; i < 40; ++i)
    many["errors"].push_back("error number " + std::to_string(i) +
                             "\nwith a newline \xe2\x82\xac");
  auto body = many.dump();
  body = body.substr(0, 1024); // the host passes the first 1 KiB
  for (auto b : {many.dump(), body, std::string(5000, 'x')}) {
    auto c =
        classify_with(pagerduty(), 400, b.substr(0, 1024), "", options_with());
    BOOST_TEST((c.what == outcome::permanent));
    BOOST_TEST(c.reason.size() <= 300u);
    BOOST_TEST(c.reason.find('\n') == std::string::npos);
    BOOST_TEST(valid_utf8(c.reason), c.reason);
  }
  auto full = classify_with(pagerduty(), 400, many.dump(), "", options_with());
  BOOST_TEST(full.reason.starts_with("invalid event: error number 0 with a"));
}

BOOST_AUTO_TEST_SUITE_END()
