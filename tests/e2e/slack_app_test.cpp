// The Slack app endpoint (issue 23) through the real daemon, against a fake
// Slack Web API on loopback HTTPS that checks the bot token as Slack does:
// chat.postMessage with the bearer token, the answer's channel and ts kept
// with the delivery (GET /v1/events/{id} shows them as its receipt), and every
// later change of the event's state (from the API, a PagerDuty webhook, a
// click on that message) made to that same message with chat.update, also
// after a kill -9. Slack's {"ok": false} errors are classified, 429 waits for
// Retry-After, and the token is never logged.
#include "tests/e2e/answering.hpp"

#include <boost/test/unit_test.hpp>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

using namespace tocsin::test;
using nlohmann::json;

namespace {

// Bot tokens as Slack issues them.
constexpr const char* bot_token =
    "xoxb-1234567890-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx";
constexpr const char* file_token =
    "xoxb-2345678901-2345678901234-ZyXwVuTsRqPoNmLkJiHgFeDc";
/// A token Slack does not know (revoked, mistyped).
constexpr const char* unknown_token =
    "xoxb-3456789012-3456789012345-QqQqQqQqQqWwWwWwWwEeEeEe";

constexpr const char* channel = "C0123456789";
constexpr const char* file_channel = "C0FILE00001";

constexpr const char* post_message = "/api/chat.postMessage";
constexpr const char* update = "/api/chat.update";

/// j[key] if `j` is an object with a string there, else "".
std::string string_at(const json& j, const char* key) {
  if (!j.is_object())
    return {};
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>()
                                          : std::string{};
}

/// A Slack Web API on loopback: chat.postMessage and chat.update for the bot
/// tokens it knows, a fresh ts for each message posted, an update only of a
/// message it posted (in that channel), and errors per channel when told.
class fake_slack_api {
public:
  fake_slack_api(daemon_fixture& f, std::set<std::string> tokens)
      : tokens_(std::move(tokens)) {
    receiver_ = f.make_receiver([this](const received_request& req,
                                       std::size_t) { return respond(req); });
  }

  /// The next `times` calls in `channel` (any method) fail with Slack's
  /// `error`: HTTP 200 {"ok": false, "error": error}, or for "ratelimited"
  /// HTTP 429 with "Retry-After: retry_after".
  void fail(const std::string& channel, const std::string& error,
            int times = 1000000, int retry_after = 1) {
    std::lock_guard lock{m_};
    failures_[channel] = {error, times, retry_after};
  }

  /// "https://127.0.0.1:<port>/api/chat.postMessage": an endpoint's url.
  std::string url() const {
    return "https://127.0.0.1:" + std::to_string(receiver_->port()) +
           post_message;
  }

  const https_receiver& receiver() const { return *receiver_; }

  /// The requests to `method` (post_message or update) in `channel`.
  std::vector<received_request> calls(const std::string& method,
                                      const std::string& channel) const {
    std::vector<received_request> out;
    for (auto& req : receiver_->requests()) {
      auto j = json::parse(req.body, nullptr, false);
      if (req.target == method && string_at(j, "channel") == channel)
        out.push_back(req);
    }
    return out;
  }

  /// The ts Slack gave the message posted in `channel` for event `id`
  /// (whose Acknowledge button carries it); empty if none.
  std::string ts_of(const std::string& id, const std::string& channel) const {
    std::lock_guard lock{m_};
    for (auto& p : posted_)
      if (p.event_id == id && p.channel == channel)
        return p.ts;
    return {};
  }

  /// Waits until `method` was called `n` times in `channel`.
  bool wait_calls(const std::string& method, const std::string& channel,
                  std::size_t n) const {
    return eventually([&] { return calls(method, channel).size() >= n; });
  }

private:
  struct failure {
    std::string error;
    int times = 0;
    int retry_after = 1;
  };
  struct message {
    std::string channel, ts, event_id;
  };

  static canned_response slack_answer(const json& j, int status = 200) {
    return answer(status, j.dump(),
                  {{"Content-Type", "application/json; charset=utf-8"}});
  }
  static canned_response slack_error(const std::string& error) {
    return slack_answer({{"ok", false}, {"error", error}});
  }

