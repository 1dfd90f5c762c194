// The API layer without sockets: one check per role boundary of every route.
#include "api/handler.hpp"

#include "common/encoding.hpp"
#include "tests/support/fakes.hpp"

#include <boost/test/unit_test.hpp>

using namespace tocsin;

namespace {

struct api_fixture {
  test::fake_engine engine;
  test::empty_log log;
  api::request_handler handler{
      engine, log,
      api::authenticator{{{"a", hex_encode(sha256("admin-t")), "admin"},
                          {"i", hex_encode(sha256("ingest-t")), "ingest"},
                          {"r", hex_encode(sha256("read-t")), "read"}}},
      api::handler_options{}};

  int status(const std::string& method, const std::string& target,
             const std::string& token, const std::string& body = {}) {
    api::request req;
    req.method = method;
    req.target = target;
    req.content_type = "application/json";
    if (!token.empty())
      req.authorization = "Bearer " + token;
    req.body = body;
    int got = 0;
    handler.handle(std::move(req), [&](api::response r) { got = r.status; });
    return got;
  }
};

const std::string event = R"({"type":"system.health","summary":"ok"})";

} // namespace

BOOST_FIXTURE_TEST_SUITE(handler, api_fixture)

BOOST_AUTO_TEST_CASE(every_route_checks_its_role) {
  struct route {
    std::string method, target, body;
    int admin, ingest, read;
  };
  // Expected statuses per role; 401 without or with an unknown token.
  std::vector<route> routes{
      {"POST", "/v1/events", event, 202, 202, 403},
      {"GET", "/v1/events/evt_01JD0000000000000000000000", "", 404, 403, 404},
      {"GET", "/v1/events?state=open", "", 200, 403, 200},
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

BOOST_AUTO_TEST_CASE(a_full_queue_answers_503_with_retry_after) {
  // An engine that holds every request (a store that stopped answering).
  struct holding_engine final : actors::engine {
    void ingest(delivery::ingest_batch b,
                delivery::ingest_callback done) override {
      held.emplace_back(std::move(b), std::move(done));
    }
    void change_endpoint(delivery::endpoint_change,
                         delivery::endpoint_change_callback) override {}
    void replay(delivery::replay_selection,
                delivery::replay_callback) override {}
    void answer(delivery::answer_request, delivery::answer_callback) override {}
    void drain(std::chrono::milliseconds) override {}
    std::vector<std::pair<delivery::ingest_batch, delivery::ingest_callback>>
        held;
  } slow;
  api::handler_options opts;
  opts.max_queued_requests = 3;
  opts.max_queued_bytes = 64 << 20;
  api::request_handler handler{
      slow, log,
      api::authenticator{{{"a", hex_encode(sha256("admin-t")), "admin"}}},
      opts};
  // Answers may come after post() returned: they go where it left them.
  auto post = [&](const std::string& body) {
    api::request req{"POST",           "/v1/events", "application/json",
                     "Bearer admin-t", "",           body};
    auto got = std::make_shared<api::response>(api::response{0, {}, {}});
    handler.handle(std::move(req), [got](api::response r) { *got = r; });
    return *got;
  };
  for (int i = 0; i < 3; ++i)
    BOOST_TEST(post(event).status == 0); // waiting, not answered
  auto refused = post(event);
  BOOST_TEST(refused.status == 503);
  BOOST_TEST(refused.body.find("overloaded") != std::string::npos);
  BOOST_TEST((refused.headers.at(0) ==
              std::pair<std::string, std::string>{"Retry-After", "1"}));
  // A refused or invalid request holds no place in the queue.
  BOOST_TEST(post("{").status == 503); // still full: refused before parsing
  // Once the store answers, there is room again.
  for (auto& [batch, done] : slow.held)
    done(delivery::ingest_answer{{batch.events.at(0).id}, 0});
  slow.held.clear();
  BOOST_TEST(post(event).status == 0);
  BOOST_TEST(post("{").status == 400);
  BOOST_TEST(post(event).status == 0);
  BOOST_TEST(post(event).status == 0);
  BOOST_TEST(post(event).status == 503);
  // Bytes count too: one request over max_queued_bytes is refused alone.
  slow.held.clear();
  api::handler_options small;
  small.max_queued_bytes = event.size() * 2;
  api::request_handler bytes_bound{
      slow, log,
      api::authenticator{{{"a", hex_encode(sha256("admin-t")), "admin"}}},
      small};
  auto post_to = [&](api::request_handler& h) {
    api::request req{"POST",           "/v1/events", "application/json",
                     "Bearer admin-t", "",           event};
    auto got = std::make_shared<int>(0);
    h.handle(std::move(req), [got](api::response r) { *got = r.status; });
    return *got;
  };
  BOOST_TEST(post_to(bytes_bound) == 0);
  BOOST_TEST(post_to(bytes_bound) == 0);
  BOOST_TEST(post_to(bytes_bound) == 503);
  for (auto& [batch, done] : slow.held)
    done(delivery::ingest_answer{{batch.events.at(0).id}, 0});
}

BOOST_AUTO_TEST_CASE(a_reused_idempotency_key_is_422) {
  struct refusing_engine final : actors::engine {
    void ingest(delivery::ingest_batch,
                delivery::ingest_callback done) override {
      done(error{"idempotency_key_reused", "used for other content",
                 "Idempotency-Key"});
    }
    void change_endpoint(delivery::endpoint_change,
                         delivery::endpoint_change_callback) override {}
    void replay(delivery::replay_selection,
                delivery::replay_callback) override {}
    void answer(delivery::answer_request, delivery::answer_callback) override {}
    void drain(std::chrono::milliseconds) override {}
  } refusing;
  api::request_handler handler{
      refusing, log,
      api::authenticator{{{"a", hex_encode(sha256("admin-t")), "admin"}}},
      api::handler_options{}};
  api::request req{"POST",           "/v1/events", "application/json",
                   "Bearer admin-t", "key-1",      event};
  api::response got{0, {}, {}};
  handler.handle(std::move(req), [&](api::response r) { got = r; });
  BOOST_TEST(got.status == 422);
  BOOST_TEST(got.body.find("idempotency_key_reused") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(paths_are_routed_by_segment) {
  // Ids with the names of sub-resources, trailing slashes, empty segments.
  BOOST_TEST(status("GET", "/v1/endpoints/", "read-t") == 200);
  BOOST_TEST(status("GET", "/v1/endpoints//", "read-t") == 404);
  BOOST_TEST(status("POST", "/v1/endpoints/replay", "admin-t") == 405);
  BOOST_TEST(status("POST", "/v1/endpoints/replay/replay", "admin-t") == 202);
  BOOST_TEST(status("GET", "/v1/endpoints/replay", "read-t") == 404);
  BOOST_TEST(status("POST", "/v1/endpoints/a/b/replay", "admin-t") == 404);
  BOOST_TEST(status("HEAD", "/v1/dead-letters", "read-t") == 200);
  BOOST_TEST(status("HEAD", "/healthz", "") == 200);
  BOOST_TEST(status("GET", "", "admin-t") == 404);
  BOOST_TEST(status("GET", "healthz", "") == 404);
  BOOST_TEST(status("POST", "/v1/endpoints", "admin-t",
                    R"({"id":"replay","url":"https://h.example/"})") == 400);
  BOOST_TEST(status("POST", "/v1/endpoints", "admin-t",
                    R"({"id":"..","url":"https://h.example/"})") == 400);
}

BOOST_AUTO_TEST_CASE(store_reads_run_where_offload_says) {
  // Routes that read the store run on the offload threads (never on the
  // HTTP I/O thread); ingest and health stay where they are.
  std::vector<std::function<void()>> parked;
  api::handler_options opts;
  opts.offload = [&](std::function<void()> work) {
    parked.push_back(std::move(work));
  };
  api::request_handler h{
      engine, log,
      api::authenticator{{{"a", hex_encode(sha256("admin-t")), "admin"}}},
      opts};
  auto status_of = [&](std::string method, std::string target,
                       std::string body = {}) {
    api::request req{std::move(method),
                     std::move(target),
                     "application/json",
                     "Bearer admin-t",
                     "",
                     std::move(body)};
    auto got = std::make_shared<int>(0);
    h.handle(std::move(req), [got](api::response r) { *got = r.status; });
    return got;
  };
  BOOST_TEST(*status_of("GET", "/healthz") == 200);
  BOOST_TEST(*status_of("POST", "/v1/events", event) == 202);
  BOOST_TEST(parked.empty());
  auto dead = status_of("GET", "/v1/dead-letters");
  auto ev = status_of("GET", "/v1/events/evt_01JD0000000000000000000000");
  auto eps = status_of("GET", "/v1/endpoints");
  BOOST_TEST(parked.size() == 3u);
  BOOST_TEST(*dead == 0); // not answered until the work runs
  for (auto& work : parked)
    work();
  BOOST_TEST(*dead == 200);
  BOOST_TEST(*ev == 404);
  BOOST_TEST(*eps == 200);
}

BOOST_AUTO_TEST_SUITE_END()
