// The daemon against its own description: one daemon (with deliveries that
// succeed, one that dead-letters, a PagerDuty endpoint, and both
// integrations enabled) is walked through every route of the description
// it serves at GET /v1/openapi.json, with valid and invalid requests, and
// every answer is checked against it: the status documented for that
// operation, the body valid against its schema, no field the schema does
// not name. The walk must reach every operation of the description (the
// router and the description list the same routes: api_tests
// openapi_description).
#include "tests/e2e/answering.hpp"
#include "tests/e2e/fixture.hpp"
#include "tests/support/openapi_checker.hpp"
#include "tests/support/ws_client.hpp"

#include <boost/test/unit_test.hpp>

#include <memory>

using namespace tocsin::test;
using nlohmann::json;

namespace {

const std::string admin = "openapi-admin-token";
const std::string producer = "openapi-ingest-token";
const std::string reader = "openapi-read-token";

using headers = std::vector<std::pair<std::string, std::string>>;

headers as(const std::string& token, const std::string& content_type = {}) {
  headers h;
  if (!token.empty())
    h.emplace_back("authorization", "Bearer " + token);
  if (!content_type.empty())
    h.emplace_back("content-type", content_type);
  return h;
}

/// Sends requests and checks each answer against the description (and the
/// status the walk expects, so that it walks what it means to).
struct walker {
  daemon_fixture& f;
  openapi_checker& spec;

  http_result send(const std::string& method, const std::string& target,
                   int expected, const headers& h = {},
                   const std::string& body = {}) {
    auto r = f.client().request(method, target, body, h);
    BOOST_TEST(r.status == expected, method << " " << target << ": " << r.status
                                            << " " << r.body << r.error);
    auto type = r.headers.count("content-type") ? r.headers["content-type"]
                                                : std::string{};
    for (auto& problem :
         spec.check_answer(method, target, r.status, type, r.body))
      BOOST_ERROR(problem);
    return r;
  }
  /// A JSON body as `token`.
  http_result send_json(const std::string& method, const std::string& target,
                        int expected, const std::string& token,
                        const json& body) {
    return send(method, target, expected, as(token, "application/json"),
                body.dump());
  }
};

/// The status and body of a raw HTTP/1.1 answer (Content-Length framed).
std::pair<int, std::string> status_and_body(const std::string& raw) {
  if (raw.size() < 12)
    return {0, raw};
  auto end = raw.find("\r\n\r\n");
  return {std::stoi(raw.substr(9, 3)),
          end == std::string::npos ? std::string{} : raw.substr(end + 4)};
}

} // namespace

BOOST_AUTO_TEST_SUITE(openapi)

