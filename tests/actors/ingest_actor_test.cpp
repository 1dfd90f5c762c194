// The ingest actor on CAF's deterministic scheduler: group commit (one
// synced write for every request in the mailbox, answers only after it),
// hand-off to the endpoint actors, endpoint changes, and supervision of the
// endpoint actors.
#include "tests/actors/actor_fixture.hpp"

#include "common/ids.hpp"

using namespace tocsin;
using namespace tocsin::test;
using storage::delivery_state;

namespace {

struct ingest_fixture : actor_fixture {
  actors::ingest_actor ingest;

  void start(std::vector<delivery::endpoint_config> endpoints) {
    ingest = sys.spawn(actors::ingest_actor_fn, std::move(endpoints), deps());
    run();
  }

  delivery::ingest_batch batch(int events, std::string agent = "agent-7") {
    delivery::ingest_batch b;
    for (int i = 0; i < events; ++i) {
      delivery::new_event e;
      e.id = new_id("evt");
      e.type = "policy.denied";
      e.severity = 3;
      e.agent_id = agent;
      e.severity_name = "high";
      e.summary = "s";
      e.body = R"({"id":")" + e.id + R"(","type":"policy.denied"})";
      b.events.push_back(std::move(e));
    }
    return b;
  }

  /// Sends `b`; the answer lands in the returned slot when it comes.
  std::shared_ptr<std::optional<actors::ingest_reply>>
  post(delivery::ingest_batch b) {
    auto slot = std::make_shared<std::optional<actors::ingest_reply>>();
    spawn_fn([target = ingest, slot, b](caf::event_based_actor* self) {
      self->request(target, caf::infinite, actors::ingest_atom_v, b)
          .then([=](actors::ingest_reply& r) { *slot = std::move(r); });
    });
    return slot;
  }

  std::optional<status> change(delivery::endpoint_change c) {
    std::optional<status> got;
    spawn_fn([&](caf::event_based_actor* self) {
      self->request(ingest, caf::infinite, actors::endpoint_atom_v, c)
          .then([&](status& s) { got = std::move(s); });
    });
    run();
    return got;
  }

  std::vector<actors::endpoint_actor> endpoint_actors() {
    std::vector<actors::endpoint_actor> all;
    spawn_fn([&](caf::event_based_actor* self) {
      self->request(ingest, caf::infinite, actors::endpoints_atom_v)
          .then([&](std::vector<actors::endpoint_actor>& a) { all = a; });
    });
    run();
    return all;
  }
};

} // namespace

BOOST_FIXTURE_TEST_SUITE(ingest_actor, ingest_fixture)

BOOST_AUTO_TEST_CASE(one_synced_write_for_a_mailbox_of_requests) {
  start({endpoint("a", {1, 1, 1, 1}), endpoint("b", {1, 1, 1, 1})});
  auto first = post(batch(2));
  auto second = post(batch(3));
  auto synced_before = log.synced_commits;
  run();
  // Both requests in one synced commit, both answered after it.
  BOOST_TEST(log.synced_commits == synced_before + 1);
  BOOST_REQUIRE(first->has_value() && (**first).ok());
  BOOST_REQUIRE(second->has_value() && (**second).ok());
  BOOST_TEST((**first)->ids.size() == 2u);
  BOOST_TEST((**first)->deliveries == 4u); // two events, two endpoints
  BOOST_TEST_REQUIRE((**first)->events.size() == 2u);
  for (auto& e : (**first)->events) {
    BOOST_TEST(e.deliveries == 2u);
    BOOST_TEST(!e.repeat);
  }
  // Then handed to the endpoint actors, which attempt them.
  BOOST_TEST(client.requests.size() == 10u);
  for (auto& id : (**second)->ids) {
    auto ev = real_log->get_event(id);
    BOOST_REQUIRE(ev);
    BOOST_REQUIRE(*ev);
    BOOST_TEST((*ev)->delivery_ids.size() == 2u);
  }
}

