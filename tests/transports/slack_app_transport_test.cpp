// The shipped Slack transport as a Slack app (options.bot_token): messages
// posted with the Web API and the bot token, Slack's {"ok", "error"} answers
// classified, the message's channel and ts kept as the delivery's receipt,
// and every later state of the event edited into that message with
// chat.update.
#include "tests/support/plugin_calls.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/transports/transport_test_support.hpp"

#include <boost/test/unit_test.hpp>

#include <nlohmann/json.hpp>

#include <fstream>
#include <string>
#include <vector>

using namespace tocsin::plugins;
using namespace tocsin::test;
using nlohmann::json;

namespace {

const transport_plugin& slack() {
  return shipped_plugin("slack");
}

constexpr const char* token = "xoxb-1234567890-abcdefghijkl";
constexpr const char* post_url = "https://slack.example/api/chat.postMessage";

std::string app_options(std::string channel = "C0123456789") {
  return json{{"bot_token", token}, {"channel", channel}}.dump();
}

sample_event denial() {
  sample_event s;
  s.id = "evt_01JDQ8Z3V6X2K9M4T7B5N1C0PA";
  s.type = "policy.denied";
  s.severity = "high";
  s.agent_id = "agent-4";
  s.summary = "agent-4 tried file.delete on /etc/passwd";
  return s;
}

std::string header(const built_request& r, std::string_view name) {
  for (auto& [n, v] : r.headers)
    if (n == name)
      return v;
  return {};
}

built_request build(sample_event& s, std::string options = app_options(),
                    std::string url = post_url) {
  auto r = build_with(slack(), s.view(), {"ep_app", url, options});
  BOOST_TEST_REQUIRE(r.ok(), (r.ok() ? "" : r.error().message));
  return std::move(*r);
}

std::vector<std::string> action_ids(const json& m) {
  std::vector<std::string> out;
  for (auto& b : m.at("blocks"))
    if (b.at("type") == "actions")
      for (auto& e : b.at("elements"))
        out.push_back(e.at("action_id").get<std::string>());
  return out;
}

} // namespace

BOOST_AUTO_TEST_SUITE(slack_app_transport)

