// The shipped Slack transport, loaded from the build's plugin directory like
// any plugin: its Block Kit message per event type (golden files
// golden/slack_<type>.json with the type's dots as underscores;
// TOCSIN_UPDATE_GOLDEN=1 rewrites them), Slack's limits, its options and its
// classification table.
#include "tests/support/plugin_calls.hpp"
#include "tests/transports/transport_test_support.hpp"

#include <boost/test/unit_test.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <string>
#include <vector>

using namespace tocsin::plugins;
using namespace tocsin::test;
using json = nlohmann::ordered_json;

namespace {

const transport_plugin& slack() {
  return shipped_plugin("slack");
}

/// A JSON string's value; anything else dumped (so a comparison fails).
std::string str(const json& j) {
  return j.is_string() ? j.get<std::string>() : j.dump();
}

const std::string ellipsis = "\xe2\x80\xa6";

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.substr(s.size() - suffix.size()) == suffix;
}

const std::array<std::string_view, 5> all_types{
    "policy.denied", "approval.required", "content.detected",
    "anomaly.detected", "system.health"};

/// One sample event of each type, each with another severity.
sample_event event_of(std::string_view type) {
  static const std::vector<sample_event> samples{
      {.type = "policy.denied",
       .severity = "high",
       .agent_id = "agent-7",
       .summary = "Blocked `rm -rf /srv/data` <shell> & refused",
       .details = {{"action", "shell.exec"},
                   {"rule", "no-destructive-shell"},
                   {"receipt_id", "rcpt_42"}},
       .audit_url = "https://audit.example/receipts/rcpt_42"},
      {.type = "approval.required",
       .severity = "medium",
       .agent_id = "agent-billing",
       .summary = "Wire transfer of 12,000 € to a new payee needs approval",
       .details = {{"action", "payments.transfer"}, {"receipt_id", "rcpt_43"}},
       .audit_url = "https://audit.example/receipts/rcpt_43"},
      {.type = "content.detected",
       .severity = "critical",
       .agent_id = "agent-mail",
       .summary = "Outgoing e-mail contained an API key (sk-…)",
       .details = {{"detector", "secrets"}, {"excerpt", "sk-…[truncated]"}},
       .audit_url = "https://audit.example/receipts/rcpt_44",
       .truncated = true},
      {.type = "anomaly.detected",
       .severity = "low",
       .agent_id = "agent-crawler",
       .summary = "Request rate 14× the 7-day baseline",
       .details = {{"metric", "requests_per_minute"}, {"value", 840}},
       .audit_url = "http://audit.internal/anomalies/7"},
      // system.health: no agent, no audit link
      {.type = "system.health",
       .severity = "info",
       .summary = "Delivery backlog back under 100 events",
       .details = {{"backlog", 87}}},
  };
  auto it = std::find_if(samples.begin(), samples.end(),
                         [&](auto& s) { return s.type == type; });
  BOOST_TEST_REQUIRE((it != samples.end()), "no sample " << type);
  auto s = *it;
  s.id = "evt_01JDQ8Z3V6X2K9M4T7B5N1C0PA";
  return s;
}

const endpoint_view endpoint{"ep_slack",
                             "https://hooks.slack.com/services/T0/B0/x", "{}"};

json message_for(sample_event& s, const endpoint_view& ep = endpoint) {
  auto r = build_with(slack(), s.view(), ep);
  BOOST_TEST_REQUIRE(r.ok(), (r.ok() ? "" : r.error().message));
  BOOST_TEST(valid_utf8(r->body));
  auto j = json::parse(r->body, nullptr, false);
  BOOST_TEST_REQUIRE(j.is_object());
  return j;
}

