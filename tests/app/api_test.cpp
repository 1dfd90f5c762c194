// The API layer without sockets: one check per role boundary of every route.
#include "app/api.hpp"

#include "common/encoding.hpp"
#include "tests/support/fakes.hpp"

#include <boost/test/unit_test.hpp>

using namespace tocsin;

namespace {

struct api_fixture {
  test::fake_engine engine;
  test::empty_log log;
  app::api handler{
      engine, log,
      app::authenticator{{{"a", hex_encode(sha256("admin-t")), "admin"},
                          {"i", hex_encode(sha256("ingest-t")), "ingest"},
                          {"r", hex_encode(sha256("read-t")), "read"}}},
      app::api_options{}};

  int status(const std::string& method, const std::string& target,
             const std::string& token, const std::string& body = {}) {
    app::api_request req;
    req.method = method;
    req.target = target;
    req.content_type = "application/json";
    if (!token.empty())
      req.authorization = "Bearer " + token;
    req.body = body;
    int got = 0;
    handler.handle(std::move(req),
                   [&](app::api_response r) { got = r.status; });
    return got;
  }
};

const std::string event = R"({"type":"system.health","summary":"ok"})";

} // namespace

BOOST_FIXTURE_TEST_SUITE(api, api_fixture)

BOOST_AUTO_TEST_CASE(every_route_checks_its_role) {
  struct route {
    std::string method, target, body;
    int admin, ingest, read;
  };
  // Expected statuses per role; 401 without or with an unknown token.
  std::vector<route> routes{
      {"POST", "/v1/events", event, 202, 202, 403},
      {"GET", "/v1/events/evt_01JD0000000000000000000000", "", 404, 403, 404},
      {"GET", "/v1/dead-letters", "", 200, 403, 200},
      {"POST", "/v1/dead-letters/dlv_01JD0000000000000000000000/replay", "",
       202, 403, 403},
      {"POST", "/v1/endpoints/ops/replay", "", 202, 403, 403},
      {"GET", "/v1/endpoints", "", 200, 403, 200},
      {"POST", "/v1/endpoints", R"({"url":"https://hooks.example/in"})", 201,
       403, 403},
      {"GET", "/v1/endpoints/ops", "", 404, 403, 404},
      {"PATCH", "/v1/endpoints/ops", R"({"enabled":false})", 404, 403, 403},
      {"DELETE", "/v1/endpoints/ops", "", 404, 403, 403},
      {"POST", "/v1/endpoints/ops/rotate-secret", "", 404, 403, 403},
  };
  for (auto& r : routes) {
    auto what = r.method + " " + r.target;
    BOOST_TEST(status(r.method, r.target, "admin-t", r.body) == r.admin, what);
    BOOST_TEST(status(r.method, r.target, "ingest-t", r.body) == r.ingest,
               what);
    BOOST_TEST(status(r.method, r.target, "read-t", r.body) == r.read, what);
    BOOST_TEST(status(r.method, r.target, "", r.body) == 401, what);
    BOOST_TEST(status(r.method, r.target, "wrong-t", r.body) == 401, what);
  }
}

BOOST_AUTO_TEST_CASE(health_needs_no_token) {
  BOOST_TEST(status("GET", "/healthz", "") == 200);
  BOOST_TEST(status("GET", "/readyz", "") == 200);
  BOOST_TEST(status("POST", "/healthz", "") == 405);
}

BOOST_AUTO_TEST_CASE(unknown_routes_and_methods) {
  BOOST_TEST(status("GET", "/v1/nope", "admin-t") == 404);
  BOOST_TEST(status("DELETE", "/v1/events", "admin-t") == 405);
  BOOST_TEST(status("GET", "/v1/dead-letters/x/replay", "admin-t") == 405);
  BOOST_TEST(status("POST", "/v1/dead-letters//replay", "admin-t") == 404);
}

BOOST_AUTO_TEST_CASE(endpoint_bodies_are_checked_before_anything_changes) {
  BOOST_TEST(status("POST", "/v1/endpoints", "admin-t", "{") == 400);
  BOOST_TEST(status("POST", "/v1/endpoints", "admin-t", "[]") == 400);
  BOOST_TEST(status("POST", "/v1/endpoints", "admin-t",
                    R"({"url":"http://x.example/"})") == 400);
  BOOST_TEST(status("PUT", "/v1/endpoints", "admin-t") == 405);
  BOOST_TEST(status("GET", "/v1/endpoints/ops/nope", "admin-t") == 404);
}

BOOST_AUTO_TEST_SUITE_END()
