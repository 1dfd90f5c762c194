// The shipped webhook transport, loaded from the build's plugin directory like
// any plugin: its request and its classification table.
#include "tests/support/plugin_calls.hpp"
#include "tests/transports/transport_test_support.hpp"

#include <boost/test/unit_test.hpp>

using namespace tocsin::plugins;
using namespace tocsin::test;

namespace {

const transport_plugin& webhook() {
  return shipped_plugin("webhook");
}

} // namespace

BOOST_AUTO_TEST_SUITE(webhook_transport)

BOOST_AUTO_TEST_CASE(posts_the_payload_as_is_and_asks_to_be_signed) {
  auto& p = webhook();
  BOOST_TEST(p.signs_requests());
  BOOST_TEST(p.default_rate_per_second() == 0);
  std::string payload = R"({"id":"evt_1","type":"system.health"})";
  event_view ev{};
  ev.id = "evt_1";
  ev.payload_json = payload;
  auto r = build_with(p, ev, {"ep", "https://hooks.example/in", "{}"});
  BOOST_TEST_REQUIRE(r.ok());
  check_post(*r, "application/json");
  BOOST_TEST(r->body == payload);
}

BOOST_AUTO_TEST_CASE(takes_no_options) {
  BOOST_TEST(webhook().validate_options("{}").ok());
  BOOST_TEST(webhook().validate_options("{ }").ok());
  auto bad = webhook().validate_options(R"({"routing_key":"x"})");
  BOOST_TEST_REQUIRE(!bad.ok());
  BOOST_TEST(bad.error().message.find("no options") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(classification_table) {
  struct row {
    int status;
    outcome expected;
  };
  for (auto [status, expected] : std::vector<row>{
           {200, outcome::success},   {201, outcome::success},
           {204, outcome::success},   {299, outcome::success},
           {301, outcome::retry},     {307, outcome::retry},
           {400, outcome::permanent}, {401, outcome::permanent},
           {403, outcome::permanent}, {404, outcome::permanent},
           {408, outcome::retry},     {410, outcome::disable_endpoint},
           {413, outcome::permanent}, {422, outcome::permanent},
           {425, outcome::retry},     {429, outcome::retry},
           {500, outcome::retry},     {502, outcome::retry},
           {503, outcome::retry},     {599, outcome::retry},
       })
    BOOST_TEST((classify_with(webhook(), status, "", "").what == expected),
               "status " << status);
}

BOOST_AUTO_TEST_SUITE_END()
