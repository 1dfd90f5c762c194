// The API's description against the router: every route the router knows
// is in docs/openapi.yaml (as embedded), and every path and method there is
// a route; GET /v1/openapi.json serves it with a validating ETag; and the
// answer checker the e2e walk relies on refuses what it should.
#include "api/handler.hpp"
#include "api/openapi.hpp"

#include "common/encoding.hpp"
#include "common/version.hpp"
#include "tests/support/fakes.hpp"
#include "tests/support/openapi_checker.hpp"

#include <boost/test/unit_test.hpp>

#include <nlohmann/json.hpp>

#include <set>

using namespace tocsin;
using nlohmann::json;

namespace {

/// "GET /v1/events/{}": a route with its parameters' names left out (the
/// router says {id}, the description names them).
std::string route_key(std::string method, const std::string& path) {
  std::string out = std::move(method) + " ";
  for (std::size_t i = 0; i < path.size(); ++i) {
    out += path[i];
    if (path[i] == '{')
      i = path.find('}', i) - 1;
  }
  return out;
}

json description() {
  return json::parse(api::openapi_json());
}

} // namespace

BOOST_AUTO_TEST_SUITE(openapi_description)

BOOST_AUTO_TEST_CASE(every_route_is_described_and_every_description_routed) {
  std::set<std::string> routed, described;
  for (auto& r : api::request_handler::route_table())
    routed.insert(route_key(r.method, r.path));
  auto doc = description();
  for (auto& [path, item] : doc["paths"].items())
    for (auto& [method, op] : item.items()) {
      std::string m;
      for (char c : method)
        m += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      if (m == "PARAMETERS" || m == "SUMMARY" || m == "DESCRIPTION")
        continue;
      described.insert(route_key(m, path));
    }
  for (auto& r : routed)
    BOOST_TEST(described.count(r) == 1u,
               r << " is routed but not in docs/openapi.yaml");
  for (auto& d : described)
    BOOST_TEST(routed.count(d) == 1u,
               d << " is in docs/openapi.yaml but not routed");
  BOOST_TEST(routed.size() >= 24u);
}

BOOST_AUTO_TEST_CASE(the_description_is_openapi_3_1_of_this_version) {
  auto doc = description();
  BOOST_TEST(doc["openapi"] == "3.1.0");
  BOOST_TEST(doc["info"]["version"] == std::string{version});
}

BOOST_AUTO_TEST_CASE(served_without_a_token_and_revalidated_by_etag) {
  test::fake_engine engine;
  test::empty_log log;
  api::request_handler handler{
      engine, log,
      api::authenticator{{{"a", hex_encode(sha256("admin-t")), "admin"}}},
      api::handler_options{}};
  auto get = [&](std::string if_none_match) {
    api::request req;
    req.method = "GET";
    req.target = "/v1/openapi.json";
    req.if_none_match = std::move(if_none_match);
    api::response got{0, {}, {}};
    handler.handle(std::move(req), [&](api::response r) { got = r; });
    return got;
  };
  auto header = [](const api::response& r, const std::string& name) {
    for (auto& [k, v] : r.headers)
      if (k == name)
        return v;
    return std::string{};
  };
  auto full = get("");
  BOOST_TEST(full.status == 200);
  BOOST_TEST(full.body == std::string{api::openapi_json()});
  auto etag = header(full, "ETag");
  BOOST_TEST(etag.size() == 34u, etag); // quoted, 32 hex digits
  BOOST_TEST(etag == std::string{api::openapi_etag()});
  BOOST_TEST(header(full, "Cache-Control") == "no-cache");
  for (auto& same :
       {etag, "W/" + etag, "\"other\", " + etag, std::string{"*"}}) {
    auto r = get(same);
    BOOST_TEST(r.status == 304, same);
    BOOST_TEST(r.body.empty());
    BOOST_TEST(header(r, "ETag") == etag);
  }
  BOOST_TEST(get("\"other\"").status == 200);
}

