// The API layer without sockets: one check per role boundary of every route.
#include "api/handler.hpp"

#include "common/encoding.hpp"
#include "common/ids.hpp"
#include "storage/store.hpp"
#include "tests/support/fakes.hpp"
#include "tests/support/temp_dir.hpp"

#include <boost/test/unit_test.hpp>

#include <nlohmann/json.hpp>

#include <atomic>
#include <optional>
#include <thread>
#include <vector>

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
      {"GET", "/v1/cluster", "", 200, 403, 200},
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
    void reconfigure(delivery::reconfiguration,
                     delivery::endpoint_change_callback) override {}
    void replay(delivery::replay_selection,
                delivery::replay_callback) override {}
    void answer(delivery::answer_request, delivery::answer_callback) override {}
    void drain(std::chrono::milliseconds) override {}
    bool responsive(std::chrono::milliseconds) override { return true; }
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

namespace {

/// An engine whose every ingest fails with `refusal`.
struct refusing_engine final : actors::engine {
  explicit refusing_engine(error e) : refusal(std::move(e)) {}
  void ingest(delivery::ingest_batch, delivery::ingest_callback done) override {
    done(refusal);
  }
  void change_endpoint(delivery::endpoint_change,
                       delivery::endpoint_change_callback) override {}
  void reconfigure(delivery::reconfiguration,
                   delivery::endpoint_change_callback) override {}
  void replay(delivery::replay_selection, delivery::replay_callback) override {}
  void answer(delivery::answer_request, delivery::answer_callback) override {}
  void drain(std::chrono::milliseconds) override {}
  bool responsive(std::chrono::milliseconds) override { return true; }
  error refusal;
};

/// POST /v1/events of `event` as admin (with Idempotency-Key `key`) to an
/// engine that refuses it; the answer.
api::response refused_post(test::empty_log& log, error refusal,
                           const std::string& key = {}) {
  refusing_engine refusing{std::move(refusal)};
  api::request_handler handler{
      refusing, log,
      api::authenticator{{{"a", hex_encode(sha256("admin-t")), "admin"}}},
      api::handler_options{}};
  api::request req{"POST",           "/v1/events", "application/json",
                   "Bearer admin-t", key,          event};
  api::response got{0, {}, {}};
  handler.handle(std::move(req), [&](api::response r) { got = r; });
  return got;
}

} // namespace

BOOST_AUTO_TEST_CASE(a_reused_idempotency_key_is_422) {
  auto got = refused_post(
      log,
      {"idempotency_key_reused", "used for other content", "Idempotency-Key"},
      "key-1");
  BOOST_TEST(got.status == 422);
  BOOST_TEST(got.body.find("idempotency_key_reused") != std::string::npos);
  BOOST_TEST(got.headers.empty());
}

// A store out of reach (a database restarting, a disk full): producers are
// told to come back, and load balancers to send them elsewhere meanwhile.
BOOST_AUTO_TEST_CASE(a_store_that_refuses_writes_answers_503_with_retry_after) {
  auto got = refused_post(
      log, {"store_unavailable",
            "the event store refused the write; nothing was accepted"});
  BOOST_TEST(got.status == 503);
  BOOST_TEST(got.body.find("\"code\":\"store_unavailable\"") !=
                 std::string::npos,
             got.body);
  BOOST_TEST((got.headers == std::vector<std::pair<std::string, std::string>>{
                                 {"Retry-After", "1"}}));

  BOOST_TEST(status("GET", "/readyz", "") == 200);
  log.unwritable = error{"store_unavailable", "the database is restarting"};
  api::response ready{0, {}, {}};
  handler.handle(api::request{"GET", "/readyz", "", "", "", ""},
                 [&](api::response r) { ready = r; });
  BOOST_TEST(ready.status == 503);
  BOOST_TEST(ready.body.find("store_unavailable") != std::string::npos);
  log.unwritable.reset();
  BOOST_TEST(status("GET", "/readyz", "") == 200);
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
  auto nodes = status_of("GET", "/v1/cluster");
  BOOST_TEST(parked.size() == 4u);
  BOOST_TEST(*dead == 0); // not answered until the work runs
  for (auto& work : parked)
    work();
  BOOST_TEST(*dead == 200);
  BOOST_TEST(*ev == 404);
  BOOST_TEST(*eps == 200);
  BOOST_TEST(*nodes == 200);
}