BOOST_AUTO_TEST_CASE(every_route_answers_as_its_description_says) {
  daemon_fixture f;
  auto receiver = f.make_receiver([](const received_request& r, std::size_t) {
    if (r.target == "/fail")
      return answer(400, "no");
    if (r.target == "/pd")
      return pagerduty_accepted();
    return answer(200);
  });
  auto base = "https://127.0.0.1:" + std::to_string(receiver->port());
  f.use_admin_token(admin);
  f.start({{"ops", base + "/hook", "[0.05]",
            "event_types = [\"policy.denied\", \"content.detected\", "
            "\"anomaly.detected\"]\n"},
           {"failing", base + "/fail", "[0.05]",
            "event_types = [\"anomaly.detected\"]\n"},
           {"pd", base + "/pd", "[0.05]",
            "transport = \"pagerduty\"\nevent_types = [\"content.detected\"]\n"
            "options = { routing_key = \"" +
                std::string{routing_key} + "\" }\n",
            false}},
          "max_body_bytes = 65536\n",
          token_toml("admin", admin, "admin") +
              token_toml("producer", producer, "ingest") +
              token_toml("reader", reader, "read") + slack_config() +
              pagerduty_config());

  // The description as served is what every answer is checked against.
  auto served = f.client().request("GET", "/v1/openapi.json");
  BOOST_REQUIRE_EQUAL(served.status, 200);
  openapi_checker spec{json::parse(served.body)};
  walker w{f, spec};

  // ---- operations ----------------------------------------------------------
  auto doc = w.send("GET", "/v1/openapi.json", 200);
  BOOST_TEST(doc.body == served.body);
  w.send("GET", "/v1/openapi.json", 304,
         {{"if-none-match", doc.headers["etag"]}});
  w.send("GET", "/", 200);
  w.send("GET", "/dashboard/app.js", 200);
  w.send("GET", "/dashboard/style.css", 200);
  w.send("GET", "/dashboard/nope.js", 404);
  w.send("GET", "/healthz", 200);
  w.send("GET", "/readyz", 200);
  w.send("GET", "/metrics", 200, as(reader));
  w.send("GET", "/metrics", 401);
  w.send("GET", "/metrics", 403, as(producer));
  w.send("GET", "/v1/cluster", 200, as(reader));
  w.send("GET", "/v1/cluster", 401);
  w.send("GET", "/v1/cluster", 403, as(producer));

  // ---- events --------------------------------------------------------------
  auto one = w.send_json("POST", "/v1/events", 202, producer, sample_event());
  auto one_answer = json::parse(one.body);
  auto denied = one_answer["ids"][0].get<std::string>();
  BOOST_TEST(one_answer["events"][0]["deliveries"] == 1); // ops
  BOOST_TEST(!one_answer.contains("warnings"));
  auto anomaly = sample_event("agent-a");
  anomaly["type"] = "anomaly.detected";
  auto content = sample_event("agent-c");
  content["type"] = "content.detected";
  json health{{"type", "system.health"}, {"summary", "scanner restarted"}};
  auto batch = json::parse(w.send_json("POST", "/v1/events", 202, producer,
                                       {{"events", {anomaly, health, content}}})
                               .body);
  BOOST_TEST(batch["deliveries"] == 4);
  BOOST_TEST(batch["events"][0]["deliveries"] == 2); // ops, failing
  BOOST_TEST(batch["events"][1]["deliveries"] == 0); // nobody takes health
  BOOST_TEST(batch["events"][2]["deliveries"] == 2); // ops, pd
  BOOST_REQUIRE_EQUAL(batch["warnings"].size(), 1u);
  BOOST_TEST(batch["warnings"][0]["code"] == "no_endpoint_matched");
  BOOST_TEST(batch["warnings"][0]["event_id"] == batch["ids"][1]);
  auto dead_event = batch["ids"][0].get<std::string>();
  auto pd_event = batch["ids"][2].get<std::string>();
  auto keyed = as(producer, "application/json");
  keyed.emplace_back("idempotency-key", "openapi-k1");
  auto first = json::parse(
      w.send("POST", "/v1/events", 202, keyed, sample_event("k").dump()).body);
  auto again = json::parse(
      w.send("POST", "/v1/events", 202, keyed, sample_event("k").dump()).body);
  BOOST_TEST(again["ids"] == first["ids"]);
  BOOST_TEST(again["events"][0]["repeat"] == true);
  BOOST_TEST(!again.contains("warnings"));
  w.send("POST", "/v1/events", 422, keyed, sample_event("other").dump());
  w.send_json("POST", "/v1/events", 400, producer,
              {{"type", "policy.denied"}, {"agent_id", "a"}});
  w.send("POST", "/v1/events", 415, as(producer, "text/plain"), "hello");
  w.send_json("POST", "/v1/events", 401, "", sample_event());
  w.send_json("POST", "/v1/events", 403, reader, sample_event());
  w.send("POST", "/v1/events", 413, as(producer, "application/json"),
         std::string(70000, ' '));

  // Everything delivered, dead-lettered or sent to PagerDuty before reading.
  for (auto& id : {denied, dead_event, pd_event})
    BOOST_REQUIRE(f.wait_finished(id)["deliveries"].size() >= 1u);

  auto page =
      json::parse(w.send("GET", "/v1/events?limit=2", 200, as(reader)).body);
  BOOST_REQUIRE(page["next_cursor"].is_string());
  w.send("GET",
         "/v1/events?limit=2&cursor=" + page["next_cursor"].get<std::string>(),
         200, as(reader));
  w.send("GET", "/v1/events?state=open&type=policy.denied&severity=high", 200,
         as(reader));
  w.send("GET", "/v1/events?state=bogus", 400, as(reader));
  w.send("GET", "/v1/events", 401);
  w.send("GET", "/v1/events", 403, as(producer));
  w.send("GET", "/v1/events/" + dead_event, 200, as(reader));
  w.send("GET", "/v1/events/evt_01JD0000000000000000000000", 404, as(reader));
  w.send("GET", "/v1/events/" + denied, 403, as(producer));

  auto ack = "/v1/events/" + denied + "/ack";
  w.send_json("POST", ack, 200, admin, {{"by", "alice"}, {"note", "looking"}});
  auto same = json::parse(w.send("POST", ack, 200, as(admin)).body);
  BOOST_TEST(same["changed"] == false);
  w.send_json("POST", ack, 400, admin, {{"who", "alice"}});
  w.send("POST", ack, 415, as(admin, "text/plain"), "alice");
  w.send("POST", "/v1/events/evt_01JD0000000000000000000000/ack", 404,
         as(admin));
  w.send("POST", ack, 403, as(reader));
  w.send("POST", ack, 401);
  auto resolve = "/v1/events/" + denied + "/resolve";
  w.send_json("POST", resolve, 200, admin, {{"note", "fixed"}});
  w.send_json("POST", resolve, 400, admin, {{"note", ""}});
  w.send("POST", resolve, 415, as(admin, "text/plain"), "x");
  w.send("POST", "/v1/events/evt_01JD0000000000000000000000/resolve", 404,
         as(admin));
  w.send("POST", resolve, 403, as(producer));
  w.send("POST", resolve, 401);
  w.send("GET", "/v1/events/" + denied, 200, as(reader)); // with its answers

  // ---- dead letters --------------------------------------------------------
  auto dead = json::parse(
      w.send("GET", "/v1/dead-letters?limit=1", 200, as(reader)).body);
  BOOST_REQUIRE_EQUAL(dead["dead_letters"].size(), 1u);
  BOOST_TEST(dead.contains("next_after"));
  auto dlv = dead["dead_letters"][0]["id"].get<std::string>();
  w.send("GET",
         "/v1/dead-letters?after=" + dead["next_after"].get<std::string>(), 200,
         as(reader));
  w.send("GET", "/v1/dead-letters?limit=0", 400, as(reader));
  w.send("GET", "/v1/dead-letters", 401);
  w.send("GET", "/v1/dead-letters", 403, as(producer));
  auto delivered = f.event(denied)["deliveries"][0]["id"].get<std::string>();
  w.send("POST", "/v1/dead-letters/" + dlv + "/replay", 202, as(admin));
  w.send("POST", "/v1/dead-letters/" + delivered + "/replay", 409, as(admin));
  w.send("POST", "/v1/dead-letters/dlv_01JD0000000000000000000000/replay", 404,
         as(admin));
  w.send("POST", "/v1/dead-letters/" + dlv + "/replay", 403, as(reader));
  w.send("POST", "/v1/dead-letters/" + dlv + "/replay", 401);

  // ---- endpoints -----------------------------------------------------------
  w.send("GET", "/v1/endpoints", 200, as(reader));
  w.send("GET", "/v1/endpoints", 401);
  w.send("GET", "/v1/endpoints", 403, as(producer));
  auto created = json::parse(
      w.send_json("POST", "/v1/endpoints", 201, admin,
                  {{"id", "api-ep"},
                   {"url", base + "/hook"},
                   {"event_types", {"policy.denied"}},
                   {"rate_limit", {{"per_second", 50}, {"burst", 5}}},
                   {"circuit_breaker", {{"failures", 3}, {"cooldown", 1}}}})
          .body);
  BOOST_TEST(created["secret"].is_string());
  auto later = json::parse(w.send_json("POST", "/v1/endpoints", 201, admin,
                                       {{"id", "later"},
                                        {"url", "https://hooks.invalid/in"},
                                        {"signature", "ed25519"}})
                               .body);
  BOOST_REQUIRE_EQUAL(later["warnings"].size(), 1u);
  BOOST_TEST(later["warnings"][0]["code"] == "unresolved_host");
  w.send_json("POST", "/v1/endpoints", 409, admin,
              {{"id", "api-ep"}, {"url", base + "/hook"}});
  w.send_json("POST", "/v1/endpoints", 400, admin,
              {{"url", "http://hooks.example.com/in"}});
  auto refused = w.send_json("POST", "/v1/endpoints", 422, admin,
                             {{"url", "https://10.0.0.1/in"}});
  BOOST_TEST(contains(refused.body, "delivery.allow_networks"), refused.body);
  w.send("POST", "/v1/endpoints", 415, as(admin, "text/plain"), "url");
  w.send("POST", "/v1/endpoints", 413, as(admin, "application/json"),
         std::string(70000, ' '));
  w.send_json("POST", "/v1/endpoints", 401, "", {{"url", base}});
  w.send_json("POST", "/v1/endpoints", 403, reader, {{"url", base}});

  w.send("GET", "/v1/endpoints/api-ep", 200, as(reader));
  w.send("GET", "/v1/endpoints/ops", 200, as(reader));
  w.send("GET", "/v1/endpoints/nope", 404, as(reader));
  w.send("GET", "/v1/endpoints/api-ep", 401);
  w.send("GET", "/v1/endpoints/api-ep", 403, as(producer));
  w.send_json("PATCH", "/v1/endpoints/api-ep", 200, admin,
              {{"enabled", false}, {"rate_limit", nullptr}});
  w.send_json("PATCH", "/v1/endpoints/api-ep", 422, admin,
              {{"url", "https://10.0.0.1/in"}});
  w.send_json("PATCH", "/v1/endpoints/api-ep", 400, admin, {{"bogus", 1}});
  w.send_json("PATCH", "/v1/endpoints/ops", 409, admin, {{"enabled", false}});
  w.send_json("PATCH", "/v1/endpoints/nope", 404, admin, {{"enabled", false}});
  w.send("PATCH", "/v1/endpoints/api-ep", 415, as(admin, "text/plain"), "x");
  w.send_json("PATCH", "/v1/endpoints/api-ep", 401, "", {{"enabled", true}});
  w.send_json("PATCH", "/v1/endpoints/api-ep", 403, reader,
              {{"enabled", true}});
  auto rotate = "/v1/endpoints/api-ep/rotate-secret";
  auto rotated = json::parse(
      w.send_json("POST", rotate, 200, admin, {{"grace", 60}}).body);
  BOOST_TEST(rotated["secret"] != created["secret"]);
  BOOST_TEST(rotated["previous_secrets_expire_at"].is_string());
  w.send_json("POST", rotate, 400, admin, {{"grace", -1}});
  w.send("POST", rotate, 415, as(admin, "text/plain"), "x");
  w.send("POST", "/v1/endpoints/nope/rotate-secret", 404, as(admin));
  w.send("POST", "/v1/endpoints/ops/rotate-secret", 409, as(admin));
  w.send("POST", rotate, 401);
  w.send("POST", rotate, 403, as(reader));
  w.send("POST", "/v1/endpoints/failing/replay", 202, as(admin));
  w.send("POST", "/v1/endpoints/failing/replay?since=2026-01-01T00:00:00Z", 202,
         as(admin));
  w.send("POST", "/v1/endpoints/failing/replay?since=yesterday", 400,
         as(admin));
  w.send("POST", "/v1/endpoints/nope/replay", 404, as(admin));
  w.send("POST", "/v1/endpoints/failing/replay", 401);
  w.send("POST", "/v1/endpoints/failing/replay", 403, as(reader));
  w.send("DELETE", "/v1/endpoints/later", 204, as(admin));
  w.send("DELETE", "/v1/endpoints/later", 404, as(admin));
  w.send("DELETE", "/v1/endpoints/ops", 409, as(admin));
  w.send("DELETE", "/v1/endpoints/api-ep", 401);
  w.send("DELETE", "/v1/endpoints/api-ep", 403, as(reader));

  // ---- integrations --------------------------------------------------------
  auto ts = unix_seconds();
  auto clicked = click_body(denied, "https://127.0.0.1:9/actions/1");
  auto form = "application/x-www-form-urlencoded";
  w.send("POST", "/v1/integrations/slack/interactions", 200,
         {{"content-type", form},
          {"x-slack-request-timestamp", ts},
          {"x-slack-signature", slack_signature(slack_secret, ts, clicked)}},
         clicked);
  w.send("POST", "/v1/integrations/slack/interactions", 401,
         {{"content-type", form},
          {"x-slack-request-timestamp", ts},
          {"x-slack-signature", slack_signature("wrong", ts, clicked)}},
         clicked);
  std::string not_a_form = "payload=%7Bnot-json";
  w.send("POST", "/v1/integrations/slack/interactions", 400,
         {{"content-type", form},
          {"x-slack-request-timestamp", ts},
          {"x-slack-signature", slack_signature(slack_secret, ts, not_a_form)}},
         not_a_form);
  w.send("POST", "/v1/integrations/slack/interactions", 413,
         {{"content-type", form},
          {"x-slack-request-timestamp", ts},
          {"x-slack-signature", slack_signature(slack_secret, ts, "x")}},
         std::string(65537, 'x'));
  auto pd = "/v1/integrations/pagerduty/webhook";
  auto acked = pagerduty_body("incident.acknowledged", "tocsin-" + pd_event);
  auto recorded =
      json::parse(w.send("POST", pd, 200,
                         {{"content-type", "application/json"},
                          {"x-pagerduty-signature",
                           pagerduty_signature(pagerduty_secret, acked)}},
                         acked)
                      .body);
  BOOST_TEST(recorded["recorded"] == 1);
  auto elsewhere = pagerduty_body("incident.acknowledged", "other-key");
  w.send("POST", pd, 200,
         {{"content-type", "application/json"},
          {"x-pagerduty-signature",
           pagerduty_signature(pagerduty_secret, elsewhere)}},
         elsewhere);
  w.send("POST", pd, 401,
         {{"content-type", "application/json"},
          {"x-pagerduty-signature", pagerduty_signature("wrong", acked)}},
         acked);
  w.send(
      "POST", pd, 400,
      {{"content-type", "application/json"},
       {"x-pagerduty-signature", pagerduty_signature(pagerduty_secret, "[]")}},
      "[]");

  // ---- the stream ----------------------------------------------------------
  w.send("GET", "/v1/stream", 426, as(reader));
  w.send("GET", "/v1/stream", 401);
  w.send("GET", "/v1/stream", 403, as(producer));
  auto upgrade = [&](const std::string& target, const std::string& token) {
    auto raw = f.client().raw(
        "GET " + target +
        " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\n"
        "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
        (token.empty() ? "" : "Authorization: Bearer " + token + "\r\n") +
        "\r\n");
    return status_and_body(raw);
  };
  for (auto [target, token, status] :
       std::vector<std::tuple<std::string, std::string, int>>{
           {"/v1/stream?types=nope", reader, 400},
           {"/v1/stream", "", 401},
           {"/v1/stream", producer, 403}}) {
    auto [got, body] = upgrade(target, token);
    BOOST_TEST(got == status, target << ": " << got << " " << body);
    for (auto& problem :
         spec.check_answer("GET", target, got, "application/json", body))
      BOOST_ERROR(problem);
  }
  // From the log's start: every kind of frame the walk caused, each checked
  // against StreamFrame, up to the resolution of the first event.
  ws_client c{f.api_port(), "/v1/stream?since=0&token=" + reader};
  BOOST_REQUIRE_MESSAGE(c.ok(), c.error());
  spec.record("GET", "/v1/stream", 101);
  std::set<std::string> kinds;
  for (int i = 0; i < 500 && !kinds.count("event.resolved"); ++i) {
    auto frame = c.read();
    BOOST_REQUIRE_MESSAGE(frame, "no frame: " << c.error());
    auto j = json::parse(*frame);
    kinds.insert(j.value("type", ""));
    for (auto& problem : spec.check(j, spec.schema("StreamFrame")))
      BOOST_ERROR("frame " << *frame << ": " << problem);
  }
  for (auto kind :
       {"event.accepted", "delivery.attempted", "delivery.delivered",
        "delivery.dead_lettered", "event.acknowledged", "event.resolved"})
    BOOST_TEST(kinds.count(kind) == 1u, kind);

  // ---- every operation of the description was walked -----------------------
  for (auto& op : spec.operations())
    BOOST_TEST(spec.seen().count(op) == 1u, op << " was not walked");
}

BOOST_AUTO_TEST_SUITE_END()
