// GET /v1/stream against the real daemon: what happens arrives in order with
// the log's sequence numbers; a client that reconnects with `since` misses
// nothing; the token works by header, query parameter or subprotocol and is
// never logged; filters; bad requests are refused before the upgrade; a
// client that stops reading and a hundred idle ones do not hold deliveries
// back.
#include "tests/e2e/fixture.hpp"
#include "tests/support/ws_client.hpp"

#include <boost/test/unit_test.hpp>

#include <memory>

using namespace tocsin::test;
using nlohmann::json;

namespace {

/// Frames until one of `type` (included), at most `limit`.
std::vector<json> until(ws_client& c, const std::string& type,
                        std::size_t limit = 50) {
  std::vector<json> out;
  while (out.size() < limit) {
    auto f = c.read();
    BOOST_REQUIRE_MESSAGE(f, "no frame: " << c.error());
    out.push_back(json::parse(*f));
    if (out.back()["type"] == type)
      break;
  }
  return out;
}

std::vector<std::string> types_of(const std::vector<json>& frames) {
  std::vector<std::string> out;
  for (auto& f : frames)
    out.push_back(f["type"]);
  return out;
}

std::pair<std::string, std::string> bearer(const std::string& token) {
  return {"Authorization", "Bearer " + token};
}

} // namespace

BOOST_AUTO_TEST_SUITE(stream)

BOOST_AUTO_TEST_CASE(what_happens_arrives_in_order_and_resumes_with_since) {
  daemon_fixture f;
  auto receiver = f.make_receiver();
  f.start({{"ops", daemon_fixture::url_of(*receiver)}});
  ws_client c{f.api_port(), "/v1/stream", {bearer(f.admin_token())}};
  BOOST_REQUIRE_MESSAGE(c.ok(), c.error());

  auto id = f.post_events(sample_event()).at(0);
  auto frames = until(c, "delivery.delivered");
  BOOST_TEST((types_of(frames) ==
              std::vector<std::string>{"event.accepted", "delivery.attempted",
                                       "delivery.delivered"}));
  auto& accepted = frames[0];
  BOOST_TEST(accepted["event"]["id"] == id);
  BOOST_TEST(accepted["event"]["type"] == "policy.denied");
  BOOST_TEST(accepted["event"]["agent_id"] == "agent-7");
  BOOST_TEST(accepted["event"].contains("summary"));
  BOOST_TEST(frames[1]["status"] == 200);
  BOOST_TEST(frames[1]["endpoint_id"] == "ops");
  BOOST_TEST(frames[1]["latency_ms"].is_number());
  std::uint64_t last = 0;
  for (auto& fr : frames) {
    BOOST_TEST(fr["seq"].get<std::uint64_t>() > last, fr.dump());
    last = fr["seq"];
  }
  auto acked = f.call("POST", "/v1/events/" + id + "/ack",
                      json{{"by", "alice"}, {"note", "looking"}});
  BOOST_REQUIRE(acked.status == 200);
  auto ack = until(c, "event.acknowledged").back();
  BOOST_TEST(ack["event_id"] == id);
  BOOST_TEST(ack["by"] == "alice");
  BOOST_TEST(ack["source"] == "api");
  last = ack["seq"];
  c.close();

  // Disconnected: two more events. Resuming from the last frame seen
  // brings exactly what came after it, in order.
  auto more = f.post_events(json{{"events", {sample_event(), sample_event()}}});
  for (auto& e : more)
    f.wait_finished(e);
  ws_client again{f.api_port(),
                  "/v1/stream?since=" + std::to_string(last),
                  {bearer(f.admin_token())}};
  BOOST_REQUIRE_MESSAGE(again.ok(), again.error());
  std::vector<json> resumed;
  std::size_t delivered = 0;
  while (delivered < 2) {
    auto fr = again.read();
    BOOST_REQUIRE_MESSAGE(fr, again.error());
    resumed.push_back(json::parse(*fr));
    delivered += resumed.back()["type"] == "delivery.delivered";
  }
  BOOST_TEST(resumed.front()["seq"].get<std::uint64_t>() > last);
  std::vector<std::string> accepted_ids;
  for (auto& fr : resumed)
    if (fr["type"] == "event.accepted")
      accepted_ids.push_back(fr["event"]["id"]);
  BOOST_TEST(accepted_ids == more);
  // And it goes on live.
  auto live = f.post_events(sample_event()).at(0);
  auto tail = until(again, "event.accepted");
  BOOST_TEST(tail.back()["event"]["id"] == live);
}