namespace {

/// A cluster store whose nodes() a test sets.
struct fake_cluster final : storage::cluster_store {
  result<storage::membership>
  heartbeat(const storage::heartbeat_request&) override {
    return storage::membership{};
  }
  status leave(std::string_view) override { return {}; }
  result<std::vector<storage::node_record>>
  nodes(std::chrono::milliseconds ttl) override {
    asked_ttl = ttl;
    if (failure)
      return *failure;
    return all;
  }
  void
  listen(std::function<void(storage::cluster_news, std::uint64_t)>) override {}

  std::vector<storage::node_record> all;
  std::optional<error> failure;
  std::chrono::milliseconds asked_ttl{0};
};

} // namespace

BOOST_AUTO_TEST_CASE(
    the_cluster_of_a_node_alone_is_itself_with_every_endpoint) {
  log.endpoint_id = "ops";
  log.endpoint_definition = "{}";
  api::handler_options opts;
  opts.node_id = "host-1:8650";
  opts.listen = [] { return std::string{"127.0.0.1:8650"}; };
  api::request_handler h{
      engine, log,
      api::authenticator{{{"r", hex_encode(sha256("read-t")), "read"},
                          {"i", hex_encode(sha256("ingest-t")), "ingest"}}},
      opts};
  auto get = [&](const std::string& token) {
    api::response got{0, {}, {}};
    h.handle(api::request{"GET", "/v1/cluster", "", "Bearer " + token, "", ""},
             [&](api::response r) { got = r; });
    return got;
  };
  BOOST_TEST(get("ingest-t").status == 403);
  auto before = now_ms();
  auto got = get("read-t");
  BOOST_TEST_REQUIRE(got.status == 200, got.body);
  auto j = nlohmann::json::parse(got.body);
  BOOST_TEST(j["node"] == "host-1:8650");
  BOOST_TEST(j["backend"] == "rocksdb");
  BOOST_REQUIRE(j["nodes"].size() == 1u);
  auto& n = j["nodes"][0];
  BOOST_TEST(n["id"] == "host-1:8650");
  BOOST_TEST(n["listen"] == "127.0.0.1:8650");
  BOOST_TEST(n["alive"] == true);
  BOOST_TEST(n["endpoints"] == nlohmann::json::array({"ops"}));
  BOOST_TEST(!n.contains("escalation"));
  auto at = parse_rfc3339(n["heartbeat_at"].get<std::string>());
  BOOST_TEST_REQUIRE(at.has_value());
  BOOST_TEST(*at >= before - 1); // now (to the millisecond)
  BOOST_TEST(n["heartbeat_at"].get<std::string>().size() == 24u); // ms, Z
}

BOOST_AUTO_TEST_CASE(the_cluster_lists_the_nodes_the_store_knows) {
  fake_cluster shared;
  shared.all = {
      {"n1", "127.0.0.1:8001", 1795756200123, true, {"a", "escalation", "b"}},
      {"n2", "127.0.0.1:8002", 1795756100000, false, {}}};
  log.in_cluster = &shared;
  api::handler_options opts;
  opts.node_id = "n2";
  opts.backend = storage::backend::postgres;
  opts.lease_ttl = std::chrono::milliseconds{3000};
  api::request_handler h{
      engine, log,
      api::authenticator{{{"r", hex_encode(sha256("read-t")), "read"}}}, opts};
  auto get = [&] {
    api::response got{0, {}, {}};
    h.handle(api::request{"GET", "/v1/cluster", "", "Bearer read-t", "", ""},
             [&](api::response r) { got = r; });
    return got;
  };
  auto got = get();
  BOOST_TEST_REQUIRE(got.status == 200, got.body);
  BOOST_TEST(shared.asked_ttl.count() == 3000);
  auto j = nlohmann::json::parse(got.body);
  BOOST_TEST(j["node"] == "n2");
  BOOST_TEST(j["backend"] == "postgres");
  BOOST_TEST(j["nodes"] == nlohmann::json::parse(R"([
    {"id":"n1","listen":"127.0.0.1:8001",
     "heartbeat_at":"2026-11-27T05:10:00.123Z","alive":true,
     "endpoints":["a","b"],"escalation":true},
    {"id":"n2","listen":"127.0.0.1:8002",
     "heartbeat_at":"2026-11-27T05:08:20.000Z","alive":false,
     "endpoints":[]}])"),
             j["nodes"].dump());

  // The database out of reach: come back later, as for any store read.
  shared.failure = error{"store_unavailable", "the database is restarting"};
  got = get();
  BOOST_TEST(got.status == 503);
  BOOST_TEST(got.body.find("store_unavailable") != std::string::npos);
  BOOST_TEST((got.headers == std::vector<std::pair<std::string, std::string>>{
                                 {"Retry-After", "1"}}));
  log.in_cluster = nullptr;
}

