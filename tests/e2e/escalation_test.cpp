// Escalation rules in the daemon: repeated denials from one agent page
// on-call once (a critical event routed to a PagerDuty endpoint that takes
// only critical events), fewer do not, neither do events spread over more
// than a window, and a kill -9 in the middle neither loses the count nor
// makes it fire twice. A short window keeps the test fast.
#include "tests/e2e/fixture.hpp"
#include "tests/support/run_command.hpp"

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <fstream>
#include <thread>

using namespace tocsin::test;
using nlohmann::json;

namespace {

constexpr const char* routing_key = "R0ut1ngKeyR0ut1ngKeyR0ut1ngKey32";

/// The receiver's requests' JSON bodies.
std::vector<json> bodies(const https_receiver& r) {
  std::vector<json> out;
  for (auto& req : r.requests())
    out.push_back(json::parse(req.body, nullptr, false));
  return out;
}

json denial(const std::string& agent, const std::string& type) {
  auto e = sample_event(agent);
  e["type"] = type;
  e["severity"] = "high";
  return e;
}

/// Posts `n` events of `type` from `agent`, one request each.
std::vector<std::string> post_n(daemon_fixture& f, int n,
                                const std::string& agent,
                                const std::string& type = "policy.denied") {
  std::vector<std::string> ids;
  for (int i = 0; i < n; ++i)
    ids.push_back(f.post_events(denial(agent, type)).at(0));
  return ids;
}

/// Waits until every accepted event is delivered to the catch-all
/// receiver (what was going to be routed has been).
void settle(https_receiver& all, std::size_t expected) {
  BOOST_REQUIRE_MESSAGE(all.wait_for(expected, std::chrono::seconds{20}),
                        "the catch-all endpoint got " << all.count() << " of "
                                                      << expected);
}

} // namespace

BOOST_AUTO_TEST_SUITE(escalation)

BOOST_AUTO_TEST_CASE(repeated_denials_page_once_across_a_kill_9) {
  daemon_fixture f;
  auto pager = f.make_receiver(always(answer(202, R"({"status":"success"})")));
  auto all = f.make_receiver();
  endpoint_spec pd{"pager", daemon_fixture::url_of(*pager)};
  pd.with_secret = false;
  pd.extra = "transport = \"pagerduty\"\nmin_severity = \"critical\"\n"
             "options = { routing_key = \"" +
             std::string{routing_key} + "\" }\n";
  endpoint_spec hook{"all", daemon_fixture::url_of(*all)};
  f.start({pd, hook}, {},
          // A long window for the restart, a short one for "spread over
          // two windows".
          "[[escalation]]\nname = \"repeated-denials\"\n"
          "type = \"policy.denied\"\nthreshold = 5\nwindow = 60\n"
          "group_by = \"agent_id\"\nseverity = \"critical\"\n"
          "summary = \"{agent_id}: {count} policy denials in {window}s\"\n"
          "[[escalation]]\nname = \"anomalies\"\n"
          "type = \"anomaly.detected\"\nthreshold = 5\nwindow = 1\n");

  // 4 denials: nothing pages.
  auto first = post_n(f, 4, "agent-1");
  settle(*all, 4);
  BOOST_TEST(pager->count() == 0u);

  // kill -9 inside the window; the count survives the restart.
  f.kill9();
  f.restart();
  auto fifth = post_n(f, 1, "agent-1");
  BOOST_REQUIRE(pager->wait_for(1, std::chrono::seconds{20}));
  settle(*all, 6); // the fifth and the escalation
  auto page = bodies(*pager).at(0);
  BOOST_TEST(page["event_action"] == "trigger");
  BOOST_TEST(page["routing_key"] == routing_key);
  BOOST_TEST(page["payload"]["severity"] == "critical");
  BOOST_TEST(page["payload"]["summary"] == "agent-1: 5 policy denials in 60s");
  auto& esc = page["payload"]["custom_details"]["escalation"];
  BOOST_TEST(esc["rule"] == "repeated-denials", page.dump());
  BOOST_TEST(esc["group"] == "agent-1");
  BOOST_TEST(esc["count"] == 5);
  json expected = json::array();
  for (auto& id : first)
    expected.push_back(id);
  expected.push_back(fifth[0]);
  BOOST_TEST(esc["event_ids"] == expected, esc.dump());
  // The escalation is an event of its own, readable through the API.
  auto derived = page["dedup_key"].get<std::string>().substr(7);
  auto shown = f.event(derived);
  BOOST_TEST(shown["event"]["severity"] == "critical");
  BOOST_TEST(shown["event"]["details"]["escalation"]["count"] == 5);

  // More inside the window, a kill -9, more still: no second page.
  post_n(f, 3, "agent-1");
  f.kill9();
  f.restart();
  post_n(f, 3, "agent-1");
  settle(*all, 12);
  BOOST_TEST(pager->count() == 1u);

  // Another agent is counted apart: 4 do not page.
  post_n(f, 4, "agent-2");
  settle(*all, 16);
  BOOST_TEST(pager->count() == 1u);

  // 5 anomalies spread over two 1-second windows: nothing.
  post_n(f, 3, "agent-3", "anomaly.detected");
  std::this_thread::sleep_for(std::chrono::milliseconds{1200});
  post_n(f, 2, "agent-3", "anomaly.detected");
  settle(*all, 21);
  BOOST_TEST(pager->count() == 1u);
  for (auto& b : bodies(*all))
    BOOST_TEST(!(b["details"].contains("escalation") &&
                 b["details"]["escalation"]["rule"] == "anomalies"),
               b.dump());
  // Producers cannot pass their events off as escalations.
  auto forged = denial("agent-1", "policy.denied");
  forged["details"]["escalation"] = {{"rule", "repeated-denials"}};
  auto refused = f.post("/v1/events", forged.dump(), f.admin_token());
  BOOST_TEST(refused.status == 400);
  BOOST_TEST(error_of(refused)["code"] == "reserved_field", refused.body);
}

BOOST_AUTO_TEST_CASE(malformed_rules_are_refused_at_start_with_one_line) {
  daemon_fixture f;
  for (auto [rule, words] :
       {std::pair{"threshold = 1\nwindow = 60\n", "threshold"},
        std::pair{"threshold = 5\nwindow = 0\n", "window"},
        std::pair{"threshold = 5\nwindow = 60\ncolour = \"red\"\n",
                  "colour"}}) {
    std::ofstream cfg{f.dir() / "bad.toml"};
    cfg << "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \""
        << (f.dir() / "data").string() << "\"\n"
        << "[[escalation]]\nname = \"r\"\ntype = \"policy.denied\"\n"
        << rule;
    cfg.close();
    auto r = run_command(
        {TOCSIN_BINARY, "serve", "--config", (f.dir() / "bad.toml").string()},
        {});
    BOOST_TEST(r.code != 0, r);
    BOOST_TEST(contains(r.err, words), r);
    BOOST_TEST(contains(r.err, "escalation[0]"), r);
    BOOST_TEST(std::count(r.err.begin(), r.err.end(), '\n') <= 1, r);
  }
}

BOOST_AUTO_TEST_SUITE_END()