/// Every block of a message within Slack's limits, in code points; all text
/// valid UTF-8 and every '&' of mrkdwn an entity (never cut in half).
void check_limits(const json& m) {
  auto text_ok = [](const json& t, std::size_t max) {
    BOOST_TEST_REQUIRE(t.is_string());
    auto& s = t.get_ref<const std::string&>();
    BOOST_TEST(valid_utf8(s));
    BOOST_TEST(code_points(s) <= max, code_points(s) << " > " << max);
    BOOST_TEST(!s.empty());
  };
  auto mrkdwn_ok = [&](const json& o, std::size_t max) {
    BOOST_TEST(str(o.at("type")) == "mrkdwn");
    text_ok(o.at("text"), max);
    auto& s = o.at("text").get_ref<const std::string&>();
    for (auto at = s.find('&'); at != std::string::npos;
         at = s.find('&', at + 1)) {
      auto rest = std::string_view{s}.substr(at);
      BOOST_TEST((rest.starts_with("&amp;") || rest.starts_with("&lt;") ||
                  rest.starts_with("&gt;")),
                 "a bare & at " << at);
    }
    BOOST_TEST(s.find('<') == std::string::npos);
    BOOST_TEST(s.find('>') == std::string::npos);
  };
  text_ok(m.at("text"), 3000);
  auto& blocks = m.at("blocks");
  BOOST_TEST(blocks.size() <= 50u);
  for (auto& b : blocks) {
    auto type = b.at("type").get<std::string>();
    if (type == "header") {
      BOOST_TEST(str(b.at("text").at("type")) == "plain_text");
      text_ok(b.at("text").at("text"), 150);
    } else if (type == "section") {
      if (b.contains("text"))
        mrkdwn_ok(b.at("text"), 3000);
      if (b.contains("fields")) {
        BOOST_TEST(b.at("fields").size() <= 10u);
        for (auto& f : b.at("fields"))
          mrkdwn_ok(f, 2000);
      }
    } else if (type == "context") {
      BOOST_TEST(b.at("elements").size() <= 10u);
      for (auto& e : b.at("elements"))
        mrkdwn_ok(e, 3000);
    } else if (type == "actions") {
      BOOST_TEST(b.at("elements").size() <= 25u);
      for (auto& e : b.at("elements")) {
        BOOST_TEST(str(e.at("type")) == "button");
        text_ok(e.at("text").at("text"), 75);
        text_ok(e.at("action_id"), 255);
        if (e.contains("url"))
          text_ok(e.at("url"), 3000);
        if (e.contains("value"))
          text_ok(e.at("value"), 2000);
      }
    } else {
      BOOST_FAIL("unexpected block type " << type);
    }
  }
}

const json* block(const json& m, std::string_view type, int nth = 0) {
  for (auto& b : m.at("blocks"))
    if (b.at("type") == type && nth-- == 0)
      return &b;
  return nullptr;
}

std::vector<std::string> action_ids(const json& m) {
  std::vector<std::string> out;
  if (auto* a = block(m, "actions"))
    for (auto& e : a->at("elements"))
      out.push_back(e.at("action_id").get<std::string>());
  return out;
}

} // namespace

BOOST_AUTO_TEST_SUITE(slack_transport)

BOOST_AUTO_TEST_CASE(table) {
  auto& p = slack();
  BOOST_TEST(p.name() == "slack");
  BOOST_TEST(p.version() == "1.0.0");
  BOOST_TEST(!p.signs_requests());
  BOOST_TEST(p.default_rate_per_second() == 1.0);
  BOOST_TEST(p.default_burst() == 3u);
}

BOOST_AUTO_TEST_CASE(posts_json_to_the_webhook_url) {
  auto s = event_of("policy.denied");
  auto r = build_with(slack(), s.view(), endpoint);
  BOOST_TEST_REQUIRE(r.ok());
  check_post(*r, "application/json; charset=utf-8");
}

// The policy.denied message spelled out, independently of the golden file.
BOOST_AUTO_TEST_CASE(policy_denied_message) {
  auto s = event_of("policy.denied");
  auto m = message_for(s);
  BOOST_TEST(str(m.at("text")) ==
             "[HIGH] policy.denied: Blocked `rm -rf /srv/data` &lt;shell&gt; "
             "&amp; refused");
  auto& b = m.at("blocks");
  BOOST_TEST_REQUIRE(b.size() == 5u);
  BOOST_TEST((b[0] == json::parse(R"({"type":"header","text":{
    "type":"plain_text","text":":red_circle: policy.denied","emoji":true}})")),
             b[0].dump(2));
  BOOST_TEST((b[1] == json::parse(R"({"type":"section","text":{"type":"mrkdwn",
    "text":"Blocked `rm -rf /srv/data` &lt;shell&gt; &amp; refused"}})")),
             b[1].dump(2));
  BOOST_TEST((b[2] == json::parse(R"({"type":"section","fields":[
    {"type":"mrkdwn","text":"*Agent*\nagent-7"},
    {"type":"mrkdwn","text":"*Severity*\nhigh"},
    {"type":"mrkdwn","text":"*Time*\n2026-11-27T05:10:00.123Z"},
    {"type":"mrkdwn","text":"*Rule*\nno-destructive-shell"},
    {"type":"mrkdwn","text":"*Action*\nshell.exec"},
    {"type":"mrkdwn","text":"*Receipt*\nrcpt_42"}]})")),
             b[2].dump(2));
  BOOST_TEST((b[3] == json::parse(R"({"type":"context","elements":[
    {"type":"mrkdwn","text":"Event evt_01JDQ8Z3V6X2K9M4T7B5N1C0PA"}]})")),
             b[3].dump(2));
  BOOST_TEST((b[4] == json::parse(R"({"type":"actions","elements":[
    {"type":"button","text":{"type":"plain_text","text":"Investigate",
     "emoji":true},"action_id":"tocsin.investigate",
     "url":"https://audit.example/receipts/rcpt_42"},
    {"type":"button","text":{"type":"plain_text","text":"Acknowledge",
     "emoji":true},"action_id":"tocsin.ack",
     "value":"evt_01JDQ8Z3V6X2K9M4T7B5N1C0PA","style":"primary"}]})")),
             b[4].dump(2));
  BOOST_TEST(!m.contains("channel"));
  BOOST_TEST(!m.contains("username"));
  BOOST_TEST(!m.contains("icon_emoji"));
}