BOOST_AUTO_TEST_CASE(an_attempt_shows_the_node_that_made_it) {
  // GET /v1/events/{id} from a store (RocksDB): an attempt made in a
  // cluster names its node; one made alone has no "node" at all.
  test::temp_dir dir;
  auto opened = storage::open_store({.dir = dir.path().string()});
  BOOST_TEST_REQUIRE(opened.ok());
  auto& store = **opened;
  storage::event_record e{new_id("evt"), event, now_ms(), {}};
  storage::delivery d;
  d.id = new_id("dlv");
  d.event_id = e.id;
  d.endpoint_id = "ep";
  d.created_at = e.accepted_at;
  e.delivery_ids.push_back(d.id);
  storage::attempt a;
  a.number = 1;
  a.started_at = e.accepted_at;
  a.finished_at = e.accepted_at + 5;
  a.status = 503;
  a.node = "node-b";
  d.attempts.push_back(a);
  a.number = 2;
  a.node.clear();
  d.attempts.push_back(a);
  storage::changes c;
  c.event_accepted(e);
  c.delivery_created(d);
  BOOST_TEST_REQUIRE(store.commit(c, storage::durability::synced).ok());
  api::request_handler h{
      engine, store,
      api::authenticator{{{"r", hex_encode(sha256("read-t")), "read"}}},
      api::handler_options{}};
  api::request req;
  req.method = "GET";
  req.target = "/v1/events/" + e.id;
  req.authorization = "Bearer read-t";
  std::optional<api::response> got;
  h.handle(std::move(req), [&](api::response r) { got = std::move(r); });
  BOOST_TEST_REQUIRE(got.has_value());
  BOOST_TEST_REQUIRE(got->status == 200, got->body);
  auto attempts = nlohmann::json::parse(got->body)["deliveries"][0]["attempts"];
  BOOST_TEST_REQUIRE(attempts.size() == 2u);
  BOOST_TEST(attempts[0]["node"] == "node-b");
  BOOST_TEST(!attempts[1].contains("node"));
}

namespace {

/// POST/PATCH of an endpoint as admin to `h`; the answer.
api::response send(api::request_handler& h, const std::string& method,
                   const std::string& target, const nlohmann::json& body) {
  api::request req{method,           target, "application/json",
                   "Bearer admin-t", "",     body.dump()};
  api::response got{0, {}, {}};
  h.handle(std::move(req), [&](api::response r) { got = std::move(r); });
  return got;
}

} // namespace

