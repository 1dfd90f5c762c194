// GET /v1/events against the real daemon: what needs attention (open
// critical events) at a glance, paged with the opaque cursor, the states of
// answered events, the bounds on what may be asked, and the role it needs.
#include "tests/e2e/fixture.hpp"

#include <boost/test/unit_test.hpp>

#include <algorithm>

using namespace tocsin::test;
using nlohmann::json;

namespace {

const std::string reader = "reader-token";
const std::string producer = "producer-token";

json answer_of(const http_result& r, const std::string& what) {
  BOOST_REQUIRE_MESSAGE(r.status == 200,
                        what << ": " << r.status << " " << r.body << r.error);
  auto j = json::parse(r.body, nullptr, false);
  BOOST_REQUIRE_MESSAGE(j.is_object() && j["events"].is_array(),
                        what << ": " << r.body);
  return j;
}

/// Every page of GET /v1/events?<query>, following next_cursor; the events
/// in order.
std::vector<json> all_pages(daemon_fixture& f, const std::string& query,
                            std::size_t* pages = nullptr) {
  std::vector<json> out;
  std::string cursor;
  for (std::size_t n = 1;; ++n) {
    BOOST_REQUIRE(n < 100);
    auto target = "/v1/events?" + query;
    if (!cursor.empty())
      target += "&cursor=" + cursor;
    auto page = answer_of(f.get(target, reader), target);
    for (auto& e : page["events"])
      out.push_back(e);
    BOOST_REQUIRE(page.contains("next_cursor"));
    if (page["next_cursor"].is_null()) {
      if (pages)
        *pages = n;
      return out;
    }
    cursor = page["next_cursor"].get<std::string>();
    BOOST_TEST(!cursor.empty());
  }
}

std::vector<std::string> ids_of(const std::vector<json>& events) {
  std::vector<std::string> out;
  for (auto& e : events)
    out.push_back(e["id"].get<std::string>());
  return out;
}

} // namespace

BOOST_AUTO_TEST_SUITE(events_list)

BOOST_AUTO_TEST_CASE(open_critical_events_are_listed_newest_first_in_pages) {
  daemon_fixture f;
  f.use_admin_token("admin-token");
  f.start({}, {},
          token_toml("admin", "admin-token", "admin") +
              token_toml("reader", reader, "read") +
              token_toml("producer", producer, "ingest"));
  // 12 events: 7 critical (by two agents), 5 high; two critical ones get
  // acknowledged, so 5 stay open and critical.
  json batch = json::array();
  for (int i = 0; i < 12; ++i) {
    auto e = sample_event(i % 2 == 0 ? "agent-a" : "agent-b");
    e["severity"] = i < 7 ? "critical" : "high";
    e["summary"] = "event " + std::to_string(i);
    batch.push_back(e);
  }
  auto ids = f.post_events(json{{"events", batch}});
  BOOST_REQUIRE_EQUAL(ids.size(), 12u);
  for (auto* i : {&ids[1], &ids[4]}) {
    auto r = f.call("POST", "/v1/events/" + *i + "/ack", json{{"by", "alice"}});
    BOOST_REQUIRE_MESSAGE(r.status == 200, r.body);
  }
  // Newest first: the reverse of the order they were accepted in.
  std::vector<std::string> open_critical;
  for (int i = 6; i >= 0; --i)
    if (i != 1 && i != 4)
      open_critical.push_back(ids[static_cast<std::size_t>(i)]);

  // All of them, on pages of two: three pages, the last without a cursor.
  std::size_t pages = 0;
  auto listed = all_pages(f, "state=open&severity=critical&limit=2", &pages);
  BOOST_TEST(ids_of(listed) == open_critical);
  BOOST_TEST(pages == 3u);
  for (auto& e : listed) {
    BOOST_TEST(e["state"] == "open", e.dump());
    BOOST_TEST(e["severity"] == "critical", e.dump());
    BOOST_TEST(!e.contains("acknowledged"), e.dump());
  }
  // What an item holds.
  auto& newest = listed.front();
  BOOST_TEST(newest["id"] == ids[6]);
  BOOST_TEST(newest["type"] == "policy.denied");
  BOOST_TEST(newest["agent_id"] == "agent-a");
  BOOST_TEST(newest["summary"] == "event 6");
  BOOST_TEST(newest["timestamp"].is_string());
  BOOST_TEST(newest["accepted_at"].is_string());
  // One page with all of them: no cursor.
  auto one = answer_of(f.get("/v1/events?state=open&severity=critical", reader),
                       "one page");
  BOOST_TEST(one["events"].size() == 5u);
  BOOST_TEST(one["next_cursor"].is_null());

  // The acknowledged ones show their state and who answered.
  auto acked = answer_of(f.get("/v1/events?state=acknowledged", reader), "ack");
  BOOST_REQUIRE_EQUAL(acked["events"].size(), 2u);
  BOOST_TEST(acked["events"][0]["id"] == ids[4]);
  BOOST_TEST(acked["events"][1]["id"] == ids[1]);
  for (auto& e : acked["events"]) {
    BOOST_TEST(e["state"] == "acknowledged");
    BOOST_TEST(e["acknowledged"]["by"] == "alice");
    BOOST_TEST(e["acknowledged"]["source"] == "api");
    BOOST_TEST(e["acknowledged"]["at"].is_string());
  }
  // The other filters, and everything with the defaults.
  auto agent_b = all_pages(f, "agent_id=agent-b&severity=high");
  BOOST_TEST(ids_of(agent_b) ==
             (std::vector<std::string>{ids[11], ids[9], ids[7]}));
  BOOST_TEST(all_pages(f, "type=anomaly.detected").empty());
  auto everything = answer_of(f.get("/v1/events", reader), "all");
  BOOST_TEST(everything["events"].size() == 12u);
  BOOST_TEST(everything["next_cursor"].is_null());
  // A time range (RFC 3339, any offset).
  BOOST_TEST(all_pages(f, "since=2000-01-01T00:00:00Z").size() == 12u);
  BOOST_TEST(all_pages(f, "until=2000-01-01T00:00:00Z").empty());
  BOOST_TEST(all_pages(f, "since=2999-01-01T00:00:00%2B02:00").empty());
}

