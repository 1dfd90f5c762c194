// The endpoints API against the real daemon: create, route, change, rotate,
// delete; every change survives a restart; nothing queued silently vanishes.
#include "tests/e2e/fixture.hpp"

#include "common/time.hpp"
#include "tests/support/run_command.hpp"

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cstdlib>
#include <thread>

using namespace tocsin::test;
using nlohmann::json;

namespace {

constexpr auto wait_time = std::chrono::seconds{10};

json fast_endpoint(const https_receiver& r) {
  return {{"url", daemon_fixture::url_of(r)},
          {"retry_schedule", {0.05, 0.05, 0.05, 0.05}}};
}

/// POST /v1/events; returns the answer ({"ids", "deliveries"}).
json post_event(daemon_fixture& f, const json& ev) {
  auto r = f.post("/v1/events", ev.dump(), f.admin_token());
  BOOST_REQUIRE_MESSAGE(r.status == 202, r.status << " " << r.body);
  return json::parse(r.body);
}

json patch(daemon_fixture& f, const std::string& id, const json& body) {
  auto r = f.call("PATCH", "/v1/endpoints/" + id, body);
  BOOST_REQUIRE_MESSAGE(r.status == 200,
                        "PATCH: " << r.status << " " << r.body);
  return json::parse(r.body);
}

} // namespace

BOOST_AUTO_TEST_SUITE(endpoints)

BOOST_AUTO_TEST_CASE(
    a_created_endpoint_gets_signed_events_and_survives_restart) {
  daemon_fixture f;
  auto receiver = f.make_receiver();
  f.start({});
  auto ep = create_endpoint(f, fast_endpoint(*receiver));
  auto id = ep["id"].get<std::string>();
  auto secret = ep["secret"].get<std::string>();
  BOOST_TEST(id.rfind("ep_", 0) == 0);
  BOOST_TEST(secret.rfind("whsec_", 0) == 0);
  BOOST_TEST(ep["signature"] == "hmac-sha256");
  BOOST_TEST(ep["source"] == "api");

  auto answer = post_event(f, sample_event());
  BOOST_TEST(answer["deliveries"] == 1);
  BOOST_REQUIRE(receiver->wait_for(1, wait_time));
  auto req = receiver->requests().at(0);
  BOOST_TEST(verify_standard_webhook(secret, req)); // the generated secret
  BOOST_TEST(!verify_standard_webhook(test_secret, req));
  BOOST_TEST(req.headers["webhook-id"] == answer["ids"][0]);

  // The secret is shown once: never by GET or list, never in the log.
  auto got = f.get("/v1/endpoints/" + id, f.admin_token());
  BOOST_REQUIRE(got.status == 200);
  BOOST_TEST(got.body.find(secret) == std::string::npos);
  BOOST_TEST(f.get("/v1/endpoints", f.admin_token()).body.find(secret) ==
             std::string::npos);

  f.kill9();
  f.restart();
  auto list = json::parse(f.get("/v1/endpoints", f.admin_token()).body);
  BOOST_REQUIRE(list["endpoints"].size() == 1u);
  BOOST_TEST(list["endpoints"][0]["id"] == id);
  BOOST_TEST(list["endpoints"][0]["url"] == ep["url"]);
  auto again = post_event(f, sample_event());
  BOOST_TEST(again["deliveries"] == 1);
  BOOST_REQUIRE(receiver->wait_for(2, wait_time));
  BOOST_TEST(verify_standard_webhook(secret, receiver->requests().at(1)));
  BOOST_TEST(f.process().log().find(secret) == std::string::npos);
}

BOOST_AUTO_TEST_CASE(filters_and_enabled_decide_which_events_are_delivered) {
  daemon_fixture f;
  auto receiver = f.make_receiver();
  f.start({});
  auto id =
      create_endpoint(f, fast_endpoint(*receiver))["id"].get<std::string>();
  // Two endpoints match: one delivery each.
  auto second =
      create_endpoint(f, fast_endpoint(*receiver))["id"].get<std::string>();
  BOOST_TEST(post_event(f, sample_event())["deliveries"] == 2);
  // Delivered before the second endpoint goes (deleting it dead-letters what
  // it still has queued).
  BOOST_REQUIRE(receiver->wait_for(2, wait_time));
  BOOST_REQUIRE(f.call("DELETE", "/v1/endpoints/" + second).status == 204);

  patch(f, id, {{"event_types", {"anomaly.detected"}}});
  BOOST_TEST(post_event(f, sample_event())["deliveries"] == 0);
  patch(f, id, {{"event_types", {"*"}}, {"min_severity", "critical"}});
  BOOST_TEST(post_event(f, sample_event())["deliveries"] == 0); // high
  patch(f, id, {{"min_severity", "info"}, {"agents", {"ops-*"}}});
  BOOST_TEST(post_event(f, sample_event("agent-7"))["deliveries"] == 0);
  BOOST_TEST(post_event(f, sample_event("ops-1"))["deliveries"] == 1);
  auto off = patch(f, id, {{"enabled", false}, {"agents", json::array()}});
  BOOST_TEST(off["enabled"] == false);
  BOOST_TEST(post_event(f, sample_event())["deliveries"] == 0);

  // Changes survive a restart too.
  f.kill9();
  f.restart();
  BOOST_TEST(post_event(f, sample_event())["deliveries"] == 0);
  patch(f, id, {{"enabled", true}});
  BOOST_TEST(post_event(f, sample_event())["deliveries"] == 1);
  BOOST_REQUIRE(receiver->wait_for(4, wait_time));
}