// The checker is what makes the e2e walk fail on an undocumented field,
// status or route: it must.
BOOST_AUTO_TEST_CASE(the_checker_refuses_what_the_description_does_not_say) {
  test::openapi_checker c{description()};
  auto ok = [&](const std::string& method, const std::string& target,
                int status, const std::string& body,
                const std::string& type = "application/json") {
    auto p = c.check_answer(method, target, status, type, body);
    std::string all;
    for (auto& s : p)
      all += s + "\n";
    BOOST_TEST(p.empty(), method << " " << target << ": " << all);
    return p.empty();
  };
  auto refused = [&](const std::string& method, const std::string& target,
                     int status, const std::string& body,
                     const std::string& why,
                     const std::string& type = "application/json") {
    auto p = c.check_answer(method, target, status, type, body);
    BOOST_TEST_REQUIRE(!p.empty(), method << " " << target << " " << body);
    BOOST_TEST(p.front().find(why) != std::string::npos, p.front());
  };
  ok("GET", "/healthz", 200, R"({"status":"ok"})");
  ok("HEAD", "/healthz", 200, "");
  refused("GET", "/healthz", 200, R"({"status":"ok","uptime":1})",
          "'uptime' is not documented");
  refused("GET", "/healthz", 200, R"({"status":"fine"})", "is not \"ok\"");
  refused("GET", "/healthz", 418, "{}", "status 418 is not documented");
  refused("GET", "/v1/nowhere", 200, "{}", "no path of the description");
  refused("PUT", "/healthz", 200, "{}", "PUT is not documented");
  refused("GET", "/healthz", 200, "ok", "Content-Type text/plain",
          "text/plain");
  auto error = R"({"error":{"code":"not_found","message":"no event"}})";
  ok("GET", "/v1/events/evt_01JD4Q3Z6X8K2M9N5P7R1S3T5V", 404, error);
  refused("GET", "/v1/events/evt_01JD4Q3Z6X8K2M9N5P7R1S3T5V", 404,
          R"({"error":{"message":"no event"}})", "'code' is missing");
  // Type lists, null, oneOf, formats, patterns, $ref chains.
  auto page = json{{"events", json::array()}, {"next_cursor", nullptr}};
  ok("GET", "/v1/events?limit=1", 200, page.dump());
  page["next_cursor"] = 5;
  refused("GET", "/v1/events", 200, page.dump(), "where the type is");
  auto& accepted = c.schema("Accepted");
  BOOST_TEST(c.check(json{{"ids", {"evt_01JD4Q3Z6X8K2M9N5P7R1S3T5V"}},
                          {"deliveries", 0},
                          {"events", json::array()}},
                     accepted)
                 .empty());
  BOOST_TEST(!c.check(json{{"ids", {"evt_x"}},
                           {"deliveries", 0},
                           {"events", json::array()}},
                      accepted)
                  .empty()); // pattern
  BOOST_TEST(!c.check(json{{"ids", json::array()},
                           {"deliveries", -1},
                           {"events", json::array()}},
                      accepted)
                  .empty()); // minimum
  auto& timestamp = c.schema("Timestamp");
  BOOST_TEST(c.check("2026-11-27T05:10:00.123Z", timestamp).empty());
  BOOST_TEST(!c.check("27/11/2026", timestamp).empty());
  // An endpoint as read never carries its secret (properties: secret: false).
  auto& endpoint = c.schema("EndpointWithoutSecret");
  auto ep = json::parse(c.schema("Endpoint")["example"].dump());
  BOOST_TEST(c.check(ep, endpoint).empty(), c.check(ep, endpoint).size());
  ep["secret"] = "whsec_x";
  BOOST_TEST(!c.check(ep, endpoint).empty());
  // Statuses checked and seen are recorded for the walk's coverage.
  BOOST_TEST(c.seen().at("GET /healthz").count(200) == 1u);
  BOOST_TEST(c.operations().size() >= 24u);
}

BOOST_AUTO_TEST_SUITE_END()
