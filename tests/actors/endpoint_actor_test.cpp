// The endpoint actor on CAF's deterministic scheduler: every retry, token,
// probe and FIFO hold-back is checked at the millisecond it is due, with
// time moved by the test — no sleeps, no races.
#include "tests/actors/actor_fixture.hpp"

using namespace tocsin;
using namespace tocsin::test;
using storage::delivery_state;

namespace {

struct endpoint_fixture : actor_fixture {
  actors::endpoint_actor spawn(delivery::endpoint_config cfg) {
    auto a = sys.spawn(actors::endpoint_actor_fn, std::move(cfg), deps());
    run();
    return a;
  }
  void deliver(const actors::endpoint_actor& a,
               std::vector<delivery::job> jobs) {
    caf::anon_send(a, actors::deliver_atom_v, std::move(jobs));
    run();
  }
};

} // namespace

BOOST_FIXTURE_TEST_SUITE(endpoint_actor, endpoint_fixture)

BOOST_AUTO_TEST_CASE(retries_on_schedule_then_dead_letters) {
  auto a = spawn(endpoint("ep", {1, 2, 4, 8}));
  deliver(a, {job("1", "ep")});
  // Attempt 1 at once, logged as started before it went out.
  BOOST_REQUIRE(client.requests.size() == 1u);
  BOOST_TEST(stored("dlv_1").attempts.size() == 1u);
  auto t0 = now();
  for (long gap : {1000L, 2000L, 4000L, 8000L}) {
    client.answer(503);
    run();
    // Not a millisecond early ...
    advance(gap - 1);
    BOOST_TEST(client.requests.empty(), "early at " << now() - t0);
    // ... nor late.
    advance(1);
    BOOST_REQUIRE_MESSAGE(client.requests.size() == 1u,
                          "no attempt at +" << now() - t0);
    t0 = now();
  }
  client.answer(503);
  run();
  auto d = stored("dlv_1");
  BOOST_TEST((d.state == delivery_state::dead_lettered));
  BOOST_TEST(d.reason == "attempts_exhausted");
  BOOST_TEST(d.attempts.size() == 5u);
  advance(60000);
  BOOST_TEST(client.requests.empty());
}

BOOST_AUTO_TEST_CASE(retry_after_is_honoured_when_it_fits) {
  auto a = spawn(endpoint("ep", {1, 1, 1, 10}));
  deliver(a, {job("1", "ep")});
  client.answer(429, "5"); // fits the 13 s window
  run();
  advance(4999);
  BOOST_TEST(client.requests.empty());
  advance(1);
  BOOST_REQUIRE(client.requests.size() == 1u);
  client.answer(200);
  run();
  BOOST_TEST((stored("dlv_1").state == delivery_state::delivered));
}

