// Transport plugins through the real daemon: a third party's plugin loaded
// from server.plugins_dir next to bad ones that are refused, and the shipped
// slack and pagerduty transports against HTTPS receivers that answer as Slack
// and PagerDuty do, each answer classified as it should be.
#include "tests/e2e/fixture.hpp"
#include "tests/support/run_command.hpp"

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <sstream>
#include <thread>

using namespace tocsin::test;
using nlohmann::json;

namespace {

constexpr auto wait_time = std::chrono::seconds{10};

/// A fast schedule for answers that are not retried or retried once.
const json fast_schedule = {0.05, 0.05, 0.05, 0.05};
/// A schedule whose window (3.6 s) leaves room for a Retry-After of 1 s,
/// which the host only honours when it fits into the window.
const json retry_after_schedule = {0.2, 0.2, 0.2, 3};

/// The delivery of `ev` (GET /v1/events/{id}) to endpoint `endpoint_id`.
json delivery_to(const json& ev, const std::string& endpoint_id) {
  for (auto& d : ev["deliveries"])
    if (d["endpoint_id"] == endpoint_id)
      return d;
  BOOST_FAIL("no delivery to " << endpoint_id << " in " << ev.dump());
  return {};
}

bool starts_with(const std::string& text, const std::string& prefix) {
  return text.rfind(prefix, 0) == 0;
}

/// No Standard Webhooks header: the transport is not signed.
void check_unsigned(const received_request& req) {
  BOOST_TEST(req.headers.count("webhook-signature") == 0u);
  BOOST_TEST(req.headers.count("webhook-id") == 0u);
  BOOST_TEST(req.headers.count("webhook-timestamp") == 0u);
}

/// The daemon's "plugin refused" log record for the file `name`, as JSON.
json refusal_logged(const std::string& log, const std::string& name) {
  std::istringstream lines{log};
  for (std::string line; std::getline(lines, line);) {
    auto j = json::parse(line, nullptr, false);
    if (j.is_object() && j.value("msg", "") == "plugin refused" &&
        j["path"].is_string() &&
        std::filesystem::path{j["path"].get<std::string>()}.filename() == name)
      return j;
  }
  return nullptr;
}

/// Runs `tocsin args...` in `dir`, stdout and stderr captured; waits at most
/// 30 s.
command_result run_tocsin(const std::vector<std::string>& args,
                          const std::filesystem::path& dir) {
  std::vector<std::string> argv{TOCSIN_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = run_command(argv, {.cwd = dir});
  BOOST_TEST(!r.timed_out, "tocsin did not finish within 30 s");
  return r;
}

/// The first word of each line of `tocsin plugins`' table, but the header.
std::vector<std::string> listed_names(const std::string& out) {
  std::vector<std::string> names;
  std::istringstream lines{out};
  std::string line;
  std::getline(lines, line); // tocsin <version>, plugin ABI version 2, ...
  BOOST_TEST(starts_with(line, "tocsin "), line);
  BOOST_TEST(contains(line, "plugin ABI version 2"), line);
  std::getline(lines, line); // NAME VERSION PATH
  BOOST_TEST(starts_with(line, "NAME"), line);
  while (std::getline(lines, line)) {
    std::istringstream words{line};
    std::string name;
    if (words >> name)
      names.push_back(name);
  }
  return names;
}

/// The line of `out` that starts with `prefix`, or "".
std::string line_starting(const std::string& out, const std::string& prefix) {
  std::istringstream lines{out};
  for (std::string line; std::getline(lines, line);)
    if (starts_with(line, prefix))
      return line;
  return {};
}

// The tests count requests: their endpoints take the events they send, not
// the system.health events raised when another of them dead-letters.
json slack_endpoint(const https_receiver& r, const json& schedule) {
  return {{"url", daemon_fixture::url_of(r)},
          {"transport", "slack"},
          {"event_types", {"policy.denied"}},
          {"retry_schedule", schedule}};
}

constexpr const char* routing_key = "R0ut1ngKeyR0ut1ngKeyR0ut1ngKey32";

json pagerduty_endpoint(const https_receiver& r) {
  return {{"url", daemon_fixture::url_of(r)},
          {"transport", "pagerduty"},
          {"event_types", {"policy.denied"}},
          {"options", {{"routing_key", routing_key}}},
          {"retry_schedule", fast_schedule}};
}

} // namespace

BOOST_AUTO_TEST_SUITE(transports)

BOOST_AUTO_TEST_CASE(
    a_third_party_plugin_delivers_and_bad_plugins_are_refused) {
  daemon_fixture f;
  auto plugins = f.dir() / "plugins";
  std::filesystem::create_directories(plugins);
  for (auto* name : {"discord.so", "wrong_abi.so", "no_entry.so", "abi_v1.so"})
    std::filesystem::copy_file(
        std::filesystem::path{TOCSIN_TEST_PLUGINS_DIR} / name, plugins / name);
  auto receiver = f.make_receiver(always(answer(204, "")));
  f.start({}, daemon_fixture::plugins_dir_setting(plugins));

  // The bad plugins are refused with their reasons; the daemon runs on.
  BOOST_TEST(f.process().running());
  auto log = f.process().log();
  auto wrong_abi = refusal_logged(log, "wrong_abi.so");
  BOOST_REQUIRE_MESSAGE(!wrong_abi.is_null(), log);
  BOOST_TEST(contains(wrong_abi.value("reason", ""),
                      "ABI version 3, this tocsin speaks 2"),
             wrong_abi.dump());
  auto no_entry = refusal_logged(log, "no_entry.so");
  BOOST_REQUIRE_MESSAGE(!no_entry.is_null(), log);
  BOOST_TEST(contains(no_entry.value("reason", ""), "tocsin_plugin_entry_v2"),
             no_entry.dump());
  auto v1 = refusal_logged(log, "abi_v1.so");
  BOOST_REQUIRE_MESSAGE(!v1.is_null(), log);
  BOOST_TEST(contains(v1.value("reason", ""), "built for plugin ABI version 1"),
             v1.dump());
  BOOST_TEST(contains(v1.value("reason", ""), "rebuild it"), v1.dump());
  BOOST_TEST(refusal_logged(log, "discord.so").is_null(), log);

  // An endpoint of the third party's transport gets the Discord message.
  auto ep = create_endpoint(f, {{"url", daemon_fixture::url_of(*receiver)},
                                {"transport", "discord"},
                                {"retry_schedule", fast_schedule}});
  BOOST_TEST(ep["transport"] == "discord");
  auto event = sample_event();
  event["severity"] = "high";
  auto ids = f.post_events(event);
  BOOST_REQUIRE(receiver->wait_for(1, wait_time));
  auto req = receiver->requests().at(0);
  BOOST_TEST(req.method == "POST");
  BOOST_TEST(req.target == "/hook");
  BOOST_TEST(req.headers["content-type"] == "application/json");
  check_unsigned(req); // discord's table has no flags: unsigned
  auto body = json::parse(req.body, nullptr, false);
  BOOST_REQUIRE_MESSAGE(body.is_object(), req.body);
  BOOST_TEST(body["content"] == "**policy.denied** (high)");
  BOOST_TEST(body["allowed_mentions"]["parse"] == json::array());
  BOOST_REQUIRE(body["embeds"].is_array() && body["embeds"].size() == 1u);
  auto& embed = body["embeds"][0];
  BOOST_TEST(embed["title"] == "policy.denied (high)");
  BOOST_TEST(embed["description"] == event["summary"]);
  bool event_field = false, agent_field = false;
  for (auto& field : embed["fields"]) {
    event_field =
        event_field || (field["name"] == "Event" && field["value"] == ids[0]);
    agent_field = agent_field ||
                  (field["name"] == "Agent" && field["value"] == "agent-7");
  }
  BOOST_TEST(event_field, embed.dump());
  BOOST_TEST(agent_field, embed.dump());
  auto ev = f.wait_finished(ids[0]);
  auto d = delivery_to(ev, ep["id"].get<std::string>());
  BOOST_TEST(d["state"] == "delivered", d.dump());
  BOOST_TEST(d["attempts"].size() == 1u);

  // Only what that directory holds is known: not even the shipped webhook.
  auto refused = f.call(
      "POST", "/v1/endpoints",
      {{"url", daemon_fixture::url_of(*receiver)}, {"transport", "webhook"}});
  BOOST_TEST(refused.status == 400);
  BOOST_TEST(error_of(refused)["code"] == "unknown_transport", refused.body);
  auto list = json::parse(f.get("/v1/endpoints", f.admin_token()).body);
  BOOST_TEST(list["endpoints"].size() == 1u);

  // tocsin plugins with that config: discord listed, the refusals, exit 1.
  auto with_config =
      run_tocsin({"plugins", "--config", f.config_file().string()}, f.dir());
  BOOST_TEST(with_config.code == 1, with_config);
  BOOST_TEST(listed_names(with_config.out) ==
                 std::vector<std::string>{"discord"},
             with_config);
  auto discord_line = line_starting(with_config.out, "discord");
  BOOST_TEST(contains(discord_line, "1.0.0"), with_config);
  BOOST_TEST(contains(discord_line, (plugins / "discord.so").string()),
             with_config);
  auto wrong_abi_line = line_starting(with_config.err, "refused: wrong_abi.so");
  BOOST_TEST(contains(wrong_abi_line, "ABI version 3"), with_config);
  auto v1_line = line_starting(with_config.err, "refused: abi_v1.so");
  BOOST_TEST(contains(v1_line, "rebuild it"), with_config);
  auto no_entry_line = line_starting(with_config.err, "refused: no_entry.so");
  BOOST_TEST(contains(no_entry_line, "tocsin_plugin_entry"), with_config);

  // Without a config: the shipped transports next to the binary, exit 0.
  auto defaults = run_tocsin({"plugins"}, f.dir());
  BOOST_TEST(defaults.code == 0, defaults);
  auto names = listed_names(defaults.out);
  std::sort(names.begin(), names.end());
  BOOST_TEST(
      (names == std::vector<std::string>{"pagerduty", "slack", "webhook"}),
      defaults);
  BOOST_TEST(!contains(defaults.err, "refused"), defaults);
}

BOOST_AUTO_TEST_CASE(a_slack_endpoint_in_the_config_file_needs_no_secret) {
  // What a newcomer writes first: no secret (Slack requests are not signed).
  daemon_fixture f;
  auto slack = f.make_receiver(always(answer(200, "ok")));
  endpoint_spec ep{"alerts", daemon_fixture::url_of(*slack),
                   "[0.05, 0.05, 0.05, 0.05]", "transport = \"slack\"\n"};
  ep.with_secret = false;
  f.start({ep});
  auto listed =
      json::parse(f.get("/v1/endpoints/alerts", f.admin_token()).body);
  BOOST_TEST(listed["transport"] == "slack");
  BOOST_TEST(listed["signature"].is_null());
  auto id = f.post_events(sample_event()).at(0);
  BOOST_TEST(f.wait_finished(id)["deliveries"][0]["state"] == "delivered");
  BOOST_REQUIRE(slack->wait_for(1, wait_time));
  BOOST_TEST(slack->requests()[0].headers.count("webhook-signature") == 0u);
}

BOOST_AUTO_TEST_CASE(slack_answers_are_classified) {
  daemon_fixture f;
  // One receiver and endpoint per answer; one event goes to all four.
  auto ok = f.make_receiver(always(answer(200, "ok")));
  auto invalid = f.make_receiver(always(answer(400, "invalid_payload")));
  auto limited = f.make_receiver(first_then(
      answer(429, "rate_limited", {{"Retry-After", "1"}}), answer(200, "ok")));
  auto archived = f.make_receiver(always(answer(410, "channel_is_archived")));
  f.start({});
  auto ok_body = slack_endpoint(*ok, fast_schedule);
  ok_body["options"] = {{"channel", "#ai-safety"}, {"username", "tocsin"}};
  auto ep_ok = create_endpoint(f, ok_body)["id"].get<std::string>();
  auto ep_invalid =
      create_endpoint(f, slack_endpoint(*invalid, fast_schedule))["id"]
          .get<std::string>();
  auto ep_limited =
      create_endpoint(f, slack_endpoint(*limited, retry_after_schedule))["id"]
          .get<std::string>();
  auto ep_archived =
      create_endpoint(f, slack_endpoint(*archived, fast_schedule))["id"]
          .get<std::string>();
  // Options are the transport's to check.
  auto bad_options = slack_endpoint(*ok, fast_schedule);
  bad_options["options"] = {{"color", "red"}};
  auto refused = f.call("POST", "/v1/endpoints", bad_options);
  BOOST_TEST(refused.status == 400);
  BOOST_TEST(error_of(refused)["code"] == "invalid_options", refused.body);

  auto event = sample_event();
  event["severity"] = "high";
  auto ids = f.post_events(event);
  auto ev = f.wait_finished(ids[0]);
  BOOST_REQUIRE_EQUAL(ev["deliveries"].size(), 4u);

  // 200 ok: delivered, with a Block Kit message, unsigned.
  auto d_ok = delivery_to(ev, ep_ok);
  BOOST_TEST(d_ok["state"] == "delivered", d_ok.dump());
  BOOST_TEST(d_ok["attempts"].size() == 1u);
  BOOST_REQUIRE_EQUAL(ok->count(), 1u);
  auto req = ok->requests().at(0);
  BOOST_TEST(req.method == "POST");
  BOOST_TEST(starts_with(req.headers["content-type"], "application/json"));
  check_unsigned(req);
  auto body = json::parse(req.body, nullptr, false);
  BOOST_REQUIRE_MESSAGE(body.is_object(), req.body);
  BOOST_TEST(body["channel"] == "#ai-safety");
  BOOST_TEST(body["username"] == "tocsin");
  BOOST_TEST(contains(body.value("text", ""), "policy.denied"), body.dump());
  BOOST_REQUIRE_MESSAGE(body["blocks"].is_array() && !body["blocks"].empty(),
                        body.dump());
  auto& header = body["blocks"][0];
  BOOST_TEST(header["type"] == "header");
  BOOST_TEST(header["text"]["type"] == "plain_text");
  BOOST_TEST(contains(header["text"].value("text", ""), "policy.denied"),
             header.dump());
  bool summary_shown = false;
  json ack;
  for (auto& block : body["blocks"]) {
    if (block["type"] == "section" && block.contains("text"))
      summary_shown = summary_shown ||
                      contains(block["text"].value("text", ""), "file.delete");
    if (block["type"] == "actions")
      for (auto& element : block["elements"])
        if (element["action_id"] == "tocsin.ack")
          ack = element;
  }
  BOOST_TEST(summary_shown, body.dump());
  BOOST_REQUIRE_MESSAGE(ack.is_object(), body.dump());
  BOOST_TEST(ack["type"] == "button");
  BOOST_TEST(ack["text"]["text"] == "Acknowledge");
  BOOST_TEST(ack["value"] == ids[0]);

  // 400 invalid_payload: dead-lettered after one attempt, Slack's word kept.
  auto d_invalid = delivery_to(ev, ep_invalid);
  BOOST_TEST(d_invalid["state"] == "dead_lettered", d_invalid.dump());
  BOOST_REQUIRE_EQUAL(d_invalid["attempts"].size(), 1u);
  BOOST_TEST(d_invalid["attempts"][0]["status"] == 400);
  BOOST_TEST(d_invalid["attempts"][0]["response"] == "invalid_payload");
  auto invalid_reason = d_invalid.value("reason", "");
  BOOST_TEST(starts_with(invalid_reason, "rejected_http_400"), invalid_reason);
  BOOST_TEST(contains(invalid_reason, "invalid_payload"), invalid_reason);

  // 429 with Retry-After: 1, then 200 ok: delivered on the second attempt,
  // no sooner than Slack asked.
  auto d_limited = delivery_to(ev, ep_limited);
  BOOST_TEST(d_limited["state"] == "delivered", d_limited.dump());
  BOOST_REQUIRE_EQUAL(d_limited["attempts"].size(), 2u);
  BOOST_TEST(d_limited["attempts"][0]["status"] == 429);
  BOOST_TEST(d_limited["attempts"][1]["status"] == 200);
  auto gap = attempt_gaps_ms(d_limited).at(0);
  BOOST_TEST_MESSAGE("slack: " << invalid_reason << " | 429 gap " << gap
                               << " ms");
  BOOST_TEST(gap >= 1000, "gap " << gap);
  BOOST_TEST(gap <= 2000, "gap " << gap);
  BOOST_REQUIRE_EQUAL(limited->count(), 2u);
  auto reqs = limited->requests();
  auto gap_seen = std::chrono::duration_cast<std::chrono::milliseconds>(
                      reqs[1].at - reqs[0].at)
                      .count();
  BOOST_TEST(gap_seen >= 950, "gap at the receiver " << gap_seen);
  BOOST_TEST(reqs[0].body == reqs[1].body); // the same message again

  // 410 channel_is_archived: dead-lettered at once, the endpoint flagged.
  auto d_archived = delivery_to(ev, ep_archived);
  BOOST_TEST(d_archived["state"] == "dead_lettered", d_archived.dump());
  BOOST_TEST(d_archived["attempts"].size() == 1u);
  auto archived_reason = d_archived.value("reason", "");
  BOOST_TEST(starts_with(archived_reason, "endpoint_gone"), archived_reason);
  BOOST_TEST(contains(archived_reason, "channel_is_archived"), archived_reason);
  BOOST_TEST_MESSAGE("slack: " << archived_reason);
  BOOST_TEST(contains(f.process().log(), "flagged for review"));

  // Nothing more is tried.
  std::this_thread::sleep_for(std::chrono::milliseconds{300});
  BOOST_TEST(ok->count() == 1u);
  BOOST_TEST(invalid->count() == 1u);
  BOOST_TEST(limited->count() == 2u);
  BOOST_TEST(archived->count() == 1u);
}

BOOST_AUTO_TEST_CASE(pagerduty_answers_are_classified) {
  daemon_fixture f;
  auto accepted = f.make_receiver(
      always(answer(202, R"({"status":"success","message":"Event processed",)"
                         R"("dedup_key":"x"})")));
  auto invalid = f.make_receiver(always(answer(
      400, R"({"status":"invalid event","message":"Event object is invalid",)"
           R"("errors":["Length of 'routing_key' is incorrect"]})")));
  auto limited = f.make_receiver(
      first_then(answer(429, ""), answer(202, R"({"status":"success"})")));
  f.start({});

  // A routing key of the wrong length, or none, is refused at creation.
  auto short_key = pagerduty_endpoint(*accepted);
  short_key["options"]["routing_key"] = "R0ut1ngKey";
  auto r1 = f.call("POST", "/v1/endpoints", short_key);
  BOOST_TEST(r1.status == 400);
  auto e1 = error_of(r1);
  BOOST_TEST(e1["code"] == "invalid_options", r1.body);
  BOOST_TEST(contains(e1.value("message", ""), "routing_key"), r1.body);
  auto no_key = pagerduty_endpoint(*accepted);
  no_key["options"] = json::object();
  auto r2 = f.call("POST", "/v1/endpoints", no_key);
  BOOST_TEST(r2.status == 400);
  BOOST_TEST(error_of(r2)["code"] == "invalid_options", r2.body);
  BOOST_TEST(
      json::parse(f.get("/v1/endpoints", f.admin_token()).body)["endpoints"]
          .empty());

  auto ep_accepted = create_endpoint(f, pagerduty_endpoint(*accepted))["id"]
                         .get<std::string>();
  auto ep_invalid =
      create_endpoint(f, pagerduty_endpoint(*invalid))["id"].get<std::string>();
  auto ep_limited =
      create_endpoint(f, pagerduty_endpoint(*limited))["id"].get<std::string>();

  auto event = sample_event();
  event["severity"] = "high";
  auto ids = f.post_events(event);
  auto ev = f.wait_finished(ids[0]);
  BOOST_REQUIRE_EQUAL(ev["deliveries"].size(), 3u);

  // 202: delivered; an Events API v2 trigger, unsigned.
  auto d_accepted = delivery_to(ev, ep_accepted);
  BOOST_TEST(d_accepted["state"] == "delivered", d_accepted.dump());
  BOOST_REQUIRE_EQUAL(d_accepted["attempts"].size(), 1u);
  BOOST_TEST(d_accepted["attempts"][0]["status"] == 202);
  BOOST_REQUIRE_EQUAL(accepted->count(), 1u);
  auto req = accepted->requests().at(0);
  BOOST_TEST(req.method == "POST");
  BOOST_TEST(starts_with(req.headers["content-type"], "application/json"));
  check_unsigned(req);
  auto body = json::parse(req.body, nullptr, false);
  BOOST_REQUIRE_MESSAGE(body.is_object(), req.body);
  BOOST_TEST(body["routing_key"] == routing_key);
  BOOST_TEST(body["event_action"] == "trigger");
  BOOST_TEST(body["dedup_key"] == "tocsin-" + ids[0]);
  BOOST_TEST(body["payload"]["severity"] == "error"); // high -> error
  BOOST_TEST(body["payload"]["summary"] == event["summary"]);
  BOOST_TEST(body["payload"]["source"] == "agent-7");
  BOOST_TEST(body["payload"]["class"] == "policy.denied");
  BOOST_TEST(body["payload"]["component"] == "policy");
  BOOST_TEST(body["payload"]["custom_details"]["rule"] == "block-delete");
  BOOST_TEST(body["payload"]["custom_details"]["event_id"] == ids[0]);

  // A change to a bad routing key is refused too, and changes nothing.
  auto patched = f.call("PATCH", "/v1/endpoints/" + ep_accepted,
                        {{"options", {{"routing_key", "tooshort"}}}});
  BOOST_TEST(patched.status == 400);
  BOOST_TEST(error_of(patched)["code"] == "invalid_options", patched.body);
  auto kept =
      json::parse(f.get("/v1/endpoints/" + ep_accepted, f.admin_token()).body);
  // (Shown masked: the key is a credential.)
  BOOST_TEST(kept["options"]["routing_key"] ==
                 "\u2026" + std::string{routing_key}.substr(28),
             kept.dump());

  // 400 with PagerDuty's error body: dead-lettered, its errors kept.
  auto d_invalid = delivery_to(ev, ep_invalid);
  BOOST_TEST(d_invalid["state"] == "dead_lettered", d_invalid.dump());
  BOOST_TEST(d_invalid["attempts"].size() == 1u);
  auto invalid_reason = d_invalid.value("reason", "");
  BOOST_TEST(starts_with(invalid_reason, "rejected_http_400"), invalid_reason);
  BOOST_TEST(contains(invalid_reason, "routing_key"), invalid_reason);
  BOOST_TEST_MESSAGE("pagerduty: " << invalid_reason << " | "
                                   << e1.value("message", ""));

  // 429, then 202: delivered on the second attempt, the same dedup_key.
  auto d_limited = delivery_to(ev, ep_limited);
  BOOST_TEST(d_limited["state"] == "delivered", d_limited.dump());
  BOOST_REQUIRE_EQUAL(d_limited["attempts"].size(), 2u);
  BOOST_TEST(d_limited["attempts"][0]["status"] == 429);
  BOOST_TEST(d_limited["attempts"][1]["status"] == 202);
  BOOST_REQUIRE_EQUAL(limited->count(), 2u);
  auto reqs = limited->requests();
  BOOST_TEST(json::parse(reqs[0].body)["dedup_key"] == "tocsin-" + ids[0]);
  BOOST_TEST(json::parse(reqs[1].body)["dedup_key"] == "tocsin-" + ids[0]);

  std::this_thread::sleep_for(std::chrono::milliseconds{300});
  BOOST_TEST(accepted->count() == 1u);
  BOOST_TEST(invalid->count() == 1u);
  BOOST_TEST(limited->count() == 2u);
}

BOOST_AUTO_TEST_SUITE_END()