  canned_response respond(const received_request& req) {
    if (req.method != "POST")
      return answer(405, "method_not_allowed");
    if (req.target != post_message && req.target != update)
      return slack_error("unknown_method");
    auto auth = req.headers.count("authorization")
                    ? req.headers.at("authorization")
                    : std::string{};
    if (auth.empty())
      return slack_error("not_authed");
    if (auth.rfind("Bearer ", 0) != 0 || !tokens_.count(auth.substr(7)))
      return slack_error("invalid_auth");
    auto body = json::parse(req.body, nullptr, false);
    if (!body.is_object())
      return slack_error("invalid_json");
    auto ch = string_at(body, "channel");
    if (ch.empty())
      return slack_error("channel_not_found");

    std::lock_guard lock{m_};
    if (auto it = failures_.find(ch);
        it != failures_.end() && it->second.times > 0) {
      --it->second.times;
      if (it->second.error == "ratelimited")
        return answer(
            429, json{{"ok", false}, {"error", "ratelimited"}}.dump(),
            {{"Content-Type", "application/json; charset=utf-8"},
             {"Retry-After", std::to_string(it->second.retry_after)}});
      return slack_error(it->second.error);
    }
    if (!body.contains("blocks") && !body.contains("text"))
      return slack_error("no_text");
    if (req.target == post_message) {
      char ts[32];
      std::snprintf(ts, sizeof ts, "1700000000.%06d", next_ts_++);
      message m{ch, ts, ""};
      m.event_id = string_at(button(body, "tocsin.ack"), "value");
      posted_.push_back(m);
      return slack_answer({{"ok", true},
                           {"channel", ch},
                           {"ts", m.ts},
                           {"message", {{"type", "message"}, {"ts", m.ts}}}});
    }
    auto ts = string_at(body, "ts");
    for (auto& p : posted_)
      if (p.channel == ch && p.ts == ts)
        return slack_answer({{"ok", true},
                             {"channel", ch},
                             {"ts", ts},
                             {"text", string_at(body, "text")}});
    return slack_error("message_not_found");
  }

