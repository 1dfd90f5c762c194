// Deliveries through the real daemon to real HTTPS receivers on loopback, with
// shortened retry schedules.
#include "tests/e2e/fixture.hpp"

#include <boost/test/unit_test.hpp>

#include <atomic>
#include <set>
#include <thread>

using namespace tocsin::test;
using nlohmann::json;

namespace {

const json& only_delivery(const json& ev) {
  BOOST_REQUIRE_EQUAL(ev["deliveries"].size(), 1u);
  return ev["deliveries"][0];
}

} // namespace

BOOST_AUTO_TEST_SUITE(delivery)

BOOST_AUTO_TEST_CASE(delivers_a_signed_payload_that_verifies_independently) {
  daemon_fixture f;
  auto receiver = f.make_receiver();
  f.start(
      {{"ops", daemon_fixture::url_of(*receiver)}},
      "audit_url_template = \"https://audit.example/receipts/{receipt_id}\"\n");
  auto ids = f.post_events(sample_event());
  BOOST_REQUIRE(receiver->wait_for(1, std::chrono::seconds{10}));
  auto req = receiver->requests().at(0);
  BOOST_TEST(req.signature_valid);
  BOOST_TEST(req.method == "POST");
  BOOST_TEST(req.target == "/hook");
  BOOST_TEST(req.headers["content-type"] == "application/json");
  BOOST_TEST(req.headers["webhook-id"] == ids[0]);
  auto ts = std::stoll(req.headers["webhook-timestamp"]);
  BOOST_TEST(std::abs(ts - req.unix_ms / 1000) <= 2);
  auto body = json::parse(req.body);
  BOOST_TEST(body["id"] == ids[0]);
  BOOST_TEST(body["type"] == "policy.denied");
  BOOST_TEST(body["agent_id"] == "agent-7");
  BOOST_TEST(body["severity"] == "high");
  BOOST_TEST(body["details"]["receipt_id"] == "rcpt_1");
  BOOST_TEST(body["links"]["audit"] == "https://audit.example/receipts/rcpt_1");
  BOOST_TEST(req.body.size() < 4096u);

  auto ev = f.wait_finished(ids[0]);
  auto& d = only_delivery(ev);
  BOOST_TEST(d["state"] == "delivered");
  BOOST_TEST(d["endpoint_id"] == "ops");
  BOOST_REQUIRE_EQUAL(d["attempts"].size(), 1u);
  BOOST_TEST(d["attempts"][0]["status"] == 200);
  BOOST_TEST(d["attempts"][0]["response"] == "ok");
  BOOST_TEST(ev["event"] == body);
}

BOOST_AUTO_TEST_CASE(oversized_payloads_are_cut_but_the_event_stays_whole) {
  daemon_fixture f;
  auto receiver = f.make_receiver();
  f.start({{"ops", daemon_fixture::url_of(*receiver)}});
  auto ev = sample_event();
  ev["details"]["transcript"] = std::string(20000, 't');
  auto ids = f.post_events(ev);
  BOOST_REQUIRE(receiver->wait_for(1, std::chrono::seconds{10}));
  auto req = receiver->requests().at(0);
  BOOST_TEST(req.body.size() <= 4096u);
  BOOST_TEST(req.signature_valid); // signed as sent
  auto body = json::parse(req.body);
  BOOST_TEST(body["truncated"] == true);
  BOOST_TEST(body["details"]["rule"] == "block-delete");
  auto stored = f.event(ids[0]);
  BOOST_TEST(
      stored["event"]["details"]["transcript"].get<std::string>().size() ==
      20000u);
  BOOST_TEST(stored["event"].count("truncated") == 0u);
}