BOOST_AUTO_TEST_CASE(deleting_an_endpoint_dead_letters_what_it_had_queued) {
  daemon_fixture f;
  auto receiver = f.make_receiver(always(answer(503, "down")));
  f.start({});
  auto body = fast_endpoint(*receiver);
  body["retry_schedule"] = {30, 30, 30, 30}; // waiting after the first 503
  auto id = create_endpoint(f, body)["id"].get<std::string>();
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i)
    ids.push_back(post_event(f, sample_event())["ids"][0]);
  BOOST_REQUIRE(receiver->wait_for(3, wait_time));

  auto del = f.call("DELETE", "/v1/endpoints/" + id);
  BOOST_TEST(del.status == 204);
  for (auto& e : ids) {
    auto ev = f.wait_finished(e);
    BOOST_REQUIRE(ev["deliveries"].size() == 1u);
    BOOST_TEST(ev["deliveries"][0]["state"] == "dead_lettered");
    BOOST_TEST(ev["deliveries"][0]["reason"] == "endpoint_deleted");
  }
  BOOST_TEST(f.get("/v1/endpoints/" + id, f.admin_token()).status == 404);
  BOOST_TEST(f.call("DELETE", "/v1/endpoints/" + id).status == 404);
  auto dead = json::parse(f.get("/v1/dead-letters", f.admin_token()).body);
  BOOST_TEST(dead["dead_letters"].size() == 3u);
  // Its dead letters cannot be replayed to an endpoint that is gone.
  auto replay = f.call(
      "POST", "/v1/dead-letters/" +
                  dead["dead_letters"][0]["id"].get<std::string>() + "/replay");
  BOOST_TEST(replay.status == 409);
  BOOST_TEST(error_of(replay)["code"] == "endpoint_deleted");
  BOOST_TEST(post_event(f, sample_event())["deliveries"] == 0);

  // Deleted for good: not back after a crash.
  f.kill9();
  f.restart();
  BOOST_TEST(f.get("/v1/endpoints/" + id, f.admin_token()).status == 404);
  BOOST_TEST(receiver->count() == 3u);
}

BOOST_AUTO_TEST_CASE(
    an_endpoint_dropped_from_the_config_dead_letters_its_queue) {
  daemon_fixture f;
  auto receiver = f.make_receiver(always(answer(503, "down")));
  f.start({{"ops", daemon_fixture::url_of(*receiver), "[30, 30]"}});
  auto id = f.post_events(sample_event()).at(0);
  BOOST_REQUIRE(receiver->wait_for(1, wait_time));
  BOOST_TEST(f.terminate() == 0);
  f.start({}); // same data directory, config without "ops"
  auto ev = f.wait_finished(id);
  BOOST_TEST(ev["deliveries"][0]["state"] == "dead_lettered");
  BOOST_TEST(ev["deliveries"][0]["reason"] == "endpoint_deleted");
  BOOST_TEST(f.get("/v1/endpoints/ops", f.admin_token()).status == 404);
}