BOOST_AUTO_TEST_CASE(nothing_is_answered_or_handed_over_before_it_is_durable) {
  start({endpoint("a", {1, 1, 1, 1})});
  log.refuse = true;
  auto refused = post(batch(1));
  run();
  BOOST_REQUIRE(refused->has_value());
  BOOST_TEST(!(**refused).ok());
  BOOST_TEST((**refused).error().code == "store_unavailable");
  BOOST_TEST(client.requests.empty());
  log.refuse = false;
  // A repeated key is answered only with the commit of its first use.
  auto keyed = batch(1);
  keyed.idempotency_key = "k1";
  keyed.idempotency_digest = "d1";
  keyed.idempotency_scope = "tok_1";
  auto again = keyed;
  again.events[0].id = new_id("evt");
  auto first = post(keyed);
  auto repeat = post(again);
  run();
  BOOST_REQUIRE(first->has_value() && repeat->has_value());
  BOOST_TEST((**repeat)->ids == (**first)->ids);
  BOOST_TEST((**repeat)->deliveries == 0u);
  BOOST_TEST_REQUIRE((**repeat)->events.size() == 1u);
  BOOST_TEST((**repeat)->events[0].repeat);
  BOOST_TEST((**first)->events.at(0).deliveries == 1u);
  BOOST_TEST(!(**first)->events.at(0).repeat);
  BOOST_TEST(client.requests.size() == 1u);
  // Keys of events: the second use in one request is a repeat of the first.
  auto two = batch(2);
  for (auto& e : two.events) {
    e.idempotency_key = "per-event";
    e.idempotency_digest = "d2";
  }
  two.idempotency_scope = "tok_1";
  auto both = post(two);
  run();
  BOOST_REQUIRE(both->has_value() && (**both).ok());
  BOOST_TEST((**both)->deliveries == 1u);
  BOOST_TEST_REQUIRE((**both)->events.size() == 2u);
  BOOST_TEST((**both)->events[0].deliveries == 1u);
  BOOST_TEST(!(**both)->events[0].repeat);
  BOOST_TEST((**both)->events[1].deliveries == 0u);
  BOOST_TEST((**both)->events[1].repeat);
}

BOOST_AUTO_TEST_CASE(endpoint_changes_are_logged_then_applied) {
  start({});
  delivery::endpoint_change create;
  create.id = "new";
  create.config = endpoint("new", {1, 1, 1, 1});
  create.definition = R"({"id":"new"})";
  BOOST_REQUIRE(change(create).value_or(error{}).ok());
  BOOST_TEST(change(create)->error().code == "conflict"); // taken
  // Events accepted after the answer go to it.
  auto r = post(batch(1));
  run();
  BOOST_TEST((**r)->deliveries == 1u);
  BOOST_TEST(client.requests.size() == 1u);
  // A change made from a stale revision is refused, not lost.
  delivery::endpoint_change update;
  update.what = delivery::endpoint_change::kind::update;
  update.id = "new";
  update.based_on = 7;
  update.config = endpoint("new", {1, 1, 1, 1});
  update.definition = R"({"id":"new"})";
  BOOST_TEST(change(update)->error().code == "conflict");
  update.based_on = 1;
  update.config->enabled = false;
  update.config->revision = 2;
  BOOST_TEST(change(update)->ok());
  r = post(batch(1));
  run();
  BOOST_TEST((**r)->deliveries == 0u); // disabled
  BOOST_TEST_REQUIRE((**r)->events.size() == 1u);
  BOOST_TEST((**r)->events[0].deliveries == 0u); // stored, sent nowhere
  BOOST_TEST(!(**r)->events[0].repeat);
  delivery::endpoint_change remove;
  remove.what = delivery::endpoint_change::kind::remove;
  remove.id = "gone";
  BOOST_TEST(change(remove)->error().code == "not_found");
  remove.id = "new";
  remove.based_on = 2;
  BOOST_TEST(change(remove)->ok());
  auto stored = real_log->get_endpoint("new");
  BOOST_REQUIRE(stored);
  BOOST_TEST(!*stored);
}

BOOST_AUTO_TEST_CASE(a_dead_endpoint_actor_is_started_again_and_resumes) {
  start({endpoint("a", {10, 10, 10, 10})});
  auto r = post(batch(1));
  run();
  BOOST_REQUIRE(client.requests.size() == 1u);
  client.answer(503); // waits 10 s for its retry
  run();
  auto before = endpoint_actors();
  BOOST_REQUIRE(before.size() == 1u);
  // The endpoint actor dies (a bug, an exception): its timers die with it.
  caf::anon_send_exit(before[0], caf::exit_reason::kill);
  run();
  auto after = endpoint_actors();
  BOOST_REQUIRE(after.size() == 1u);
  BOOST_TEST((after[0] != before[0])); // a new one
  // The delivery is read back from the store and attempted on schedule.
  advance(9999);
  BOOST_TEST(client.requests.empty());
  advance(1);
  BOOST_REQUIRE(client.requests.size() == 1u);
  client.answer(200);
  run();
  auto ev = real_log->get_event((**r)->ids[0]);
  auto d = stored((*ev)->delivery_ids[0]);
  BOOST_TEST((d.state == delivery_state::delivered));
  BOOST_TEST(d.attempts.size() == 2u);
}