BOOST_AUTO_TEST_CASE(fails_three_times_with_503_then_delivers_on_schedule) {
  daemon_fixture f;
  auto receiver = f.make_receiver([](const received_request&, std::size_t i) {
    return i < 3 ? answer(503, "busy") : answer(200);
  });
  f.start({{"ops", daemon_fixture::url_of(*receiver), "[0.2, 0.4, 0.8, 1.6]"}});
  auto ids = f.post_events(sample_event());
  auto ev = f.wait_finished(ids[0]);
  auto& d = only_delivery(ev);
  BOOST_TEST(d["state"] == "delivered");
  BOOST_REQUIRE_EQUAL(d["attempts"].size(), 4u);
  for (int i = 0; i < 3; ++i) {
    BOOST_TEST(d["attempts"][i]["status"] == 503);
    BOOST_TEST(d["attempts"][i]["response"] == "busy");
  }
  BOOST_TEST(d["attempts"][3]["status"] == 200);
  // Attempts follow the schedule (jitter 0): 200, 400, 800 ms apart.
  auto gaps = attempt_gaps_ms(d);
  std::vector<long> nominal{200, 400, 800};
  for (std::size_t i = 0; i < gaps.size(); ++i) {
    BOOST_TEST(gaps[i] >= nominal[i] - 5, "gap " << i << ": " << gaps[i]);
    BOOST_TEST(gaps[i] <= nominal[i] + 250, "gap " << i << ": " << gaps[i]);
  }
  // Every attempt carried the same webhook-id and a valid signature.
  auto reqs = receiver->requests();
  BOOST_REQUIRE_EQUAL(reqs.size(), 4u);
  for (auto& r : reqs) {
    BOOST_TEST(r.headers["webhook-id"] == ids[0]);
    BOOST_TEST(r.signature_valid);
  }
}

BOOST_AUTO_TEST_CASE(honours_retry_after_of_a_429) {
  daemon_fixture f;
  auto receiver = f.make_receiver([](const received_request&, std::size_t i) {
    return i == 0 ? answer(429, "slow down", {{"Retry-After", "1"}})
                  : answer(200);
  });
  // Window 3.3 s: a 1 s Retry-After fits and beats the 0.1 s schedule.
  f.start({{"ops", daemon_fixture::url_of(*receiver), "[0.1, 0.1, 0.1, 3]"}});
  auto ids = f.post_events(sample_event());
  auto ev = f.wait_finished(ids[0]);
  auto& d = only_delivery(ev);
  BOOST_TEST(d["state"] == "delivered");
  BOOST_REQUIRE_EQUAL(d["attempts"].size(), 2u);
  BOOST_TEST(d["attempts"][0]["status"] == 429);
  auto gap = attempt_gaps_ms(d).at(0);
  BOOST_TEST(gap >= 1000);
  BOOST_TEST(gap <= 1400);
}

BOOST_AUTO_TEST_CASE(a_400_is_dead_lettered_after_one_attempt) {
  daemon_fixture f;
  auto receiver = f.make_receiver([](const received_request&, std::size_t) {
    return answer(400, "{\"error\":\"bad payload\"}");
  });
  f.start({{"ops", daemon_fixture::url_of(*receiver)}});
  auto ids = f.post_events(sample_event());
  auto ev = f.wait_finished(ids[0]);
  auto& d = only_delivery(ev);
  BOOST_TEST(d["state"] == "dead_lettered");
  BOOST_TEST(d["reason"] == "rejected_http_400");
  BOOST_REQUIRE_EQUAL(d["attempts"].size(), 1u);
  BOOST_TEST(d["attempts"][0]["response"] == "{\"error\":\"bad payload\"}");
  // Nothing more is tried, and the dead letter is listed.
  std::this_thread::sleep_for(std::chrono::milliseconds{300});
  BOOST_TEST(receiver->count() == 1u);
  auto list = json::parse(f.get("/v1/dead-letters", f.admin_token()).body);
  BOOST_REQUIRE_EQUAL(list["dead_letters"].size(), 1u);
  BOOST_TEST(list["dead_letters"][0]["id"] == d["id"]);
  BOOST_TEST(list["dead_letters"][0]["event_id"] == ids[0]);
}