BOOST_AUTO_TEST_CASE(config_endpoints_are_changed_in_the_config_only) {
  daemon_fixture f;
  auto receiver = f.make_receiver();
  f.start({{"ops", daemon_fixture::url_of(*receiver)}});
  auto got = f.get("/v1/endpoints/ops", f.admin_token());
  BOOST_REQUIRE(got.status == 200);
  BOOST_TEST(json::parse(got.body)["source"] == "config");
  for (auto [method, target] : std::vector<std::pair<std::string, std::string>>{
           {"PATCH", "/v1/endpoints/ops"},
           {"DELETE", "/v1/endpoints/ops"},
           {"POST", "/v1/endpoints/ops/rotate-secret"}}) {
    auto r = f.call(method, target,
                    method == "DELETE" ? json(nullptr) : json::object());
    BOOST_TEST(r.status == 409, method);
    BOOST_TEST(error_of(r)["code"] == "managed_by_config", method);
  }
  auto dup =
      f.call("POST", "/v1/endpoints",
             {{"id", "ops"}, {"url", daemon_fixture::url_of(*receiver)}});
  BOOST_TEST(dup.status == 409);
  BOOST_TEST(error_of(dup)["code"] == "conflict");
}

BOOST_AUTO_TEST_CASE(rotation_signs_with_both_secrets_during_the_grace_period) {
  daemon_fixture f;
  auto receiver = f.make_receiver();
  f.start({});
  auto ep = create_endpoint(f, fast_endpoint(*receiver));
  auto id = ep["id"].get<std::string>();
  auto old_secret = ep["secret"].get<std::string>();
  auto rotated =
      f.call("POST", "/v1/endpoints/" + id + "/rotate-secret", {{"grace", 2}});
  BOOST_REQUIRE_MESSAGE(rotated.status == 200, rotated.body);
  auto new_secret = json::parse(rotated.body)["secret"].get<std::string>();
  BOOST_TEST(new_secret != old_secret);
  BOOST_TEST(new_secret.rfind("whsec_", 0) == 0);
  BOOST_TEST(json::parse(rotated.body).contains("previous_secrets_expire_at"));

  // During the grace period: a receiver that knows only the old secret and
  // one that knows only the new one both verify.
  post_event(f, sample_event());
  BOOST_REQUIRE(receiver->wait_for(1, wait_time));
  auto during = receiver->requests().at(0);
  BOOST_TEST(verify_standard_webhook(old_secret, during));
  BOOST_TEST(verify_standard_webhook(new_secret, during));
  auto sigs = during.headers["webhook-signature"];
  BOOST_TEST(std::count(sigs.begin(), sigs.end(), ' ') == 1);

  // After it (and across a restart): only the new one.
  std::this_thread::sleep_for(std::chrono::milliseconds{2100});
  f.kill9();
  f.restart();
  post_event(f, sample_event());
  BOOST_REQUIRE(receiver->wait_for(2, wait_time));
  auto after = receiver->requests().at(1);
  BOOST_TEST(!verify_standard_webhook(old_secret, after));
  BOOST_TEST(verify_standard_webhook(new_secret, after));
  BOOST_TEST(after.headers["webhook-signature"].find(' ') == std::string::npos);

  // A rotation to a given secret; a bad one changes nothing.
  auto bad = f.call("POST", "/v1/endpoints/" + id + "/rotate-secret",
                    {{"secret", "whsec_bm9wZQ=="}});
  BOOST_TEST(bad.status == 400);
  BOOST_TEST(error_of(bad)["code"] == "invalid_secret");
  auto given = f.call("POST", "/v1/endpoints/" + id + "/rotate-secret",
                      {{"secret", test_secret}, {"grace", 0}});
  BOOST_REQUIRE(given.status == 200);
  post_event(f, sample_event());
  BOOST_REQUIRE(receiver->wait_for(3, wait_time));
  auto last = receiver->requests().at(2);
  BOOST_TEST(last.signature_valid); // the receiver's own test_secret
  BOOST_TEST(!verify_standard_webhook(new_secret, last)); // grace 0
}

BOOST_AUTO_TEST_CASE(ed25519_endpoints_sign_v1a) {
  daemon_fixture f;
  auto receiver = f.make_receiver();
  f.start({});
  auto body = fast_endpoint(*receiver);
  body["signature"] = "ed25519";
  auto ep = create_endpoint(f, body);
  BOOST_TEST(ep["signature"] == "ed25519");
  BOOST_TEST(ep["secret"].get<std::string>().rfind("whsk_", 0) == 0);
  auto public_key = ep["public_key"].get<std::string>();
  BOOST_TEST(public_key.rfind("whpk_", 0) == 0);
  post_event(f, sample_event());
  BOOST_REQUIRE(receiver->wait_for(1, wait_time));
  auto req = receiver->requests().at(0);
  BOOST_TEST(req.headers["webhook-signature"].rfind("v1a,", 0) == 0);
  BOOST_TEST(verify_standard_webhook(public_key, req));
  // GET shows the public key, never the secret key.
  auto got = json::parse(
      f.get("/v1/endpoints/" + ep["id"].get<std::string>(), f.admin_token())
          .body);
  BOOST_TEST(got["public_key"] == public_key);
  BOOST_TEST(!got.contains("secret"));
}

