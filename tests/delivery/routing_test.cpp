#include "delivery/routing.hpp"

#include <boost/test/unit_test.hpp>

using namespace tocsin::delivery;

BOOST_AUTO_TEST_SUITE(routing)

BOOST_AUTO_TEST_CASE(default_filter_takes_everything) {
  endpoint_filter f;
  BOOST_TEST(matches(f, {"policy.denied", 0, "agent-1"}));
  BOOST_TEST(matches(f, {"system.health", 4, ""}));
}

BOOST_AUTO_TEST_CASE(types_severity_and_agent_globs_filter) {
  endpoint_filter f{
      {"policy.denied", "anomaly.detected"}, 3, {"agent-*", "ops"}};
  BOOST_TEST(matches(f, {"policy.denied", 3, "agent-7"}));
  BOOST_TEST(matches(f, {"anomaly.detected", 4, "ops"}));
  BOOST_TEST(!matches(f, {"content.detected", 4, "agent-7"})); // type
  BOOST_TEST(!matches(f, {"policy.denied", 2, "agent-7"}));    // severity
  BOOST_TEST(!matches(f, {"policy.denied", 4, "bot-1"}));      // agent
}

BOOST_AUTO_TEST_SUITE_END()