BOOST_AUTO_TEST_CASE(a_new_event_is_posted_with_the_bot_token) {
  auto s = denial();
  auto r = build(s);
  BOOST_TEST(r.method == "POST");
  BOOST_TEST(!r.url); // the endpoint's own: chat.postMessage
  BOOST_TEST(header(r, "Authorization") == std::string{"Bearer "} + token);
  BOOST_TEST(header(r, "Content-Type") == "application/json; charset=utf-8");
  auto body = json::parse(r.body);
  BOOST_TEST(body.at("channel") == "C0123456789");
  BOOST_TEST(!body.contains("ts"));
  BOOST_TEST(body.at("blocks").is_array());
  BOOST_TEST(body.at("text").get<std::string>().find("policy.denied") !=
             std::string::npos);
  BOOST_TEST(action_ids(body) == std::vector<std::string>{"tocsin.ack"},
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(the_news_edits_the_message_it_posted) {
  auto s = denial();
  s.state = event_state::acknowledged;
  s.state_by = "alice";
  s.receipt = R"({"channel":"C0123456789","ts":"1700000000.000100"})";
  auto r = build(s);
  BOOST_TEST_REQUIRE(r.url.has_value());
  BOOST_TEST(*r.url == "https://slack.example/api/chat.update");
  BOOST_TEST(header(r, "Authorization") == std::string{"Bearer "} + token);
  auto body = json::parse(r.body);
  BOOST_TEST(body.at("channel") == "C0123456789");
  BOOST_TEST(body.at("ts") == "1700000000.000100");
  BOOST_TEST(!body.contains("replace_original"));
  BOOST_TEST(action_ids(body) == std::vector<std::string>{"tocsin.resolve"},
             boost::test_tools::per_element());

  // Without a receipt (delivered before receipts were kept) the news is a
  // new message; through a click's response_url, no token goes along.
  s.receipt.clear();
  auto fresh = build(s);
  BOOST_TEST(!fresh.url);
  s.reply_url = "https://hooks.slack.com/actions/T1/2/abc";
  auto replied = build(s);
  BOOST_TEST_REQUIRE(replied.url.has_value());
  BOOST_TEST(*replied.url == s.reply_url);
  BOOST_TEST(header(replied, "Authorization").empty());
}

BOOST_AUTO_TEST_CASE(options_of_an_app) {
  for (auto [options, url, says] : std::vector<std::array<std::string, 3>>{
           {json{{"bot_token", token}}.dump(), post_url, "options.channel"},
           {json{{"bot_token", "secret"}, {"channel", "C0123456789"}}.dump(),
            post_url, "options.bot_token must be a Slack token"},
           {json{{"bot_token", token},
                 {"bot_token_file", "/x"},
                 {"channel", "C0123456789"}}
                .dump(),
            post_url, "give one"},
           {app_options(), "https://slack.example/api/chat.update",
            "must end in /api/chat.postMessage"},
           {json{{"bot_token_file", "/nonexistent/token"},
                 {"channel", "C0123456789"}}
                .dump(),
            post_url, "cannot read /nonexistent/token"},
       }) {
    auto opened = slack().open({"ep", url, options});
    BOOST_TEST_REQUIRE(!opened.ok(), options);
    BOOST_TEST(opened.error().message.find(says) != std::string::npos,
               options << ": " << opened.error().message);
    // The token is never repeated back.
    BOOST_TEST(opened.error().message.find(token) == std::string::npos);
  }
}

BOOST_AUTO_TEST_CASE(the_token_can_come_from_a_file) {
  temp_dir dir;
  auto path = (dir.path() / "slack.token").string();
  std::ofstream{path} << token << "\n";
  auto s = denial();
  auto r =
      build(s, json{{"bot_token_file", path}, {"channel", "#alerts"}}.dump());
  BOOST_TEST(header(r, "Authorization") == std::string{"Bearer "} + token);
  // A file that holds no token is named, its content not shown.
  std::ofstream{path} << "hunter2 is not a token\n";
  auto bad = slack().open(
      {"ep", post_url,
       json{{"bot_token_file", path}, {"channel", "#alerts"}}.dump()});
  BOOST_TEST_REQUIRE(!bad.ok());
  BOOST_TEST(bad.error().message.find(path) != std::string::npos);
  BOOST_TEST(bad.error().message.find("hunter2") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(classification_table_of_the_web_api) {
  struct row {
    int status;
    std::string body;
    outcome expected;
    std::string reason;
  };
  auto ok_false = [](std::string e) {
    return R"({"ok":false,"error":")" + e + R"("})";
  };
  std::vector<row> rows{
      {429, ok_false("ratelimited"), outcome::retry, "ratelimited"},
      {429, "", outcome::retry, "ratelimited"},
      {200, ok_false("ratelimited"), outcome::retry, "ratelimited"},
      {500, "", outcome::retry, "HTTP 500"},
      {503, ok_false("service_unavailable"), outcome::retry,
       "service_unavailable"},
      {302, "", outcome::permanent,
       "HTTP 302: redirects are not followed; check the URL"},
      {404, "", outcome::permanent, "HTTP 404"},
      {200, "ok", outcome::permanent, "HTTP 200 without \"ok\""},
      {200, R"({"ok":false})", outcome::permanent,
       "HTTP 200 with \"ok\": false"},
  };
  for (auto e : {"internal_error", "fatal_error", "service_unavailable"})
    rows.push_back({200, ok_false(e), outcome::retry, e});
  for (auto e :
       {"invalid_auth", "not_authed", "account_inactive", "token_revoked",
        "channel_not_found", "not_in_channel", "is_archived", "msg_too_long",
        "invalid_blocks", "message_not_found"})
    rows.push_back({200, ok_false(e), outcome::permanent, e});
  for (auto& [status, body, expected, reason] : rows) {
    auto c = classify_with(slack(), status, body, status == 429 ? "1" : "",
                           app_options(), post_url);
    BOOST_TEST((c.what == expected),
               status << " " << body << ": " << to_string(c.what));
    BOOST_TEST(c.reason == reason, status << " " << body);
    BOOST_TEST(c.receipt.empty());
  }
}

BOOST_AUTO_TEST_CASE(a_posted_message_is_kept_as_the_receipt) {
  auto c = classify_with(
      slack(), 200,
      R"({"ok":true,"channel":"C0123456789","ts":"1700000000.000100",)"
      R"("message":{"type":"message","ts":"1700000000.000100"}})",
      "", app_options(), post_url);
  BOOST_TEST((c.what == outcome::success));
  BOOST_TEST(json::parse(c.receipt) ==
             (json{{"channel", "C0123456789"}, {"ts", "1700000000.000100"}}));
  // Slack echoes the whole message after channel and ts: the first KiB the
  // host keeps is cut short, and still read.
  std::string cut = R"({"ok":true,"channel":"C0123456789","ts":"1.2",)"
                    R"("message":{"text":")" +
                    std::string(2000, 'x');
  cut.resize(1024);
  auto d = classify_with(slack(), 200, cut, "", app_options(), post_url);
  BOOST_TEST((d.what == outcome::success));
  BOOST_TEST(json::parse(d.receipt) ==
             (json{{"channel", "C0123456789"}, {"ts", "1.2"}}));
  // The message's own ts (nested) is not taken for the top-level one.
  auto e = classify_with(slack(), 200,
                         R"({"ok":true,"message":{"ts":"9.9","channel":"X"}})",
                         "", app_options(), post_url);
  BOOST_TEST((e.what == outcome::success));
  BOOST_TEST(e.receipt.empty());
  // An incoming webhook keeps no receipt.
  auto w = classify_with(slack(), 200, "ok", "");
  BOOST_TEST((w.what == outcome::success));
  BOOST_TEST(w.receipt.empty());
}

BOOST_AUTO_TEST_SUITE_END()