BOOST_AUTO_TEST_CASE(bad_endpoint_requests_are_refused_and_change_nothing) {
  daemon_fixture f;
  auto receiver = f.make_receiver();
  f.start({});
  auto url = daemon_fixture::url_of(*receiver);
  struct bad_case {
    json body;
    std::string code, field;
  };
  std::vector<bad_case> cases{
      {{{"url", "http://hooks.example/in"}}, "insecure_url", "url"},
      {{{"url", "https://"}}, "invalid_url", "url"},
      {{{"url", url}, {"transport", "fax"}}, "unknown_transport", "transport"},
      {{{"url", url}, {"event_types", {"policy.approved"}}},
       "unknown_event_type",
       "event_types"},
      {{{"url", url}, {"min_severity", "urgent"}},
       "invalid_severity",
       "min_severity"},
      {{{"url", url}, {"agents", {"agent-[0"}}}, "invalid_glob", "agents"},
      {{{"url", url}, {"colour", "red"}}, "unknown_field", "colour"},
      {{{"url", url}, {"enabled", "yes"}}, "invalid_field", "enabled"},
      {{{"url", url}, {"secret", "whsec_short"}}, "invalid_secret", "secret"},
      {json::object(), "missing_field", "url"},
  };
  for (auto& c : cases) {
    auto r = f.call("POST", "/v1/endpoints", c.body);
    BOOST_TEST(r.status == 400, c.body.dump());
    auto e = error_of(r);
    BOOST_TEST(e["code"] == c.code, c.body.dump());
    BOOST_TEST(e["field"] == c.field, c.body.dump());
  }
  auto not_json = f.post("/v1/endpoints", "{\"url\":", f.admin_token());
  BOOST_TEST(not_json.status == 400);
  auto wrong_type =
      f.post("/v1/endpoints", "url=x", f.admin_token(), "text/plain");
  BOOST_TEST(wrong_type.status == 415);
  auto list = json::parse(f.get("/v1/endpoints", f.admin_token()).body);
  BOOST_TEST(list["endpoints"].empty());

  auto id =
      create_endpoint(f, fast_endpoint(*receiver))["id"].get<std::string>();
  auto bad_patch =
      f.call("PATCH", "/v1/endpoints/" + id, {{"url", "http://x.example/"}});
  BOOST_TEST(bad_patch.status == 400);
  BOOST_TEST(error_of(bad_patch)["code"] == "insecure_url");
  auto still = json::parse(f.get("/v1/endpoints/" + id, f.admin_token()).body);
  BOOST_TEST(still["url"] == url);
  BOOST_TEST(still["revision"] == 1);
  BOOST_TEST(f.call("PATCH", "/v1/endpoints/nope", json::object()).status ==
             404);
}