BOOST_AUTO_TEST_CASE(golden_messages) {
  for (auto type : all_types) {
    BOOST_TEST_CONTEXT("type " << type) {
      auto s = event_of(type);
      auto m = message_for(s);
      check_limits(m);
      check_golden(golden_path("slack", type), m.dump());
    }
  }
}

BOOST_AUTO_TEST_CASE(every_type_has_its_blocks_in_order) {
  for (auto type : all_types) {
    BOOST_TEST_CONTEXT("type " << type) {
      auto s = event_of(type);
      auto m = message_for(s);
      std::vector<std::string> kinds;
      for (auto& b : m.at("blocks"))
        kinds.push_back(b.at("type").get<std::string>());
      std::vector<std::string> want{"header", "section", "section", "context",
                                    "actions"};
      BOOST_TEST(kinds == want, boost::test_tools::per_element());
      auto& fields = block(m, "section", 1)->at("fields");
      std::vector<std::string> labels;
      for (auto& f : fields) {
        auto t = f.at("text").get<std::string>();
        labels.push_back(t.substr(0, t.find('\n')));
      }
      std::vector<std::string> expected =
          type == "policy.denied"
              ? std::vector<std::string>{"*Agent*", "*Severity*", "*Time*",
                                         "*Rule*",  "*Action*",   "*Receipt*"}
          : type == "system.health"
              ? std::vector<std::string>{"*Severity*", "*Time*"}
              : std::vector<std::string>{"*Agent*", "*Severity*", "*Time*"};
      BOOST_TEST(labels == expected, boost::test_tools::per_element());
      auto context = str(block(m, "context")->at("elements")[0].at("text"));
      BOOST_TEST(context == (type == "content.detected"
                                 ? "Event " + s.id + " (truncated)"
                                 : "Event " + s.id));
      auto ids = action_ids(m);
      BOOST_TEST(ids == (type == "system.health"
                             ? std::vector<std::string>{"tocsin.ack"}
                             : std::vector<std::string>{"tocsin.investigate",
                                                        "tocsin.ack"}),
                 boost::test_tools::per_element());
    }
  }
}

BOOST_AUTO_TEST_CASE(severity_emojis) {
  for (auto [severity, emoji] :
       std::vector<std::pair<std::string, std::string>>{
           {"critical", ":rotating_light:"},
           {"high", ":red_circle:"},
           {"medium", ":large_orange_circle:"},
           {"low", ":large_yellow_circle:"},
           {"info", ":information_source:"}}) {
    auto s = event_of("anomaly.detected");
    s.severity = severity;
    auto m = message_for(s);
    BOOST_TEST(str(m.at("blocks")[0].at("text").at("text")) ==
               emoji + " anomaly.detected");
    auto upper = severity; // (clang 14 cannot capture a structured binding)
    for (auto& c : upper)
      c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    BOOST_TEST(m.at("text").get<std::string>().starts_with(
        "[" + upper + "] anomaly.detected: "));
  }
}