BOOST_AUTO_TEST_CASE(the_token_works_three_ways_and_is_never_logged) {
  daemon_fixture f;
  f.use_admin_token("admin-secret-token");
  f.start({}, {},
          token_toml("admin", "admin-secret-token", "admin") +
              token_toml("reader", "reader-secret-token", "read") +
              token_toml("producer", "producer-secret-token", "ingest"));
  // Header, query parameter, subprotocol (browsers can send only these).
  ws_client header{f.api_port(), "/v1/stream", {bearer("reader-secret-token")}};
  BOOST_TEST(header.ok(), header.error());
  ws_client query{f.api_port(), "/v1/stream?token=reader-secret-token"};
  BOOST_TEST(query.ok(), query.error());
  ws_client proto{f.api_port(),
                  "/v1/stream",
                  {{"Sec-WebSocket-Protocol", "tocsin, reader-secret-token"}}};
  BOOST_TEST(proto.ok(), proto.error());
  BOOST_TEST(proto.protocol() == "tocsin");
  // Refused before the upgrade: no token, a wrong one, the wrong role, bad
  // filters, another path.
  BOOST_TEST(ws_client(f.api_port(), "/v1/stream").status() == 401);
  BOOST_TEST(ws_client(f.api_port(), "/v1/stream?token=nope").status() == 401);
  BOOST_TEST(ws_client(f.api_port(), "/v1/stream?token=producer-secret-token")
                 .status() == 403);
  for (auto* q :
       {"types=bogus", "min_severity=urgent", "since=-1", "since=12x"})
    BOOST_TEST(ws_client(f.api_port(), std::string{"/v1/stream?"} + q,
                         {bearer("reader-secret-token")})
                       .status() == 400,
               q);
  BOOST_TEST(
      ws_client(f.api_port(), "/v1/endpoints", {bearer("reader-secret-token")})
          .status() == 404);
  // Without an upgrade: 426.
  BOOST_TEST(f.get("/v1/stream", "reader-secret-token").status == 426);
  // The token is in no log line.
  f.post_events(sample_event());
  BOOST_REQUIRE(query.read());
  BOOST_TEST(!contains(f.process().log(), "reader-secret-token"));
}

BOOST_AUTO_TEST_CASE(filters_leave_out_what_was_not_asked_for) {
  daemon_fixture f;
  auto a = f.make_receiver();
  auto b = f.make_receiver();
  f.start(
      {{"a", daemon_fixture::url_of(*a)}, {"b", daemon_fixture::url_of(*b)}});
  ws_client c{f.api_port(),
              "/v1/stream?types=delivery.delivered,event.accepted&endpoint=a&"
              "min_severity=high",
              {bearer(f.admin_token())}};
  BOOST_REQUIRE_MESSAGE(c.ok(), c.error());
  auto low = sample_event();
  low["severity"] = "low";
  auto high = sample_event();
  high["severity"] = "critical";
  auto ids = f.post_events(json{{"events", {low, high}}});
  for (auto& id : ids)
    f.wait_finished(id);
  auto first = json::parse(*c.read());
  BOOST_TEST(first["type"] == "event.accepted");
  BOOST_TEST(first["event"]["id"] == ids[1]); // the low one is left out
  auto second = json::parse(*c.read());
  // Deliveries carry no severity: both of a's pass, none of b's.
  BOOST_TEST(second["type"] == "delivery.delivered");
  BOOST_TEST(second["endpoint_id"] == "a");
  auto third = json::parse(*c.read());
  BOOST_TEST(third["type"] == "delivery.delivered");
  BOOST_TEST(third["endpoint_id"] == "a");
}

// One client that never reads and a hundred idle ones: deliveries go on at
// full speed; the stalled client's frames are dropped for it alone, and a
// client that reads gets everything.
BOOST_AUTO_TEST_CASE(a_stalled_client_holds_nothing_back) {
  daemon_fixture f;
  auto receiver = f.make_receiver();
  f.start({{"ops", daemon_fixture::url_of(*receiver)}});
  std::vector<std::unique_ptr<ws_client>> idle;
  for (int i = 0; i < 100; ++i) {
    idle.push_back(std::make_unique<ws_client>(
        f.api_port(), "/v1/stream?types=endpoint.health",
        std::vector{bearer(f.admin_token())}));
    BOOST_REQUIRE_MESSAGE(idle.back()->ok(), idle.back()->error());
  }
  ws_client stalled{f.api_port(), "/v1/stream", {bearer(f.admin_token())}};
  BOOST_REQUIRE(stalled.ok());
  ws_client reader{f.api_port(),
                   "/v1/stream?types=delivery.delivered",
                   {bearer(f.admin_token())}};
  BOOST_REQUIRE(reader.ok());
  // 10,000 events, each with a big summary (some 17 MB of frames): far more
  // than the stalled client's socket buffers and queue hold.
  json batch = json::array();
  for (int i = 0; i < 500; ++i) {
    auto e = sample_event();
    e["summary"] = std::string(1000, 's');
    batch.push_back(e);
  }
  std::vector<std::string> ids;
  for (int r = 0; r < 20; ++r) {
    auto got = f.post_events(json{{"events", batch}});
    ids.insert(ids.end(), got.begin(), got.end());
  }
  BOOST_REQUIRE(receiver->wait_for(10000, std::chrono::seconds{60}));
  std::size_t delivered = 0;
  while (delivered < 10000) {
    auto fr = reader.read();
    BOOST_REQUIRE_MESSAGE(fr, "after " << delivered << ": " << reader.error());
    BOOST_TEST(json::parse(*fr)["type"] == "delivery.delivered");
    ++delivered;
  }
  // The stalled client reads at last: it gets what it has queued, then hears
  // it lagged.
  bool lagged = false;
  for (int i = 0; i < 40000 && !lagged; ++i) {
    auto fr = stalled.read(std::chrono::seconds{5});
    BOOST_REQUIRE_MESSAGE(fr, stalled.error());
    auto j = json::parse(*fr);
    if (j["type"] == "stream.lagged") {
      lagged = true;
      BOOST_TEST(j["dropped"].get<int>() > 0);
    }
  }
  BOOST_TEST(lagged);
  BOOST_TEST(f.process().running());
}

BOOST_AUTO_TEST_SUITE_END()
