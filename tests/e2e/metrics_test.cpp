// GET /metrics on a daemon that has delivered, retried and dead-lettered:
// the exposition passes `promtool check metrics` (Debian's prometheus
// package) and counts what happened; it needs a token unless
// server.public_metrics is set.
#include "tests/e2e/fixture.hpp"
#include "tests/support/run_command.hpp"

#include <boost/test/unit_test.hpp>

#include <sstream>

using namespace tocsin::test;
using nlohmann::json;

namespace {

/// The value of the sample whose line starts with `series` ("name{...}"),
/// or -1 when there is none.
double sample(const std::string& text, const std::string& series) {
  std::istringstream in{text};
  for (std::string line; std::getline(in, line);)
    if (line.rfind(series + " ", 0) == 0)
      return std::stod(line.substr(series.size() + 1));
  return -1;
}

} // namespace

BOOST_AUTO_TEST_SUITE(metrics_endpoint)

BOOST_AUTO_TEST_CASE(metrics_pass_promtool_and_count_what_happened) {
  daemon_fixture f;
  auto ok = f.make_receiver();
  auto flaky = f.make_receiver(first_then(answer(503, "busy"), answer(200)));
  auto bad = f.make_receiver(always(answer(400, "no")));
  auto types = R"(event_types = ["policy.denied"])";
  f.start({{"ok", daemon_fixture::url_of(*ok), "[0.05, 0.05]", types},
           {"flaky", daemon_fixture::url_of(*flaky), "[0.05, 0.05]", types},
           {"bad", daemon_fixture::url_of(*bad), "[0.05, 0.05]", types}});
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i)
    ids.push_back(f.post_events(sample_event()).at(0));
  for (auto& id : ids)
    f.wait_finished(id);
  auto acked = f.call("POST", "/v1/events/" + ids[0] + "/ack");
  BOOST_REQUIRE_MESSAGE(acked.status == 200, acked.body);

  // A token is needed (role read or admin).
  BOOST_TEST(f.get("/metrics").status == 401);
  auto got = f.get("/metrics", f.admin_token());
  BOOST_REQUIRE_EQUAL(got.status, 200);
  BOOST_TEST(got.headers["content-type"].rfind("text/plain", 0) == 0u);
  auto& text = got.body;
  BOOST_TEST_MESSAGE(text);

  auto checked = run_command({"/usr/bin/promtool", "check", "metrics"}, {text});
  BOOST_TEST(checked.code == 0, checked);

  BOOST_TEST(
      sample(text, R"(tocsin_events_accepted_total{type="policy.denied"})") ==
      3);
  BOOST_TEST(sample(text, R"(tocsin_deliveries_total{transport="webhook",)"
                          R"(outcome="delivered"})") == 6);
  BOOST_TEST(sample(text, R"(tocsin_deliveries_total{transport="webhook",)"
                          R"(outcome="dead_lettered"})") == 3);
  BOOST_TEST(sample(text, R"(tocsin_delivery_attempts_total{)"
                          R"(transport="webhook",class="5xx"})") == 1);
  BOOST_TEST(sample(text, R"(tocsin_delivery_attempts_total{)"
                          R"(transport="webhook",class="4xx"})") == 3);
  BOOST_TEST(sample(text, R"(tocsin_delivery_attempts_total{)"
                          R"(transport="webhook",class="2xx"})") == 6);
  BOOST_TEST(sample(text, "tocsin_delivery_attempt_duration_seconds_count") ==
             10);
  BOOST_TEST(sample(text, "tocsin_ingest_duration_seconds_count") == 3);
  BOOST_TEST(sample(text, R"(tocsin_dead_letters{endpoint="bad"})") == 3);
  BOOST_TEST(sample(text, R"(tocsin_dead_letters{endpoint="ok"})") == 0);
  BOOST_TEST(sample(text, R"(tocsin_pending_deliveries{endpoint="flaky"})") ==
             0);
  BOOST_TEST(
      sample(text, R"(tocsin_oldest_pending_age_seconds{endpoint="ok"})") == 0);
  BOOST_TEST(sample(text, R"(tocsin_circuit_open{endpoint="ok"})") == 0);
  BOOST_TEST(sample(text, R"(tocsin_acknowledgements_total{source="api",)"
                          R"(state="acknowledged"})") == 1);
  BOOST_TEST(sample(text, "tocsin_store_bytes") > 0);
  BOOST_TEST(text.find("tocsin_build_info{version=\"") != std::string::npos);
  BOOST_TEST(text.find("# TYPE tocsin_escalations_total counter") !=
             std::string::npos);
  // No event or agent id in any label.
  BOOST_TEST(text.find("evt_") == std::string::npos);
  BOOST_TEST(text.find("agent-7") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(public_metrics_need_no_token) {
  daemon_fixture f;
  f.start({}, "public_metrics = true\n");
  auto got = f.get("/metrics");
  BOOST_TEST(got.status == 200);
  BOOST_TEST(got.body.find("tocsin_build_info") != std::string::npos);
  // Only /metrics: the rest still needs its token.
  BOOST_TEST(f.get("/v1/endpoints").status == 401);
}

BOOST_AUTO_TEST_SUITE_END()