BOOST_AUTO_TEST_CASE(limits_hold_with_huge_multibyte_input) {
  auto s = event_of("policy.denied");
  // 10,000 code points: 2, 4, 1 and 1 byte(s), and characters mrkdwn escapes.
  s.summary = repeat("é😀&<x", 2000);
  s.details["rule"] = repeat("é", 5000);
  s.details["action"] = repeat("<", 3000); // 12,000 code points escaped
  s.details["receipt_id"] = repeat("😀", 2500);
  s.agent_id = repeat("a&", 1500);
  s.truncated = true;
  auto m = message_for(s);
  check_limits(m);

  auto summary = block(m, "section")->at("text").at("text").get<std::string>();
  BOOST_TEST(ends_with(summary, ellipsis));
  BOOST_TEST(code_points(summary) <= 3000u);
  BOOST_TEST(code_points(summary) >= 2996u); // at most one entity short
  BOOST_TEST(summary.starts_with("é😀&amp;&lt;xé😀"));

  auto& fields = block(m, "section", 1)->at("fields");
  BOOST_TEST_REQUIRE(fields.size() == 6u);
  for (auto& f : fields) {
    auto t = f.at("text").get<std::string>();
    if (t.starts_with("*Severity*") || t.starts_with("*Time*"))
      continue;
    BOOST_TEST(ends_with(t, ellipsis), t.substr(0, 20));
    BOOST_TEST(code_points(t) >= 1996u);
  }
  BOOST_TEST(fields[3].at("text").get<std::string>().starts_with("*Rule*\néé"));
  BOOST_TEST(code_points(fields[3].at("text").get<std::string>()) == 2000u);

  BOOST_TEST(str(block(m, "context")->at("elements")[0].at("text")) ==
             "Event " + s.id + " (truncated)");
  auto text = m.at("text").get<std::string>();
  BOOST_TEST(text.starts_with("[HIGH] policy.denied: é😀&amp;"));
  BOOST_TEST(ends_with(text, ellipsis));
  BOOST_TEST(code_points(text) >= 2996u);
}

BOOST_AUTO_TEST_CASE(long_event_type_is_cut_in_the_header) {
  auto s = event_of("system.health");
  s.type = repeat("é", 100) + repeat("😀", 100); // 200 code points
  auto m = message_for(s);
  check_limits(m);
  auto header = m.at("blocks")[0].at("text").at("text").get<std::string>();
  BOOST_TEST(code_points(header) == 150u);
  BOOST_TEST(header.starts_with(":information_source: éé"));
  BOOST_TEST(ends_with(header, "😀" + ellipsis));
}

BOOST_AUTO_TEST_CASE(ill_formed_utf8_becomes_replacement_characters) {
  auto s = event_of("policy.denied");
  s.summary = "bad \xff\xfe bytes \xe2\x82 and \xed\xa0\x80 end";
  s.agent_id = "agent-\xc0\xaf";
  event_view ev = s.view();
  auto r = build_with(slack(), ev, endpoint);
  BOOST_TEST_REQUIRE(r.ok());
  BOOST_TEST(valid_utf8(r->body));
  auto m = json::parse(r->body);
  check_limits(m);
  BOOST_TEST(str(block(m, "section")->at("text").at("text")) ==
             "bad \xef\xbf\xbd\xef\xbf\xbd bytes \xef\xbf\xbd\xef\xbf\xbd and "
             "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd end");
}

BOOST_AUTO_TEST_CASE(investigate_button_only_for_a_usable_audit_link) {
  for (auto [url, shown] : std::vector<std::pair<std::string, bool>>{
           {"", false},
           {"ftp://audit.example/r/1", false},
           {"javascript:alert(1)", false},
           {"audit.example/r/1", false},
           {"https://", false},
           {"https://audit.example/r 1", false},
           {"https://audit.example/" + repeat("a", 3000 - 22), true},
           {"https://audit.example/" + repeat("a", 3001 - 22), false},
           {"HTTPS://audit.example/r/1", true},
           {"http://audit.internal/r/1", true}}) {
    BOOST_TEST_CONTEXT("url " << url.substr(0, 40) << " (" << url.size()
                              << ")") {
      auto s = event_of("policy.denied");
      s.audit_url = url;
      auto m = message_for(s);
      check_limits(m);
      auto ids = action_ids(m);
      BOOST_TEST((std::find(ids.begin(), ids.end(), "tocsin.investigate") !=
                  ids.end()) == shown);
      BOOST_TEST(ids.back() == "tocsin.ack");
      if (shown)
        BOOST_TEST(str(block(m, "actions")->at("elements")[0].at("url")) ==
                   url);
    }
  }
}

