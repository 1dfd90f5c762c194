// The HTTP server with an engine that never answers: requests still get an
// answer, within server.request_timeout.
#include "api/server.hpp"

#include "common/encoding.hpp"
#include "tests/support/fakes.hpp"
#include "tests/support/http_client.hpp"

#include <boost/test/unit_test.hpp>

using namespace tocsin;

namespace {

/// Takes every request and never answers (a store that hangs).
struct silent_engine final : actors::engine {
  void ingest(delivery::ingest_batch, delivery::ingest_callback done) override {
    held.push_back(std::move(done));
  }
  void change_endpoint(delivery::endpoint_change,
                       delivery::endpoint_change_callback) override {}
  void replay(delivery::replay_selection, delivery::replay_callback) override {}
  void answer(delivery::answer_request, delivery::answer_callback) override {}
  void drain(std::chrono::milliseconds) override {}
  std::vector<delivery::ingest_callback> held;
};

} // namespace

BOOST_AUTO_TEST_SUITE(server)

BOOST_AUTO_TEST_CASE(an_answer_that_never_comes_is_a_503_in_time) {
  silent_engine engine;
  test::empty_log log;
  api::request_handler handler{
      engine, log,
      api::authenticator{{{"a", hex_encode(sha256("admin-t")), "admin"}}},
      api::handler_options{}};
  api::server_options opts;
  opts.listen = "127.0.0.1:0";
  opts.request_timeout = std::chrono::milliseconds{300};
  auto server = api::start_server(opts, handler);
  BOOST_REQUIRE(server);
  auto address = (*server)->address();
  auto port = static_cast<std::uint16_t>(
      std::stoi(address.substr(address.rfind(':') + 1)));
  test::http_client client{"127.0.0.1", port};
  auto start = std::chrono::steady_clock::now();
  auto r = client.request("POST", "/v1/events",
                          R"({"type":"system.health","summary":"s"})",
                          {{"authorization", "Bearer admin-t"},
                           {"content-type", "application/json"},
                           {"idempotency-key", "k1"}});
  auto took = std::chrono::steady_clock::now() - start;
  BOOST_TEST(r.status == 503, r.body << r.error);
  BOOST_TEST(r.body.find("answer_timeout") != std::string::npos, r.body);
  BOOST_TEST(r.headers["retry-after"] == "1");
  BOOST_TEST((took >= std::chrono::milliseconds{250}));
  BOOST_TEST((took < std::chrono::seconds{5}));
  // The late answer finds the connection answered already: ignored.
  BOOST_REQUIRE(engine.held.size() == 1u);
  engine.held[0](delivery::ingest_answer{{"evt_x"}, 0});
  // The server serves on.
  test::http_client again{"127.0.0.1", port};
  BOOST_TEST(again.request("GET", "/healthz").status == 200);
  (*server)->stop();
}

BOOST_AUTO_TEST_SUITE_END()