BOOST_AUTO_TEST_CASE(deliveries_of_an_endpoint_that_is_gone_are_dead_lettered) {
  // Left in the store by an endpoint deleted while the daemon was down (or
  // taken out of the config file): dead-lettered at start, a page at a time.
  for (int i = 0; i < 5; ++i)
    job("gone" + std::to_string(i), "gone");
  job("kept", "ep");
  start({endpoint("ep", {10, 10, 10, 10})});
  BOOST_REQUIRE(client.requests.size() == 1u); // the configured one's
  client.answer(200);
  run();
  for (int i = 0; i < 5; ++i) {
    auto d = stored("dlv_gone" + std::to_string(i));
    BOOST_TEST((d.state == delivery_state::dead_lettered), i);
    BOOST_TEST(d.reason == "endpoint_deleted");
  }
  BOOST_TEST((stored("dlv_kept").state == delivery_state::delivered));
  auto left = real_log->endpoints_with_pending();
  BOOST_REQUIRE(left);
  BOOST_TEST(left->empty());
}

// An endpoint whose circuit opens is reported to the others by one
// system.health event, and its recovery by one more: never to itself,
// never twice for one transition, and a health event's own failed delivery
// raises nothing.
BOOST_AUTO_TEST_CASE(health_events_go_to_the_others_once_per_transition) {
  auto a = endpoint("a", {0.1, 0.1, 0.1, 0.1});
  a.url = "https://a.example/in";
  a.target = *parse_url(a.url);
  a.breaker = {2, 5000};
  a.max_in_flight = 1;
  auto b = endpoint("b", {0.1, 0.1, 0.1, 0.1});
  start({a, b});
  post(batch(3));
  run();
  BOOST_REQUIRE(client.held_for("hooks.example") == 3u);
  for (int i = 0; i < 3; ++i)
    client.answer_to("hooks.example", 200);
  run();
  // a fails twice: its circuit opens, and b hears of it once.
  client.answer_to("a.example", 503);
  run();
  BOOST_TEST(client.held_for("hooks.example") == 0u);
  client.answer_to("a.example", 503);
  run();
  BOOST_REQUIRE(client.held_for("hooks.example") == 1u);
  BOOST_TEST(client.held_for("hooks.example", R"("type":"system.health")") ==
             1u);
  BOOST_TEST(client.held_for("hooks.example", "endpoint a is failing") == 1u);
  BOOST_TEST(client.held_for("hooks.example", R"("state":"unhealthy")") == 1u);
  // Told from a producer's system.health (which cannot say this).
  BOOST_TEST(client.held_for("hooks.example", R"("origin":"tocsin")") == 1u);
  BOOST_TEST(client.held_for("a.example", "system.health") == 0u);
  client.answer_to("hooks.example", 200);
  run();
  // Still failing: the probe fails, the circuit opens again, nothing new.
  advance(5000);
  BOOST_REQUIRE(client.held_for("a.example") == 1u);
  client.answer_to("a.example", 503);
  run();
  BOOST_TEST(client.held_for("hooks.example") == 0u);
  // The next probe succeeds: one event says a delivers again.
  advance(5000);
  BOOST_REQUIRE(client.held_for("a.example") == 1u);
  client.answer_to("a.example", 200);
  run();
  BOOST_REQUIRE(client.held_for("hooks.example") == 1u);
  BOOST_TEST(client.held_for("hooks.example", "endpoint a delivers again") ==
             1u);
  BOOST_TEST(client.held_for("hooks.example", R"("state":"healthy")") == 1u);
  // b refuses that health event for good: dead-lettered, and no health
  // event about b (nor to a) follows.
  client.answer_to("hooks.example", 400);
  run();
  while (client.held_for("a.example") > 0) {
    client.answer_to("a.example", 200);
    run();
  }
  BOOST_TEST(client.requests.empty());
  advance(1000);
  BOOST_TEST(client.requests.empty());
}

BOOST_AUTO_TEST_SUITE_END()