BOOST_AUTO_TEST_CASE(acknowledge_button) {
  // A cut id would acknowledge nothing: no button rather than a wrong one.
  auto s = event_of("system.health");
  s.id = "evt_" + repeat("x", 2100);
  auto m = message_for(s);
  check_limits(m);
  BOOST_TEST(action_ids(m).empty());
  BOOST_TEST(!block(m, "actions"));
  BOOST_TEST(m.at("blocks").size() == 4u);

  // An acknowledged event offers Resolve instead, and says who answered and
  // how many events went with it; a resolved one offers nothing more.
  auto a = event_of("policy.denied");
  a.state = event_state::acknowledged;
  auto am = message_for(a);
  BOOST_TEST(action_ids(am) == (std::vector<std::string>{"tocsin.investigate",
                                                         "tocsin.resolve"}),
             boost::test_tools::per_element());
  BOOST_TEST(str(block(am, "actions")->at("elements")[1].at("value")) == a.id);
  BOOST_TEST(str(block(am, "context")->at("elements")[0].at("text")) ==
             "Event " + a.id + " · acknowledged");
  a.state_by = "alice";
  a.answered_along = 5;
  BOOST_TEST(
      str(block(message_for(a), "context")->at("elements")[0].at("text")) ==
      "Event " + a.id +
          " · acknowledged by alice · with 5 events "
          "of this episode");
  a.answered_along = 1;
  BOOST_TEST(
      str(block(message_for(a), "context")->at("elements")[0].at("text")) ==
      "Event " + a.id +
          " · acknowledged by alice · with 1 event "
          "of this episode");
  a.answered_along = 0;
  a.state = event_state::resolved;
  a.state_by = "<@U024BE7LH> & co";
  auto rm = message_for(a);
  BOOST_TEST(action_ids(rm) == std::vector<std::string>{"tocsin.investigate"},
             boost::test_tools::per_element());
  BOOST_TEST(str(block(rm, "context")->at("elements")[0].at("text")) ==
             "Event " + a.id + " · resolved by &lt;@U024BE7LH&gt; &amp; co");
}

BOOST_AUTO_TEST_CASE(investigate_opens_the_dashboard_without_an_audit_link) {
  auto s = event_of("system.health"); // no audit link
  BOOST_TEST(action_ids(message_for(s)) ==
                 std::vector<std::string>{"tocsin.ack"},
             boost::test_tools::per_element());
  s.event_url = "https://tocsin.example/#event=" + s.id;
  auto m = message_for(s);
  BOOST_TEST(action_ids(m) ==
                 (std::vector<std::string>{"tocsin.investigate", "tocsin.ack"}),
             boost::test_tools::per_element());
  BOOST_TEST(str(block(m, "actions")->at("elements")[0].at("url")) ==
             s.event_url);
  // An audit link wins.
  auto p = event_of("policy.denied");
  p.event_url = "https://tocsin.example/#event=" + p.id;
  BOOST_TEST(
      str(block(message_for(p), "actions")->at("elements")[0].at("url")) ==
      p.audit_url);
}

BOOST_AUTO_TEST_CASE(options_accepted) {
  for (
      std::string o :
      {"{}", "{ }", R"({"channel":"#alerts"})", R"({"channel":"@oncall"})",
       R"({"channel":"#sécurité-ia"})", R"({"channel":"C0123456789"})",
       R"({"channel":"G01ABCDEF23"})", R"({"username":"tocsin"})",
       R"({"username":"Tocsin — AI safety"})",
       R"({"icon_emoji":":rotating_light:"})", R"({"icon_emoji":":+1:"})",
       R"({"channel":"#ops","username":"tocsin","icon_emoji":":robot_face:"})"}) {
    auto st = slack().validate_options(o);
    BOOST_TEST(st.ok(), o << ": " << (st.ok() ? "" : st.error().message));
  }
  BOOST_TEST(slack()
                 .validate_options(R"({"username":")" + repeat("é", 80) + "\"}")
                 .ok());
}