BOOST_AUTO_TEST_CASE(the_breaker_opens_probes_and_closes) {
  auto cfg = endpoint("ep", {0.1, 0.1, 0.1, 0.1});
  cfg.breaker = {2, 5000};
  cfg.max_in_flight = 1;
  auto a = spawn(cfg);
  deliver(a, {job("1", "ep"), job("2", "ep"), job("3", "ep")});
  client.fail(); // 1
  run();
  BOOST_REQUIRE(client.requests.size() == 1u);
  client.answer(503); // 2: the second failure opens it
  run();
  BOOST_TEST(client.requests.empty());
  // Open: nothing for the cooldown, however much is due.
  advance(4999);
  BOOST_TEST(client.requests.empty());
  // Then one probe, and only one.
  advance(1);
  BOOST_REQUIRE(client.requests.size() == 1u);
  advance(1000);
  BOOST_TEST(client.requests.size() == 1u);
  client.answer(200); // the probe succeeds: closed, the rest flows
  run();
  BOOST_TEST(client.requests.size() == 1u);
  client.answer(200);
  run();
  BOOST_TEST(client.requests.size() == 1u);
  client.answer(200);
  run();
  for (auto id : {"dlv_1", "dlv_2", "dlv_3"})
    BOOST_TEST((stored(id).state == delivery_state::delivered), id);
  // The transitions are in the log.
  std::vector<std::string> kinds;
  BOOST_REQUIRE(real_log
                    ->for_each_record(0,
                                      [&](std::uint64_t, std::string_view r) {
                                        if (r.find("circuit") !=
                                            std::string_view::npos)
                                          kinds.emplace_back(r);
                                        return true;
                                      })
                    .ok());
  BOOST_REQUIRE(kinds.size() == 2u);
  BOOST_TEST(kinds[0].find("endpoint.circuit_opened") != std::string::npos);
  BOOST_TEST(kinds[1].find("endpoint.circuit_closed") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(an_ordered_endpoint_keeps_fifo_under_retries) {
  auto cfg = endpoint("ep", {1, 1, 1, 1});
  cfg.ordered = true;
  auto a = spawn(cfg);
  deliver(a, {job("1", "ep"), job("2", "ep"), job("3", "ep")});
  // One at a time, the head first.
  BOOST_REQUIRE(client.requests.size() == 1u);
  BOOST_TEST(client.requests.front().request.body == R"({"id":"evt_1"})");
  client.answer(503);
  run();
  // The head waits for its retry, and holds the others back.
  advance(999);
  BOOST_TEST(client.requests.empty());
  advance(1);
  BOOST_REQUIRE(client.requests.size() == 1u);
  BOOST_TEST(client.requests.front().request.body == R"({"id":"evt_1"})");
  for (auto expect : {"evt_1", "evt_2", "evt_3"}) {
    BOOST_REQUIRE(client.requests.size() == 1u);
    BOOST_TEST(client.requests.front().request.body.find(expect) !=
               std::string::npos);
    client.answer(200);
    run();
  }
  BOOST_TEST(client.requests.empty());
}

BOOST_AUTO_TEST_CASE(a_rate_limit_spaces_the_attempts) {
  auto cfg = endpoint("ep", {1, 1, 1, 1});
  cfg.rate = {2, 2}; // 2 per second, burst 2
  auto a = spawn(cfg);
  deliver(a, {job("1", "ep"), job("2", "ep"), job("3", "ep"), job("4", "ep")});
  BOOST_TEST(client.requests.size() == 2u); // the burst
  advance(499);
  BOOST_TEST(client.requests.size() == 2u);
  advance(1);
  BOOST_TEST(client.requests.size() == 3u); // a token every 500 ms
  advance(500);
  BOOST_TEST(client.requests.size() == 4u);
}

BOOST_AUTO_TEST_CASE(removal_dead_letters_the_queue_and_ends_the_actor) {
  auto a = spawn(endpoint("ep", {30, 30, 30, 30}));
  deliver(a, {job("1", "ep"), job("2", "ep")});
  client.answer(503); // dlv_1 waits 30 s for its retry
  run();
  BOOST_REQUIRE(client.requests.size() == 1u); // dlv_2 in flight
  bool down = false;
  auto watcher = spawn_fn([&](caf::event_based_actor* self) {
    self->monitor(a);
    self->set_down_handler([&](caf::down_msg&) { down = true; });
    return caf::behavior{[](int) {}}; // stays until told to go
  });
  run();
  caf::anon_send(a, actors::remove_atom_v);
  run();
  auto d1 = stored("dlv_1");
  BOOST_TEST((d1.state == delivery_state::dead_lettered));
  BOOST_TEST(d1.reason == "endpoint_deleted");
  BOOST_TEST(!down);  // dlv_2 is still in flight
  client.answer(200); // a success in flight still counts
  run();
  BOOST_TEST((stored("dlv_2").state == delivery_state::delivered));
  BOOST_TEST(down);
  caf::anon_send_exit(watcher, caf::exit_reason::user_shutdown);
  run();
}

BOOST_AUTO_TEST_CASE(a_store_that_refuses_writes_holds_everything_back) {
  auto a = spawn(endpoint("ep", {1, 1, 1, 1}));
  log.refuse = true;
  deliver(a, {job("1", "ep")});
  // Nothing is sent that the log does not know of.
  BOOST_TEST(client.requests.empty());
  advance(1000); // tried again after a second
  BOOST_TEST(client.requests.empty());
  log.refuse = false;
  advance(1000);
  BOOST_REQUIRE(client.requests.size() == 1u);
  // An outcome that cannot be written does not take effect either.
  log.refuse = true;
  client.answer(200);
  run();
  BOOST_TEST((stored("dlv_1").state == delivery_state::pending));
  log.refuse = false;
  advance(1000); // the delivery is attempted again, and now recorded
  BOOST_REQUIRE(client.requests.size() == 1u);
  client.answer(200);
  run();
  auto d = stored("dlv_1");
  BOOST_TEST((d.state == delivery_state::delivered));
  BOOST_TEST(d.attempts.size() == 2u);
}

BOOST_AUTO_TEST_CASE(drain_answers_once_nothing_is_in_flight) {
  auto a = spawn(endpoint("ep", {1, 1, 1, 1}));
  deliver(a, {job("1", "ep")});
  BOOST_REQUIRE(client.requests.size() == 1u);
  std::optional<bool> drained;
  spawn_fn([&](caf::event_based_actor* self) {
    self->request(a, caf::infinite, actors::drain_atom_v).then([&](bool b) {
      drained = b;
    });
  });
  run();
  BOOST_TEST(!drained); // one attempt in flight
  deliver(a, {job("2", "ep")});
  BOOST_TEST(client.requests.size() == 1u); // draining: nothing new starts
  client.answer(200);
  run();
  BOOST_TEST(drained.value_or(false));
}

BOOST_AUTO_TEST_SUITE_END()