// Credentials in endpoint options (PagerDuty's routing_key, a Slack app's
// bot_token) are never shown whole: the 201 of a create, GET of one and of
// all, a PATCH's answer and the CLI show "…" and the last 4 characters;
// sending the mask back keeps the stored value (issue 24).
BOOST_AUTO_TEST_CASE(credentials_in_options_are_never_shown_whole) {
  daemon_fixture f;
  auto pd = f.make_receiver(always(answer(202, R"({"status":"success"})")));
  const std::string routing_key = "R0ut1ngKeyR0ut1ngKeyR0ut1ngKeyZ9";
  const std::string bot_token =
      "xoxb-1234567890-1234567890123-AbCdEfGhIjKlMnOpQrStWxyz";
  endpoint_spec app{"app", "https://127.0.0.1:9/api/chat.postMessage"};
  app.with_secret = false;
  app.extra = "transport = \"slack\"\nenabled = false\n"
              "options = { bot_token = \"" +
              bot_token + "\", channel = \"C0123456789\" }\n";
  f.start({app});
  auto created = f.call("POST", "/v1/endpoints",
                        {{"id", "pd"},
                         {"url", daemon_fixture::url_of(*pd)},
                         {"transport", "pagerduty"},
                         {"options", {{"routing_key", routing_key}}},
                         {"retry_schedule", {0.05}}});
  BOOST_REQUIRE_MESSAGE(created.status == 201, created.body);
  const std::string masked_key = "\u2026eyZ9", masked_token = "\u2026Wxyz";
  auto shown = [&](const std::string& body, const std::string& what) {
    BOOST_TEST(body.find(routing_key) == std::string::npos, what << body);
    BOOST_TEST(body.find(bot_token) == std::string::npos, what << body);
    BOOST_TEST(body.find(bot_token.substr(5, 20)) == std::string::npos,
               what << body);
  };
  shown(created.body, "201: ");
  BOOST_TEST(json::parse(created.body)["options"]["routing_key"] == masked_key);
  auto one = f.get("/v1/endpoints/pd", f.admin_token());
  shown(one.body, "GET pd: ");
  BOOST_TEST(json::parse(one.body)["options"]["routing_key"] == masked_key);
  auto app_shown = f.get("/v1/endpoints/app", f.admin_token());
  shown(app_shown.body, "GET app: ");
  BOOST_TEST(json::parse(app_shown.body)["options"]["bot_token"] ==
             masked_token);
  BOOST_TEST(json::parse(app_shown.body)["options"]["channel"] ==
             "C0123456789");
  auto all = f.get("/v1/endpoints", f.admin_token());
  shown(all.body, "GET all: ");
  BOOST_TEST(contains(all.body, "eyZ9"), all.body);

  // What GET showed, sent back with another change: the key is kept.
  auto options = json::parse(one.body)["options"];
  auto patched = f.call("PATCH", "/v1/endpoints/pd",
                        {{"description", "pager"}, {"options", options}});
  BOOST_REQUIRE_MESSAGE(patched.status == 200, patched.body);
  shown(patched.body, "PATCH: ");
  auto id = f.post_events(sample_event()).at(0);
  BOOST_REQUIRE(pd->wait_for(1, wait_time));
  BOOST_TEST(json::parse(pd->requests().at(0).body)["routing_key"] ==
                 routing_key,
             pd->requests().at(0).body);
  f.wait_finished(id);
  // A new key replaces it (and is shown masked in turn).
  const std::string new_key = "N3wK3yN3wK3yN3wK3yN3wK3yN3wK3yQ7";
  auto replaced = patch(f, "pd", {{"options", {{"routing_key", new_key}}}});
  BOOST_TEST(replaced["options"]["routing_key"] == "\u2026"
                                                   "3yQ7");
  auto id2 = f.post_events(sample_event()).at(0);
  BOOST_REQUIRE(pd->wait_for(2, wait_time));
  BOOST_TEST(json::parse(pd->requests().at(1).body)["routing_key"] == new_key);
  f.wait_finished(id2);

  // The CLI shows what the API shows.
  auto cli = run_command({TOCSIN_BINARY, "endpoints", "get", "app", "--server",
                          "http://127.0.0.1:" + std::to_string(f.api_port()),
                          "--config", f.config_file().string()});
  BOOST_TEST(cli.code == 0, cli);
  shown(cli.out, "CLI: ");
  BOOST_TEST(contains(cli.out, "Wxyz"), cli);
}

BOOST_AUTO_TEST_CASE(a_node_alone_is_its_own_cluster) {
  // With RocksDB (this suite's store) GET /v1/cluster lists this node alone,
  // alive, driving every endpoint (the config's and the API's).
  daemon_fixture f;
  auto receiver = f.make_receiver();
  f.start({{"ops", daemon_fixture::url_of(*receiver)}}, {},
          "[cluster]\nnode_id = \"solo-1\"\n");
  auto made = create_endpoint(f, fast_endpoint(*receiver))["id"];
  auto before = std::chrono::system_clock::now();
  auto r = f.get("/v1/cluster", f.admin_token());
  BOOST_REQUIRE_MESSAGE(r.status == 200, r.status << " " << r.body);
  auto j = json::parse(r.body);
  BOOST_TEST(j["node"] == "solo-1");
  if (f.backend() != tocsin::storage::backend::rocksdb)
    return; // a cluster's answer: cluster_test
  BOOST_TEST(j["backend"] == "rocksdb");
  BOOST_REQUIRE(j["nodes"].size() == 1u);
  auto& n = j["nodes"][0];
  BOOST_TEST(n["id"] == "solo-1");
  BOOST_TEST(n["listen"] == "127.0.0.1:" + std::to_string(f.api_port()));
  BOOST_TEST(n["alive"] == true);
  BOOST_TEST(n["endpoints"] == json::array({made, "ops"}), n.dump());
  auto at = tocsin::parse_rfc3339(n["heartbeat_at"].get<std::string>());
  BOOST_REQUIRE(at.has_value());
  auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                 before.time_since_epoch())
                 .count();
  BOOST_TEST(std::abs(*at - now) < 5000, *at << " vs " << now);
  // Role read, like every other read.
  BOOST_TEST(f.get("/v1/cluster").status == 401);
}

BOOST_AUTO_TEST_SUITE_END()