BOOST_AUTO_TEST_CASE(a_410_dead_letters_at_once_and_flags_the_endpoint) {
  daemon_fixture f;
  auto receiver = f.make_receiver(
      [](const received_request&, std::size_t) { return answer(410, "gone"); });
  f.start({{"ops", daemon_fixture::url_of(*receiver)}});
  auto ids = f.post_events(sample_event());
  auto ev = f.wait_finished(ids[0]);
  auto& d = only_delivery(ev);
  BOOST_TEST(d["state"] == "dead_lettered");
  BOOST_TEST(d["reason"] == "endpoint_gone");
  BOOST_TEST(d["attempts"].size() == 1u);
  BOOST_TEST(f.process().log().find("flagged for review") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(an_always_failing_endpoint_gets_exactly_five_attempts) {
  daemon_fixture f;
  auto receiver = f.make_receiver(
      [](const received_request&, std::size_t) { return answer(500, "boom"); });
  f.start({{"ops", daemon_fixture::url_of(*receiver)}});
  auto ids = f.post_events(sample_event());
  auto ev = f.wait_finished(ids[0]);
  auto& d = only_delivery(ev);
  BOOST_TEST(d["state"] == "dead_lettered");
  BOOST_TEST(d["reason"] == "attempts_exhausted");
  BOOST_REQUIRE_EQUAL(d["attempts"].size(), 5u);
  for (auto& a : d["attempts"]) {
    BOOST_TEST(a["status"] == 500);
    BOOST_TEST(a["response"] == "boom");
    BOOST_TEST(!a["finished_at"].is_null());
  }
  std::this_thread::sleep_for(std::chrono::milliseconds{300});
  BOOST_TEST(receiver->count() == 5u);
}

BOOST_AUTO_TEST_CASE(redirects_are_not_followed) {
  daemon_fixture f;
  auto elsewhere = f.make_receiver();
  auto location = daemon_fixture::url_of(*elsewhere);
  auto receiver = f.make_receiver([&](const received_request&, std::size_t) {
    return answer(307, "", {{"Location", location}});
  });
  f.start({{"ops", daemon_fixture::url_of(*receiver)}});
  auto ids = f.post_events(sample_event());
  auto ev = f.wait_finished(ids[0]);
  auto& d = only_delivery(ev);
  // A redirect is a failed attempt (retried), never a request to Location.
  BOOST_TEST(d["state"] == "dead_lettered");
  BOOST_TEST(d["attempts"].size() == 5u);
  BOOST_TEST(d["attempts"][0]["status"] == 307);
  BOOST_TEST(elsewhere->count() == 0u);
}

BOOST_AUTO_TEST_CASE(an_untrusted_certificate_is_refused) {
  daemon_fixture f;
  auto cert =
      test_ca::self_signed(f.dir(), "rogue", {"localhost"}, {"127.0.0.1"});
  https_receiver rogue{{cert.cert_file, cert.key_file, test_secret}};
  f.start(
      {{"ops", "https://127.0.0.1:" + std::to_string(rogue.port()) + "/hook"}});
  auto ids = f.post_events(sample_event());
  auto ev = f.wait_finished(ids[0]);
  auto& d = only_delivery(ev);
  BOOST_TEST(d["state"] == "dead_lettered");
  BOOST_TEST(d["attempts"].size() == 5u);
  auto err = d["attempts"][0]["error"].get<std::string>();
  BOOST_TEST(err.find("handshake") != std::string::npos, err);
  BOOST_TEST(rogue.count() == 0u); // no request ever reached it
}

BOOST_AUTO_TEST_CASE(a_certificate_for_another_host_is_refused) {
  daemon_fixture f;
  // Valid chain from the trusted CA, but for other names and addresses.
  auto cert = f.ca().issue("other", {"other.example"}, {"10.9.8.7"});
  https_receiver other{{cert.cert_file, cert.key_file, test_secret}};
  auto port = std::to_string(other.port());
  f.start({{"by-name", "https://localhost:" + port + "/hook"},
           {"by-ip", "https://127.0.0.1:" + port + "/hook"}});
  auto ids = f.post_events(sample_event());
  auto ev = f.wait_finished(ids[0]);
  BOOST_REQUIRE_EQUAL(ev["deliveries"].size(), 2u);
  for (auto& d : ev["deliveries"]) {
    BOOST_TEST(d["state"] == "dead_lettered");
    auto err = d["attempts"][0]["error"].get<std::string>();
    BOOST_TEST(err.find("handshake") != std::string::npos, err);
  }
  BOOST_TEST(other.count() == 0u);
}

BOOST_AUTO_TEST_CASE(host_names_verify_against_dns_san_and_ips_against_ip_san) {
  daemon_fixture f;
  auto receiver = f.make_receiver();
  auto port = std::to_string(receiver->port());
  f.start({{"by-name", "https://localhost:" + port + "/hook"},
           {"by-ip", "https://127.0.0.1:" + port + "/hook"}});
  auto ids = f.post_events(sample_event());
  auto ev = f.wait_finished(ids[0]);
  BOOST_REQUIRE_EQUAL(ev["deliveries"].size(), 2u);
  for (auto& d : ev["deliveries"])
    BOOST_TEST(d["state"] == "delivered", d.dump());
}

BOOST_AUTO_TEST_CASE(fans_out_a_batch_and_reuses_connections) {
  daemon_fixture f;
  auto receiver = f.make_receiver();
  f.start({{"ops", daemon_fixture::url_of(*receiver)}});
  json batch{{"events", json::array()}};
  for (int i = 0; i < 200; ++i)
    batch["events"].push_back(sample_event("agent-" + std::to_string(i)));
  auto ids = f.post_events(batch);
  BOOST_REQUIRE_EQUAL(ids.size(), 200u);
  BOOST_REQUIRE(receiver->wait_for(200, std::chrono::seconds{20}));
  std::set<std::string> seen;
  for (auto& r : receiver->requests()) {
    BOOST_TEST(r.signature_valid);
    seen.insert(r.headers["webhook-id"]);
  }
  BOOST_TEST(seen == std::set<std::string>(ids.begin(), ids.end()));
}

BOOST_AUTO_TEST_CASE(delivers_over_h2_to_a_receiver_that_offers_it) {
  // A batch to a receiver that selects h2: every event arrives once, signed,
  // as streams of one connection (the endpoint's 16 in flight fit in it).
  daemon_fixture f;
  auto receiver = f.make_receiver({}, 0, true);
  f.start({{"ops", daemon_fixture::url_of(*receiver)}});
  json batch{{"events", json::array()}};
  for (int i = 0; i < 100; ++i)
    batch["events"].push_back(sample_event("agent-" + std::to_string(i)));
  auto ids = f.post_events(batch);
  BOOST_REQUIRE_EQUAL(ids.size(), 100u);
  BOOST_REQUIRE(receiver->wait_for(100, std::chrono::seconds{20}));
  std::multiset<std::string> seen;
  for (auto& r : receiver->requests()) {
    BOOST_TEST(r.signature_valid);
    BOOST_TEST(r.protocol == "h2");
    seen.insert(r.headers["webhook-id"]);
  }
  BOOST_TEST(seen.size() == 100u);
  BOOST_TEST(std::set<std::string>(seen.begin(), seen.end()) ==
             std::set<std::string>(ids.begin(), ids.end()));
  BOOST_TEST(receiver->connections() == 1u);
  auto ev = f.wait_finished(ids[0]);
  auto& d = only_delivery(ev);
  BOOST_TEST(d["state"] == "delivered");
  BOOST_TEST(d["attempts"][0]["status"] == 200);
  BOOST_TEST(d["attempts"][0]["response"] == "ok");
}

BOOST_AUTO_TEST_CASE(goaway_mid_load_loses_and_doubles_nothing) {
  // The receiver ends its connection by GOAWAY every 150 requests (as nginx
  // does after keepalive_requests): the streams it refused go again on a
  // new connection, at once (not as a failed attempt); every event arrives
  // once, in one attempt each.
  daemon_fixture f;
  auto receiver = f.make_receiver(
      [](const received_request&, std::size_t i) {
        canned_response r;
        r.goaway = i > 0 && i % 150 == 0;
        return r;
      },
      0, true);
  f.start({{"ops", daemon_fixture::url_of(*receiver)}});
  std::vector<std::string> ids;
  for (int b = 0; b < 4; ++b) {
    json batch{{"events", json::array()}};
    for (int i = 0; i < 250; ++i)
      batch["events"].push_back(sample_event("agent-" + std::to_string(i)));
    auto more = f.post_events(batch);
    ids.insert(ids.end(), more.begin(), more.end());
  }
  BOOST_REQUIRE(receiver->wait_for(1000, std::chrono::seconds{30}));
  BOOST_TEST(receiver->refused() > 0u); // GOAWAY did refuse streams
  BOOST_TEST(receiver->connections() > 1u);
  std::multiset<std::string> seen;
  for (auto& r : receiver->requests()) {
    BOOST_TEST(r.protocol == "h2");
    BOOST_TEST(r.signature_valid);
    seen.insert(r.headers["webhook-id"]);
  }
  BOOST_TEST(seen.size() == 1000u); // none twice
  BOOST_TEST(std::set<std::string>(seen.begin(), seen.end()) ==
             std::set<std::string>(ids.begin(), ids.end()));
  for (auto i : {0, 150, 151, 500, 999}) {
    auto ev = f.wait_finished(ids[static_cast<std::size_t>(i)]);
    auto& d = only_delivery(ev);
    BOOST_TEST(d["state"] == "delivered");
    BOOST_TEST(d["attempts"].size() == 1u); // a refused stream is no attempt
  }
}

BOOST_AUTO_TEST_CASE(http11_where_the_receiver_or_the_endpoint_wants_it) {
  // A receiver that offers only HTTP/1.1 gets HTTP/1.1; an endpoint with
  // http2 = false sends HTTP/1.1 to one that offers h2.
  daemon_fixture f;
  auto old_one = f.make_receiver();
  auto h2_one = f.make_receiver({}, 0, true);
  f.start({{"old", daemon_fixture::url_of(*old_one), "[1]",
            "agents = [\"a-old\"]\n"},
           {"pinned", daemon_fixture::url_of(*h2_one), "[1]",
            "agents = [\"a-pinned\"]\nhttp2 = false\n"}});
  json batch{{"events", json::array()}};
  for (int i = 0; i < 20; ++i)
    batch["events"].push_back(sample_event(i % 2 ? "a-old" : "a-pinned"));
  f.post_events(batch);
  BOOST_REQUIRE(old_one->wait_for(10, std::chrono::seconds{20}));
  BOOST_REQUIRE(h2_one->wait_for(10, std::chrono::seconds{20}));
  for (auto* r : {old_one.get(), h2_one.get()})
    for (auto& req : r->requests()) {
      BOOST_TEST(req.protocol == "http/1.1");
      BOOST_TEST(req.signature_valid);
    }
}

BOOST_AUTO_TEST_CASE(non_global_addresses_are_refused_unless_allowed) {
  daemon_fixture f;
  auto receiver = f.make_receiver();
  auto port = std::to_string(receiver->port());
  f.set_allow_networks(""); // loopback is not allowed this time
  // By IP, and by a name that resolves to loopback: refused on the address
  // actually resolved, permanently, after one attempt.
  f.start({{"by-ip", "https://127.0.0.1:" + port + "/hook"},
           {"by-name", "https://localhost:" + port + "/hook"}});
  auto ids = f.post_events(sample_event());
  auto ev = f.wait_finished(ids[0]);
  BOOST_REQUIRE_EQUAL(ev["deliveries"].size(), 2u);
  for (auto& d : ev["deliveries"]) {
    BOOST_TEST(d["state"] == "dead_lettered");
    BOOST_TEST(d["reason"] == "forbidden_address");
    BOOST_TEST(d["attempts"].size() == 1u);
    auto err = d["attempts"][0]["error"].get<std::string>();
    BOOST_TEST(err.find("loopback") != std::string::npos, err);
  }
  BOOST_TEST(receiver->count() == 0u);
  // The endpoint given by IP was said at start (the name is not resolved
  // then: serve does not wait on DNS).
  auto log = f.process().log();
  BOOST_TEST(count_of(log, "deliveries will be refused") == 1u, log);
  BOOST_TEST(contains(log, "endpoint by-ip: deliveries to its URL"), log);
}

BOOST_AUTO_TEST_CASE(dead_letters_are_replayed_one_by_one_and_in_bulk) {
  daemon_fixture f;
  std::atomic<bool> healthy{false};
  auto receiver = f.make_receiver([&](const received_request&, std::size_t) {
    return healthy ? answer(200) : answer(500, "down");
  });
  f.start({{"ops", daemon_fixture::url_of(*receiver)}});
  auto ids = f.post_events(json{
      {"events", {sample_event("a"), sample_event("b"), sample_event("c")}}});
  std::vector<std::string> dead;
  for (auto& id : ids) {
    auto ev = f.wait_finished(id);
    BOOST_REQUIRE(ev["deliveries"][0]["state"] == "dead_lettered");
    dead.push_back(ev["deliveries"][0]["id"]);
  }
  healthy = true;
  auto admin = f.admin_token();

  // One by one: a fresh window of attempts, old attempts kept.
  auto r = f.post("/v1/dead-letters/" + dead[0] + "/replay", "", admin, "");
  BOOST_TEST(r.status == 202, r.body);
  BOOST_TEST(json::parse(r.body)["replayed"] == 1);
  auto ev = f.wait_finished(ids[0]);
  auto& d = only_delivery(ev);
  BOOST_TEST(d["state"] == "delivered");
  BOOST_TEST(d["attempts"].size() == 6u);
  BOOST_TEST(d["attempts"][5]["status"] == 200);
  // Not a dead letter any more; unknown ids; wrong role.
  BOOST_TEST(
      f.post("/v1/dead-letters/" + dead[0] + "/replay", "", admin, "").status ==
      409);
  BOOST_TEST(f.post("/v1/dead-letters/dlv_nope/replay", "", admin, "").status ==
             404);

  // In bulk: since a time after they died replays nothing, since before all.
  auto future = f.post(
      "/v1/endpoints/ops/replay?since=2999-01-01T00%3A00%3A00Z", "", admin, "");
  BOOST_TEST(future.status == 202, future.body);
  BOOST_TEST(json::parse(future.body)["replayed"] == 0);
  auto bulk = f.post("/v1/endpoints/ops/replay?since=2020-01-01T00:00:00Z", "",
                     admin, "");
  BOOST_TEST(bulk.status == 202, bulk.body);
  BOOST_TEST(json::parse(bulk.body)["replayed"] == 2);
  for (int i = 1; i < 3; ++i)
    BOOST_TEST(f.wait_finished(ids[i])["deliveries"][0]["state"] ==
               "delivered");
  BOOST_TEST(json::parse(f.get("/v1/dead-letters", admin).body)["dead_letters"]
                 .empty());
  BOOST_TEST(f.post("/v1/endpoints/nope/replay", "", admin, "").status == 404);
  BOOST_TEST(f.post("/v1/endpoints/ops/replay?since=yesterday", "", admin, "")
                 .status == 400);
}

BOOST_AUTO_TEST_CASE(sigterm_exits_zero) {
  daemon_fixture f;
  auto receiver = f.make_receiver();
  f.start({{"ops", daemon_fixture::url_of(*receiver)}});
  f.post_events(sample_event());
  BOOST_REQUIRE(receiver->wait_for(1, std::chrono::seconds{10}));
  BOOST_TEST(f.terminate() == 0);
}

BOOST_AUTO_TEST_SUITE_END()