BOOST_AUTO_TEST_CASE(options_refused) {
  struct row {
    std::string options;
    std::string says;
  };
  for (auto& [o, says] : std::vector<row>{
           {"[]", "must be a JSON object"},
           {"\"#alerts\"", "must be a JSON object"},
           {"not json", "must be a JSON object"},
           {R"({"webhook_url":"https://x"})", "'webhook_url'"},
           {R"({"routing_key":"abc"})", "'routing_key'"},
           {R"({"channel":5})", "options.channel must be a string"},
           {R"({"channel":"alerts"})", "options.channel"},
           {R"({"channel":"#"})", "options.channel"},
           {R"({"channel":"# ops"})", "options.channel"},
           {R"({"channel":"c0123456789"})", "options.channel"},
           {R"({"channel":"C01"})", "options.channel"},
           {R"({"username":""})", "options.username"},
           {R"({"username":")" + repeat("é", 81) + "\"}", "options.username"},
           {R"({"username":"a\nb"})", "options.username"},
           {R"({"username":null})", "options.username must be a string"},
           {R"({"icon_emoji":"robot_face"})", "options.icon_emoji"},
           {R"({"icon_emoji":":Robot Face:"})", "options.icon_emoji"},
           {R"({"icon_emoji":"::"})", "options.icon_emoji"},
       }) {
    auto st = slack().validate_options(o);
    BOOST_TEST_REQUIRE(!st.ok(), o);
    BOOST_TEST(st.error().code == "invalid_options");
    BOOST_TEST(st.error().message.find(says) != std::string::npos,
               o << ": " << st.error().message);
  }
}

BOOST_AUTO_TEST_CASE(options_go_into_the_message) {
  auto s = event_of("system.health");
  auto m = message_for(
      s,
      {"ep", endpoint.url,
       R"({"channel":"#ops","username":"tocsin","icon_emoji":":robot_face:"})"});
  BOOST_TEST(str(m.at("channel")) == "#ops");
  BOOST_TEST(str(m.at("username")) == "tocsin");
  BOOST_TEST(str(m.at("icon_emoji")) == ":robot_face:");

  auto bad = build_with(slack(), s.view(),
                        {"ep", endpoint.url, R"({"colour":"red"})"});
  BOOST_TEST_REQUIRE(!bad.ok());
  BOOST_TEST(bad.error().message.find("'colour'") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(classification_table) {
  struct row {
    int status;
    std::string body;
    outcome expected;
    std::string reason;
  };
  for (auto& [status, body, expected, reason] : std::vector<row>{
           {200, "ok", outcome::success, ""},
           {200, "ok\n", outcome::success, ""},
           {200, "invalid_token", outcome::permanent, "invalid_token"},
           {200, "", outcome::permanent, "HTTP 200 without \"ok\""},
           {400, "invalid_payload", outcome::permanent, "invalid_payload"},
           {400, " invalid_blocks \r\n<details>", outcome::permanent,
            "invalid_blocks"},
           {400, R"({"ok":false,"error":"invalid_blocks_format"})",
            outcome::permanent, "invalid_blocks_format"},
           {403, "action_prohibited", outcome::permanent, "action_prohibited"},
           {404, "channel_not_found", outcome::permanent, "channel_not_found"},
           {404, "no_service", outcome::permanent, "no_service"},
           {404, "", outcome::permanent, "HTTP 404"},
           {410, "channel_is_archived", outcome::disable_endpoint,
            "channel_is_archived"},
           {429, "", outcome::retry, "rate limited"},
           {429, "rate_limited", outcome::retry, "rate_limited"},
           {500, "", outcome::retry, "HTTP 500"},
           {500, "rollup_error", outcome::retry, "rollup_error"},
           {503, "service unavailable", outcome::retry, "service unavailable"},
           {302, "<html>moved</html>", outcome::permanent,
            "HTTP 302: redirects are not followed; check the webhook URL"},
           {401, "invalid_auth", outcome::permanent, "invalid_auth"},
       }) {
    auto c = classify_with(slack(), status, body, status == 429 ? "30" : "");
    BOOST_TEST((c.what == expected),
               status << " " << body << ": " << to_string(c.what));
    BOOST_TEST(c.reason == reason, status << " " << body);
  }
}

BOOST_AUTO_TEST_CASE(reasons_are_short_valid_utf8) {
  auto c = classify_with(slack(), 400, repeat("é", 512), "");
  BOOST_TEST((c.what == outcome::permanent));
  BOOST_TEST(valid_utf8(c.reason));
  BOOST_TEST(c.reason.size() <= 200u);
  BOOST_TEST(ends_with(c.reason, ellipsis));
  // A body prefix cut inside a sequence, with control characters.
  auto d = classify_with(slack(), 404, "no\x01serv\xc3", "");
  BOOST_TEST(valid_utf8(d.reason));
  BOOST_TEST(d.reason == "no serv\xef\xbf\xbd");
}

BOOST_AUTO_TEST_SUITE_END()