  std::set<std::string> tokens_;
  mutable std::mutex m_;
  std::map<std::string, failure> failures_;
  std::vector<message> posted_;
  int next_ts_ = 100;
  std::unique_ptr<https_receiver> receiver_; // last: stops first
};

/// An [[endpoints]] table of the slack transport posting with a bot token
/// (`token_option` is the TOML of bot_token or bot_token_file).
endpoint_spec app_endpoint(const std::string& id, const std::string& url,
                           const std::string& token_option,
                           const std::string& channel,
                           const std::string& schedule = "[0.05, 0.05, 0.05, "
                                                         "0.05]") {
  endpoint_spec ep{id, url, schedule};
  ep.with_secret = false;
  ep.extra = "transport = \"slack\"\nevent_types = [\"policy.denied\"]\n"
             "rate_limit = { per_second = 1000, burst = 100 }\n"
             "options = { " +
             token_option + ", channel = \"" + channel + "\" }\n";
  return ep;
}

std::string inline_token(const std::string& token) {
  return "bot_token = \"" + token + "\"";
}

/// The daemon's whole log, every run of it.
std::string whole_log(daemon_fixture& f) {
  std::ifstream in{f.dir() / "daemon.log"};
  return {std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
}

/// No line of the daemon's log holds the token (nor its secret part).
void never_logged(daemon_fixture& f, const std::string& token) {
  auto log = whole_log(f);
  BOOST_TEST(!log.empty());
  auto secret = token.substr(token.rfind('-') + 1);
  std::istringstream lines{log};
  std::size_t n = 0;
  for (std::string line; std::getline(lines, line); ++n)
    BOOST_TEST(!contains(line, secret), "the token is logged: " << line);
  BOOST_TEST_MESSAGE(n << " lines of log checked for " << token.substr(0, 5)
                       << "…");
}

/// The delivery of `ev` to `endpoint_id` (not a notice); fails if none.
json delivery_to(const json& ev, const std::string& endpoint_id) {
  auto ds = deliveries_to(ev, endpoint_id);
  BOOST_REQUIRE_MESSAGE(ds.size() == 1u, ds.size()
                                             << " deliveries to " << endpoint_id
                                             << ": " << ev.dump());
  return ds[0];
}

/// The posted message of `id` in `channel`: delivered, its receipt is what
/// Slack answered; the ts.
std::string check_posted(fake_slack_api& slack, const json& ev,
                         const std::string& endpoint_id,
                         const std::string& channel, const std::string& token) {
  auto id = ev["event"]["id"].get<std::string>();
  auto d = delivery_to(ev, endpoint_id);
  BOOST_TEST(d["state"] == "delivered", d.dump());
  auto ts = slack.ts_of(id, channel);
  BOOST_REQUIRE_MESSAGE(!ts.empty(),
                        "no message of " << id << " in " << channel);
  BOOST_TEST(d["receipt"]["channel"] == channel, d.dump());
  BOOST_TEST(d["receipt"]["ts"] == ts, d.dump());

  std::vector<json> of_id;
  for (auto& req : slack.calls(post_message, channel)) {
    auto body = body_of(req);
    if (string_at(button(body, "tocsin.ack"), "value") != id)
      continue;
    of_id.push_back(body);
    BOOST_TEST(req.method == "POST");
    BOOST_TEST(req.headers["authorization"] == "Bearer " + token);
    BOOST_TEST(req.headers["content-type"] ==
               "application/json; charset=utf-8");
    BOOST_TEST(body["channel"] == channel, body.dump());
    BOOST_TEST(contains(string_at(body, "text"), "policy.denied"), body.dump());
    BOOST_TEST(body["blocks"].is_array(), body.dump());
    BOOST_TEST(contains(context_text(body), id), body.dump());
  }
  BOOST_TEST(of_id.size() == 1u,
             id << " posted " << of_id.size() << " times in " << channel);
  return ts;
}

/// The chat.update calls in `channel` of the message `ts`, as JSON, each
/// checked for the token and the fields Slack needs.
std::vector<json> updates_of(const fake_slack_api& slack,
                             const std::string& channel, const std::string& ts,
                             const std::string& token) {
  std::vector<json> out;
  for (auto& req : slack.calls(update, channel)) {
    auto body = body_of(req);
    if (string_at(body, "ts") != ts)
      continue;
    BOOST_TEST(req.headers["authorization"] == "Bearer " + token);
    BOOST_TEST(req.headers["content-type"] ==
               "application/json; charset=utf-8");
    BOOST_TEST(body["text"].is_string(), body.dump());
    BOOST_TEST(!string_at(body, "text").empty(), body.dump());
    BOOST_TEST(body["blocks"].is_array(), body.dump());
    out.push_back(body);
  }
  return out;
}

/// Waits for the `n`th chat.update of message `ts` in `channel`; the updates.
std::vector<json> wait_updates(const fake_slack_api& slack,
                               const std::string& channel,
                               const std::string& ts, const std::string& token,
                               std::size_t n) {
  bool arrived = eventually([&] {
    auto reqs = slack.calls(update, channel);
    std::size_t k = 0;
    for (auto& r : reqs)
      k += string_at(json::parse(r.body, nullptr, false), "ts") == ts;
    return k >= n;
  });
  BOOST_TEST(arrived, "no chat.update #" << n << " of " << channel << "/" << ts
                                         << " (" << slack.receiver().count()
                                         << " calls)");
  return updates_of(slack, channel, ts, token);
}

/// An acknowledged message: who, a Resolve button for `id`, no Acknowledge.
void acknowledged_message(const json& msg, const std::string& id,
                          const std::string& by) {
  BOOST_TEST(contains(context_text(msg), "acknowledged by " + by), msg.dump());
  BOOST_TEST(contains(context_text(msg), id), msg.dump());
  BOOST_TEST(!has_ack_button(msg), msg.dump());
  auto b = button(msg, "tocsin.resolve");
  BOOST_TEST(b.is_object(), "no Resolve button: " << msg.dump());
  BOOST_TEST(string_at(b, "value") == id, msg.dump());
}

} // namespace

BOOST_AUTO_TEST_SUITE(slack_app)

BOOST_AUTO_TEST_CASE(a_message_is_posted_once_and_updated_for_every_answer) {
  daemon_fixture f;
  fake_slack_api slack{f, {bot_token, file_token}};
  auto pager = f.make_receiver(always(pagerduty_accepted()));
  auto reply = f.make_receiver(always(response_url_ok()));
  auto token_file = f.dir() / "slack-bot-token";
  {
    std::ofstream out{token_file};
    out << file_token << "\n";
  }
  endpoint_spec pd{"pager", daemon_fixture::url_of(*pager)};
  pd.with_secret = false;
  pd.extra = "transport = \"pagerduty\"\nevent_types = [\"policy.denied\"]\n"
             "options = { routing_key = \"" +
             std::string{routing_key} + "\" }\n";
  f.start({app_endpoint("app", slack.url(), inline_token(bot_token), channel),
           app_endpoint("app_file", slack.url(),
                        "bot_token_file = \"" + token_file.string() + "\"",
                        file_channel),
           pd},
          "", slack_config() + pagerduty_config());

  // Each endpoint posts one message with its token; the daemon keeps where
  // Slack put it.
  auto posted = [&](const std::string& id) {
    auto ev = wait_deliveries(f, id, 3);
    auto ts = check_posted(slack, ev, "app", channel, bot_token);
    auto file_ts =
        check_posted(slack, ev, "app_file", file_channel, file_token);
    BOOST_TEST(delivery_to(ev, "pager")["state"] == "delivered", ev.dump());
    return std::pair{ts, file_ts};
  };
  // Both messages of `id` are updated (the `n`th time); the updates.
  auto updated = [&](const std::string& id,
                     std::pair<std::string, std::string> ts, std::size_t n) {
    auto a = wait_updates(slack, channel, ts.first, bot_token, n);
    auto b = wait_updates(slack, file_channel, ts.second, file_token, n);
    BOOST_TEST(a.size() == n,
               id << ": " << a.size() << " updates in " << channel);
    BOOST_TEST(b.size() == n,
               id << ": " << b.size() << " updates in " << file_channel);
    for (auto& u : a)
      BOOST_TEST(u["channel"] == channel, u.dump());
    for (auto& u : b)
      BOOST_TEST(u["channel"] == file_channel, u.dump());
    return std::pair{a, b};
  };
  auto post_count = [&] {
    return slack.calls(post_message, channel).size() +
           slack.calls(post_message, file_channel).size();
  };

  // 1. Answers from the API: acknowledged, then resolved; each updates the
  //    messages in place, and nothing new is posted.
  auto a = f.post_events(sample_event("agent-a")).at(0);
  auto a_ts = posted(a);
  auto r = f.call("POST", "/v1/events/" + a + "/ack", {{"by", "dana"}});
  BOOST_REQUIRE_MESSAGE(r.status == 200, r.status << " " << r.body);
  auto [acked, acked_file] = updated(a, a_ts, 1);
  for (auto* u : {&acked, &acked_file})
    if (!u->empty())
      acknowledged_message(u->at(0), a, "dana");
  r = f.call("POST", "/v1/events/" + a + "/resolve", {{"by", "bob"}});
  BOOST_REQUIRE_MESSAGE(r.status == 200, r.status << " " << r.body);
  auto [resolved, resolved_file] = updated(a, a_ts, 2);
  for (auto* u : {&resolved, &resolved_file})
    if (u->size() == 2u) {
      auto& msg = u->at(1);
      BOOST_TEST(contains(context_text(msg), "resolved by bob"), msg.dump());
      BOOST_TEST(!has_ack_button(msg), msg.dump());
      BOOST_TEST(button(msg, "tocsin.resolve").is_null(), msg.dump());
    }
  f.wait_finished(a);
  BOOST_TEST(post_count() == 2u, "posted again instead of updated");

  // 2. An incident acknowledged in PagerDuty.
  auto b = f.post_events(sample_event("agent-b")).at(0);
  auto b_ts = posted(b);
  auto acked_pd = pagerduty_body("incident.acknowledged", "tocsin-" + b);
  auto rp = post_pagerduty(f, acked_pd,
                           pagerduty_signature(pagerduty_secret, acked_pd));
  BOOST_TEST(rp.status == 200, rp.body);
  BOOST_TEST(answer_of(rp)["recorded"] == 1, rp.body);
  auto [pd_acked, pd_acked_file] = updated(b, b_ts, 1);
  for (auto* u : {&pd_acked, &pd_acked_file})
    if (!u->empty())
      acknowledged_message(u->at(0), b, "Bob Oncall");
  f.wait_finished(b);
  BOOST_TEST(post_count() == 4u, "posted again instead of updated");

  // 3. A click on the message the app posted: the same route, the message
  //    updated with chat.update, never through the response_url.
  auto c = f.post_events(sample_event("agent-c")).at(0);
  auto c_ts = posted(c);
  click_spec on_app_message;
  on_app_message.channel_id = channel;
  on_app_message.message_ts = c_ts.first;
  auto clicked =
      click(f, click_body(c, response_url_of(*reply), on_app_message));
  BOOST_TEST(clicked.status == 200, clicked.body << clicked.error);
  auto ev = wait_state(f, c, "acknowledged");
  BOOST_TEST(ev["acknowledged"]["source"] == "slack", ev.dump());
  auto [click_acked, click_acked_file] = updated(c, c_ts, 1);
  for (auto* u : {&click_acked, &click_acked_file})
    if (!u->empty())
      acknowledged_message(u->at(0), c, "alice");
  f.wait_finished(c);
  BOOST_TEST(post_count() == 6u, "posted again instead of updated");
  expect_quiet({reply.get()}, {0}, "a click on the app's message");

  // Nothing was updated twice, and no message but these was touched.
  BOOST_TEST(slack.calls(update, channel).size() == 4u);
  BOOST_TEST(slack.calls(update, file_channel).size() == 4u);

  // The tokens are in no line of the log.
  never_logged(f, bot_token);
  never_logged(f, file_token);
}

BOOST_AUTO_TEST_CASE(slack_errors_are_classified) {
  daemon_fixture f;
  fake_slack_api slack{f, {bot_token}};
  struct code {
    std::string error;
    bool retried;
    std::string channel = {};
  };
  std::vector<code> codes{
      {"internal_error", true},      {"fatal_error", true},
      {"service_unavailable", true}, {"not_authed", false},
      {"account_inactive", false},   {"token_revoked", false},
      {"channel_not_found", false},  {"not_in_channel", false},
      {"is_archived", false},        {"msg_too_long", false},
      {"invalid_blocks", false}};
  std::vector<endpoint_spec> eps;
  for (std::size_t i = 0; i < codes.size(); ++i) {
    auto ch = "C0ERR" + std::string(4 - std::to_string(i).size(), '0') +
              std::to_string(i);
    codes[i].channel = ch;
    // A retried error fails once, then the message goes through.
    slack.fail(ch, codes[i].error, codes[i].retried ? 1 : 1000000);
    eps.push_back(
        app_endpoint(codes[i].error, slack.url(), inline_token(bot_token), ch));
  }
  // A token Slack does not know: invalid_auth.
  eps.push_back(app_endpoint("invalid_auth", slack.url(),
                             inline_token(unknown_token), "C0AUTH00001"));
  // Rate limited once, Retry-After: 1 (the schedule's window leaves room for
  // it).
  slack.fail("C0RATE00001", "ratelimited", 1, 1);
  eps.push_back(app_endpoint("ratelimited", slack.url(),
                             inline_token(bot_token), "C0RATE00001",
                             "[0.2, 0.2, 0.2, 3]"));
  f.start(eps);

  auto id = f.post_events(sample_event()).at(0);
  auto ev = f.wait_finished(id);
  BOOST_REQUIRE_EQUAL(ev["deliveries"].size(), codes.size() + 2);

  for (auto& c : codes) {
    auto d = delivery_to(ev, c.error);
    if (c.retried) {
      BOOST_TEST(d["state"] == "delivered", c.error << ": " << d.dump());
      BOOST_TEST(d["attempts"].size() == 2u, c.error << ": " << d.dump());
      BOOST_TEST(slack.calls(post_message, c.channel).size() == 2u, c.error);
      BOOST_TEST(d["receipt"]["channel"] == c.channel, d.dump());
      BOOST_TEST(d["receipt"]["ts"] == slack.ts_of(id, c.channel), d.dump());
    } else {
      BOOST_TEST(d["state"] == "dead_lettered", c.error << ": " << d.dump());
      BOOST_TEST(d["attempts"].size() == 1u, c.error << ": " << d.dump());
      BOOST_TEST(contains(d.value("reason", ""), c.error),
                 c.error << ": " << d.dump());
      BOOST_TEST(!d.contains("receipt"), d.dump());
    }
  }
  auto auth = delivery_to(ev, "invalid_auth");
  BOOST_TEST(auth["state"] == "dead_lettered", auth.dump());
  BOOST_TEST(auth["attempts"].size() == 1u, auth.dump());
  BOOST_TEST(contains(auth.value("reason", ""), "invalid_auth"), auth.dump());

  // ratelimited: retried, no sooner than Slack asked.
  auto limited = delivery_to(ev, "ratelimited");
  BOOST_TEST(limited["state"] == "delivered", limited.dump());
  BOOST_TEST(limited["attempts"].size() == 2u, limited.dump());
  auto reqs = slack.calls(post_message, "C0RATE00001");
  BOOST_REQUIRE_EQUAL(reqs.size(), 2u);
  auto gap = std::chrono::duration_cast<std::chrono::milliseconds>(reqs[1].at -
                                                                   reqs[0].at)
                 .count();
  BOOST_TEST_MESSAGE("slack app: 429 then the retry " << gap << " ms later");
  BOOST_TEST(gap >= 1000, "the retry came " << gap << " ms after the 429");
  BOOST_TEST(reqs[0].body == reqs[1].body);

  // Nothing more was tried: every delivery is finished (no attempt follows
  // a final state) and each attempt is recorded before it is sent, so the
  // calls Slack saw are the attempts, no waiting needed.
  for (auto& c : codes)
    BOOST_TEST(slack.calls(post_message, c.channel).size() ==
                   (c.retried ? 2u : 1u),
               c.error);
  BOOST_TEST(slack.calls(post_message, "C0AUTH00001").size() == 1u);
  never_logged(f, bot_token);
  never_logged(f, unknown_token);
}

BOOST_AUTO_TEST_CASE(the_message_is_updated_after_a_kill_9) {
  daemon_fixture f;
  fake_slack_api slack{f, {bot_token}};
  f.start({app_endpoint("app", slack.url(), inline_token(bot_token), channel)});

  auto id = f.post_events(sample_event()).at(0);
  auto ev = wait_deliveries(f, id, 1);
  auto ts = check_posted(slack, ev, "app", channel, bot_token);

  f.kill9();
  f.restart();
  ev = f.event(id);
  auto d = delivery_to(ev, "app");
  BOOST_TEST(d["receipt"]["channel"] == channel, d.dump());
  BOOST_TEST(d["receipt"]["ts"] == ts, d.dump());

  auto r = f.call("POST", "/v1/events/" + id + "/ack", {{"by", "dana"}});
  BOOST_REQUIRE_MESSAGE(r.status == 200, r.status << " " << r.body);
  auto updates = wait_updates(slack, channel, ts, bot_token, 1);
  BOOST_TEST(updates.size() == 1u);
  if (!updates.empty())
    acknowledged_message(updates[0], id, "dana");
  f.wait_finished(id);
  BOOST_TEST(slack.calls(post_message, channel).size() == 1u);
  BOOST_TEST(slack.calls(update, channel).size() == 1u);
  never_logged(f, bot_token);
}

BOOST_AUTO_TEST_SUITE_END()