// The SSRF guard judges an endpoint's URL when it is configured, not only
// each delivery: an endpoint it would refuse on every address is refused
// at once instead of dead-lettering everything it is sent.
BOOST_AUTO_TEST_CASE(an_endpoint_the_ssrf_guard_refuses_is_422_at_once) {
  api::handler_options opts;
  opts.addresses = *net::address_policy::from_cidrs({"10.20.0.0/16"});
  api::request_handler h{
      engine, log,
      api::authenticator{{{"a", hex_encode(sha256("admin-t")), "admin"}}},
      opts};
  // IP literals outside delivery.allow_networks, and a name that resolves
  // only to such addresses.
  for (std::string url : {"https://127.0.0.1:8443/in", "https://[::1]/in",
                          "https://192.168.1.9/in", "https://localhost/in"}) {
    auto r = send(h, "POST", "/v1/endpoints", {{"url", url}});
    BOOST_TEST(r.status == 422, url << ": " << r.body);
    auto e = nlohmann::json::parse(r.body)["error"];
    BOOST_TEST(e["code"] == "forbidden_address", url);
    BOOST_TEST(e["field"] == "url", url);
    BOOST_TEST(e["message"].get<std::string>().find(
                   "delivery.allow_networks") != std::string::npos,
               e.dump());
  }
  // Allowed: 201 and no warning.
  auto ok = send(h, "POST", "/v1/endpoints", {{"url", "https://10.20.1.2/in"}});
  BOOST_TEST(ok.status == 201, ok.body);
  BOOST_TEST(!nlohmann::json::parse(ok.body).contains("warnings"));
  // A name that does not resolve (yet): taken, with a warning.
  auto later =
      send(h, "POST", "/v1/endpoints", {{"url", "https://hooks.invalid/in"}});
  BOOST_TEST_REQUIRE(later.status == 201, later.body);
  auto w = nlohmann::json::parse(later.body)["warnings"];
  BOOST_TEST_REQUIRE(w.size() == 1u, later.body);
  BOOST_TEST(w[0]["code"] == "unresolved_host");
  BOOST_TEST(w[0]["field"] == "url");
  // PATCH: a new URL is judged; other changes are not.
  auto stored = endpoints::create_endpoint(
      {{"id", "ops"}, {"url", "https://10.20.1.2/in"}}, {}, now_ms());
  BOOST_REQUIRE(stored);
  log.endpoint_id = "ops";
  log.endpoint_definition = endpoints::to_stored_json(*stored);
  auto moved =
      send(h, "PATCH", "/v1/endpoints/ops", {{"url", "https://127.0.0.1/in"}});
  BOOST_TEST(moved.status == 422, moved.body);
  stored->url = "https://127.0.0.1/in"; // from before the check, say
  log.endpoint_definition = endpoints::to_stored_json(*stored);
  auto disabled = send(h, "PATCH", "/v1/endpoints/ops", {{"enabled", false}});
  BOOST_TEST(disabled.status == 200, disabled.body);
  // Without a policy (handler_options::addresses unset): nothing judged.
  BOOST_TEST(status("POST", "/v1/endpoints", "admin-t",
                    R"({"url":"https://127.0.0.1/in"})") == 201);
}

// The producer learns from the 202 what became of each event: how many
// deliveries it made, and that one matched no endpoint (stored, sent
// nowhere), which a repeat of an idempotency key is not said to be.
BOOST_AUTO_TEST_CASE(the_202_counts_deliveries_per_event_and_warns_of_none) {
  struct counting_engine final : actors::engine {
    std::vector<delivery::accepted_event> outcome;
    void ingest(delivery::ingest_batch b,
                delivery::ingest_callback done) override {
      delivery::ingest_answer a;
      for (std::size_t i = 0; i < b.events.size(); ++i) {
        a.ids.push_back(b.events[i].id);
        a.events.push_back(outcome.at(i));
        a.deliveries += outcome.at(i).deliveries;
      }
      done(std::move(a));
    }
    void change_endpoint(delivery::endpoint_change,
                         delivery::endpoint_change_callback) override {}
    void reconfigure(delivery::reconfiguration,
                     delivery::endpoint_change_callback) override {}
    void replay(delivery::replay_selection,
                delivery::replay_callback) override {}
    void answer(delivery::answer_request, delivery::answer_callback) override {}
    void drain(std::chrono::milliseconds) override {}
    bool responsive(std::chrono::milliseconds) override { return true; }
  } counting;
  counting.outcome = {{2, false}, {0, false}, {0, true}};
  api::request_handler h{
      counting, log,
      api::authenticator{{{"a", hex_encode(sha256("admin-t")), "admin"}}},
      api::handler_options{}};
  auto one = nlohmann::json::parse(event);
  auto r = send(h, "POST", "/v1/events", {{"events", {one, one, one}}});
  BOOST_TEST_REQUIRE(r.status == 202, r.body);
  auto j = nlohmann::json::parse(r.body);
  BOOST_TEST_REQUIRE(j["ids"].size() == 3u);
  BOOST_TEST(j["deliveries"] == 2);
  BOOST_TEST_REQUIRE(j["events"].size() == 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    BOOST_TEST(j["events"][i]["id"] == j["ids"][i]);
    BOOST_TEST(j["events"][i]["deliveries"] == counting.outcome[i].deliveries);
    BOOST_TEST(j["events"][i]["repeat"] == counting.outcome[i].repeat);
  }
  BOOST_TEST_REQUIRE(j["warnings"].size() == 1u, r.body);
  BOOST_TEST(j["warnings"][0]["code"] == "no_endpoint_matched");
  BOOST_TEST(j["warnings"][0]["event_id"] == j["ids"][1]);
  // Every event delivered somewhere: no warnings at all.
  counting.outcome = {{1, false}};
  r = send(h, "POST", "/v1/events", one);
  BOOST_TEST_REQUIRE(r.status == 202, r.body);
  j = nlohmann::json::parse(r.body);
  BOOST_TEST(j["events"][0]["deliveries"] == 1);
  BOOST_TEST(!j.contains("warnings"), r.body);
}

BOOST_AUTO_TEST_SUITE_END()

// ---- check_head: what is refused before a byte of the body is read ---------

namespace {

struct head_fixture {
  static constexpr unix_ms now = 1795756200000;
  test::fake_engine engine;
  test::empty_log log;
  api::request_handler handler{
      engine, log,
      api::authenticator{{{"a", hex_encode(sha256("admin-t")), "admin"},
                          {"r", hex_encode(sha256("read-t")), "read"}}},
      [] {
        api::handler_options o;
        o.slack_signing_secret = "slack-secret";
        o.pagerduty_webhook_secret = "pd-secret";
        o.max_body_bytes = 1 << 20;
        o.clock = [] { return now; };
        return o;
      }()};
  api::request_handler closed{engine, log, api::authenticator{{}},
                              api::handler_options{}};

  static api::request head(std::string method, std::string target,
                           std::string token = {}) {
    api::request r;
    r.method = std::move(method);
    r.target = std::move(target);
    r.content_type = "application/json";
    if (!token.empty())
      r.authorization = "Bearer " + token;
    return r;
  }
  static int status_of(const api::head_verdict& v) {
    return v.refusal ? v.refusal->status : 0;
  }
  static std::string code_of(const api::head_verdict& v) {
    if (!v.refusal)
      return {};
    return nlohmann::json::parse(v.refusal->body)["error"]["code"];
  }
};

constexpr std::uint64_t mib = 1 << 20;

} // namespace

BOOST_FIXTURE_TEST_SUITE(head_checks, head_fixture)

BOOST_AUTO_TEST_CASE(routes_tokens_and_roles_from_the_head) {
  // No such path, or not this method: 404, 405.
  BOOST_TEST(status_of(handler.check_head(head("POST", "/v1/nope", "admin-t"),
                                          mib)) == 404);
  BOOST_TEST(status_of(handler.check_head(head("PUT", "/v1/events", "admin-t"),
                                          10)) == 405);
  // No token, a wrong one, the wrong role: 401, 401, 403, whatever the
  // length announced (the token first).
  BOOST_TEST(status_of(handler.check_head(head("POST", "/v1/events"), mib)) ==
             401);
  BOOST_TEST(status_of(handler.check_head(head("POST", "/v1/events", "x"),
                                          10 * mib)) == 401);
  BOOST_TEST(status_of(handler.check_head(head("POST", "/v1/events", "read-t"),
                                          10)) == 403);
  BOOST_TEST(status_of(handler.check_head(
                 head("POST", "/v1/endpoints", "read-t"), 10)) == 403);
  // Allowed: up to server.max_body_bytes.
  auto ok = handler.check_head(head("POST", "/v1/events", "admin-t"), mib);
  BOOST_TEST(!ok.refusal);
  BOOST_TEST(ok.body_limit == mib);
  auto big = handler.check_head(head("POST", "/v1/events", "admin-t"), mib + 1);
  BOOST_TEST(status_of(big) == 413);
  BOOST_TEST(code_of(big) == "payload_too_large");
  // Chunked (no length): the limit is for the reader.
  auto chunked = handler.check_head(
      head("PATCH", "/v1/endpoints/ops?x=1", "admin-t"), std::nullopt);
  BOOST_TEST(!chunked.refusal);
  BOOST_TEST(chunked.body_limit == mib);
  // Open routes need no token.
  BOOST_TEST(!handler.check_head(head("GET", "/healthz"), 10).refusal);
}

BOOST_AUTO_TEST_CASE(the_integrations_signature_headers_from_the_head) {
  auto slack = [&](std::string ts, std::string sig) {
    auto r = head("POST", "/v1/integrations/slack/interactions");
    r.slack_timestamp = std::move(ts);
    r.slack_signature = std::move(sig);
    return r;
  };
  auto fresh = std::to_string(now / 1000 - 10);
  auto sig = "v0=" + std::string(64, '0');
  // No signature, no timestamp, a stale one: 401 before the body.
  auto v = handler.check_head(slack(fresh, ""), 100);
  BOOST_TEST(status_of(v) == 401);
  BOOST_TEST(code_of(v) == "invalid_signature");
  BOOST_TEST(code_of(handler.check_head(slack("", sig), 100)) ==
             "invalid_signature");
  v = handler.check_head(slack(std::to_string(now / 1000 - 301), sig), 100);
  BOOST_TEST(status_of(v) == 401);
  BOOST_TEST(code_of(v) == "stale_request");
  // Present and fresh: the body is read (its signature checked then), up to
  // 64 KiB.
  v = handler.check_head(slack(fresh, sig), 100);
  BOOST_TEST(!v.refusal);
  BOOST_TEST(v.body_limit == 64u * 1024);
  BOOST_TEST(status_of(handler.check_head(slack(fresh, sig), 64 * 1024 + 1)) ==
             413);
  BOOST_TEST(status_of(handler.check_head(slack(fresh, sig), mib)) == 413);
  // PagerDuty: the header must be there.
  auto pd = head("POST", "/v1/integrations/pagerduty/webhook");
  BOOST_TEST(status_of(handler.check_head(pd, 100)) == 401);
  pd.pagerduty_signature = "v1=abc";
  BOOST_TEST(!handler.check_head(pd, 100).refusal);
  BOOST_TEST(status_of(handler.check_head(pd, mib)) == 413);
  // Not enabled: 404, as the route itself says.
  BOOST_TEST(status_of(closed.check_head(slack(fresh, sig), 100)) == 404);
  BOOST_TEST(status_of(closed.check_head(pd, 100)) == 404);
}

BOOST_AUTO_TEST_CASE(a_reload_swaps_tokens_and_secrets_while_requests_run) {
  auto slack = [&] {
    auto r = head("POST", "/v1/integrations/slack/interactions");
    r.slack_timestamp = std::to_string(now_ms() / 1000); // closed's clock
    r.slack_signature = "v0=" + std::string(64, '0');
    return r;
  };
  auto events = [&](api::request_handler& h, const std::string& token) {
    return status_of(h.check_head(head("POST", "/v1/events", token), 10));
  };
  BOOST_TEST(events(closed, "admin-t") == 401);
  BOOST_TEST(status_of(closed.check_head(slack(), 100)) == 404);
  // Requests on other threads all along: each sees one set of tokens, the
  // old or the new, never a torn one.
  std::atomic<bool> stop{false};
  std::atomic<int> odd{0};
  std::vector<std::thread> askers;
  for (int t = 0; t < 2; ++t)
    askers.emplace_back([&] {
      while (!stop) {
        auto a = events(closed, "admin-t");
        if (a != 0 && a != 401)
          ++odd;
      }
    });
  for (int i = 0; i < 200; ++i) {
    api::live_settings next{
        api::authenticator{{{"a", hex_encode(sha256("admin-t")), "admin"}}},
        i % 2 ? "slack-secret-of-reload" : "",
        {"hooks.slack.com"},
        ""};
    closed.reload(std::move(next));
  }
  stop = true;
  for (auto& t : askers)
    t.join();
  BOOST_TEST(odd == 0);
  // The last one holds: the token is known, Slack is enabled.
  BOOST_TEST(events(closed, "admin-t") == 0);
  BOOST_TEST(events(closed, "read-t") == 401);
  BOOST_TEST(status_of(closed.check_head(slack(), 100)) == 0);
  BOOST_TEST(closed.settings()->slack_signing_secret ==
             "slack-secret-of-reload");
  closed.reload(api::live_settings{});
  BOOST_TEST(events(closed, "admin-t") == 401);
  BOOST_TEST(status_of(closed.check_head(slack(), 100)) == 404);
}

BOOST_AUTO_TEST_CASE(the_head_refuses_what_the_handler_would) {
  // Every refusal from the head is the status the whole request gets.
  for (auto* target :
       {"/v1/events", "/v1/endpoints", "/v1/endpoints/ops",
        "/v1/events/evt_01JD0000000000000000000000/ack",
        "/v1/endpoints/ops/rotate-secret", "/v1/nope", "/healthz"})
    for (auto* method : {"POST", "PATCH", "PUT", "DELETE"})
      for (auto* token : {"", "read-t", "bad"}) {
        auto req = head(method, target, token);
        auto v = handler.check_head(req, 10);
        if (!v.refusal)
          continue;
        int whole = 0;
        req.body = "{}";
        handler.handle(req, [&](api::response r) { whole = r.status; });
        BOOST_TEST(v.refusal->status == whole,
                   method << " " << target << " " << token);
      }
}

BOOST_AUTO_TEST_SUITE_END()