BOOST_AUTO_TEST_CASE(bad_parameters_and_wrong_roles_are_refused) {
  daemon_fixture f;
  f.use_admin_token("admin-token");
  f.start({}, {},
          token_toml("admin", "admin-token", "admin") +
              token_toml("reader", reader, "read") +
              token_toml("producer", producer, "ingest"));
  f.post_events(sample_event());
  // Over the page limit: refused, naming `limit`.
  auto over = f.get("/v1/events?limit=501", reader);
  BOOST_TEST(over.status == 400);
  auto err = error_of(over);
  BOOST_TEST(err["field"] == "limit");
  BOOST_TEST(err["code"] == "invalid_field");
  BOOST_TEST(contains(err["message"].get<std::string>(), "500"), over.body);
  BOOST_TEST(f.get("/v1/events?limit=500", reader).status == 200);
  // Every filter's bad values, each naming its field.
  for (auto [query, field] : std::vector<std::pair<std::string, std::string>>{
           {"limit=0", "limit"},
           {"limit=ten", "limit"},
           {"limit=-1", "limit"},
           {"state=closed", "state"},
           {"severity=urgent", "severity"},
           {"type=agent.exploded", "type"},
           {"agent_id=" + std::string(300, 'a'), "agent_id"},
           {"since=yesterday", "since"},
           {"until=1700000000000", "until"},
           {"since=2030-01-01T00:00:00Z&until=2020-01-01T00:00:00Z", "until"},
           {"cursor=evt_01JD0000000000000000000000", "cursor"},
           {"cursor=not-a-cursor", "cursor"}}) {
    auto r = f.get("/v1/events?" + query, reader);
    BOOST_TEST(r.status == 400, query << ": " << r.body);
    if (r.status == 400)
      BOOST_TEST(error_of(r)["field"] == field, query << ": " << r.body);
  }
  // Role read (or admin); none, a wrong one or ingest are refused.
  BOOST_TEST(f.get("/v1/events", reader).status == 200);
  BOOST_TEST(f.get("/v1/events", "admin-token").status == 200);
  BOOST_TEST(f.get("/v1/events").status == 401);
  BOOST_TEST(f.get("/v1/events", "not-a-token").status == 401);
  BOOST_TEST(f.get("/v1/events", producer).status == 403);
}

BOOST_AUTO_TEST_SUITE_END()
