// The endpoint actor on CAF's deterministic scheduler: every retry, token,
// probe and FIFO hold-back is checked at the millisecond it is due, with
// time moved by the test — no sleeps, no races.
#include "tests/actors/actor_fixture.hpp"

#include <cstdio>

using namespace tocsin;
using namespace tocsin::test;
using storage::delivery_state;

namespace {

/// The ids of the requests held, in the order they were sent.
std::vector<std::string> held_ids(const held_client& c) {
  std::vector<std::string> out;
  for (auto& h : c.requests)
    for (auto& [name, value] : h.request.headers)
      if (name == "webhook-id")
        out.push_back(value);
  return out;
}

struct endpoint_fixture : actor_fixture {
  actors::endpoint_actor spawn(delivery::endpoint_config cfg,
                               std::size_t window = defaults::queue_window) {
    auto a = sys.spawn(actors::endpoint_actor_fn, std::move(cfg), deps(window));
    run();
    return a;
  }
  /// Hands `jobs` (stored already) over as the ingest actor does, naming
  /// the log position of their commit.
  void deliver(const actors::endpoint_actor& a,
               std::vector<delivery::job> jobs) {
    caf::anon_send(a, actors::deliver_atom_v, std::move(jobs),
                   real_log->last_sequence());
    run();
  }
  /// Answers 200 to each request as it is sent, one in flight at a time (a
  /// FIFO endpoint), until none is left: the ids of the requests, in order.
  std::vector<std::string> answer_in_turn() {
    std::vector<std::string> sent;
    while (!client.requests.empty()) {
      BOOST_TEST(client.requests.size() == 1u);
      for (auto& id : held_ids(client))
        sent.push_back(id);
      client.answer(200);
      run();
    }
    return sent;
  }
  /// Ends the actors, with the requests they have out: nothing of theirs
  /// outlives the test's scheduler.
  template <class... Actors>
  void stop(const Actors&... actors) {
    (caf::anon_send_exit(actors, caf::exit_reason::kill), ...);
    client.requests.clear();
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
                    ->read_log(0,
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

BOOST_AUTO_TEST_CASE(the_in_flight_limit_follows_the_receiver) {
  auto cfg = endpoint("ep", {60, 60, 60, 60});
  cfg.max_in_flight = 256;
  auto a = spawn(cfg);
  std::vector<delivery::job> jobs;
  for (int i = 0; i < 400; ++i)
    jobs.push_back(job(std::to_string(i), "ep"));
  deliver(a, std::move(jobs));
  BOOST_TEST(client.requests.size() == 16u); // where the limit starts
  // Answers at the floor: a round trip of 16 answers raises it by one.
  for (int i = 0; i < 16; ++i)
    client.answer(200, {}, 10);
  run();
  BOOST_TEST(client.requests.size() == 17u);
  for (int i = 0; i < 17 + 18 + 19; ++i) {
    client.answer(200, {}, 10);
    run();
  }
  BOOST_TEST(client.requests.size() == 20u);
  // The receiver is overwhelmed: one cut per burst of 503s.
  advance(1000);
  for (int i = 0; i < 5; ++i)
    client.answer(503, {}, 10);
  run();
  BOOST_TEST(client.requests.size() == 16u); // 20 * 0.8
  // A round trip later, at the floor again: one step up.
  advance(1000);
  for (int i = 0; i < 16; ++i)
    client.answer(200, {}, 10);
  run();
  BOOST_TEST(client.requests.size() == 17u);
  // Queueing in the receiver: past the floor's tolerance (1.4 x 10 ms), a
  // cut, once for the attempts of that round trip.
  advance(1);
  client.answer(200, {}, 15);
  client.answer(200, {}, 15);
  run();
  BOOST_TEST(client.requests.size() == 15u); // the limit is 17 * 0.8 = 13
  for (int i = 0; i < 2; ++i)
    client.answer(200, {}, 10);
  run();
  BOOST_TEST(client.requests.size() == 13u);
  client.answer(200, {}, 10);
  run();
  BOOST_TEST(client.requests.size() == 13u);
  stop(a);
}

BOOST_AUTO_TEST_CASE(fixed_and_fifo_limits_do_not_move) {
  auto fixed = endpoint("fixed", {60, 60, 60, 60});
  fixed.concurrency = delivery::concurrency_mode::fixed;
  fixed.max_in_flight = 24; // above where an adaptive limit starts
  fixed.url = "https://fixed.example/in";
  fixed.target = *parse_url(fixed.url);
  auto fifo = endpoint("fifo", {60, 60, 60, 60});
  fifo.max_in_flight = 256;
  fifo.ordered = true;
  fifo.url = "https://fifo.example/in";
  fifo.target = *parse_url(fifo.url);
  auto a = spawn(fixed);
  auto b = spawn(fifo);
  std::vector<delivery::job> to_a, to_b;
  for (int i = 0; i < 100; ++i) {
    to_a.push_back(job("a" + std::to_string(i), "fixed"));
    to_b.push_back(job("b" + std::to_string(i), "fifo", "high", true));
  }
  deliver(a, std::move(to_a));
  deliver(b, std::move(to_b));
  for (int round = 0; round < 40; ++round) {
    BOOST_TEST(client.held_for("fixed.example") == 24u);
    BOOST_TEST(client.held_for("fifo.example") == 1u);
    client.answer_to("fixed.example", round % 5 == 0 ? 503 : 200);
    client.answer_to("fifo.example", 200);
    run();
  }
  stop(a, b);
}

BOOST_AUTO_TEST_CASE(a_receiver_back_from_an_outage_is_met_from_one) {
  auto cfg = endpoint("ep", {0.1, 0.1, 0.1, 0.1});
  cfg.max_in_flight = 256;
  cfg.breaker = {3, 5000};
  auto a = spawn(cfg);
  std::vector<delivery::job> jobs;
  for (int i = 0; i < 300; ++i)
    jobs.push_back(job(std::to_string(i), "ep"));
  deliver(a, std::move(jobs));
  // Up to 25 in flight at the floor.
  while (client.requests.size() < 25u) {
    client.answer(200, {}, 10);
    run();
  }
  // Gone: connection errors open the circuit; nothing goes out.
  while (!client.requests.empty()) {
    client.fail();
    run();
  }
  advance(4999);
  BOOST_TEST(client.requests.empty());
  advance(1);
  BOOST_REQUIRE(client.requests.size() == 1u); // the probe
  client.answer(200, {}, 10);
  run();
  // Back: the probe's answer lets two go, then twice as many per round
  // trip, up to half of what it had when the circuit opened (25 * 0.8 / 2),
  // then one more per round trip.
  std::vector<std::size_t> rounds;
  for (int r = 0; r < 6; ++r) {
    rounds.push_back(client.requests.size());
    auto n = client.requests.size();
    for (std::size_t i = 0; i < n; ++i)
      client.answer(200, {}, 10);
    run();
  }
  BOOST_TEST(rounds == (std::vector<std::size_t>{2, 4, 8, 10, 11, 12}),
             boost::test_tools::per_element());
  stop(a);
}

BOOST_AUTO_TEST_CASE(an_ordered_endpoint_keeps_fifo_under_retries) {
  auto cfg = endpoint("ep", {1, 1, 1, 1});
  cfg.ordered = true;
  auto a = spawn(cfg);
  deliver(a, {job("1", "ep"), job("2", "ep"), job("3", "ep")});
  // One at a time, the head first.
  BOOST_REQUIRE(client.requests.size() == 1u);
  BOOST_TEST(client.requests.front().request.body.find("evt_1") !=
             std::string::npos);
  client.answer(503);
  run();
  // The head waits for its retry, and holds the others back.
  advance(999);
  BOOST_TEST(client.requests.empty());
  advance(1);
  BOOST_REQUIRE(client.requests.size() == 1u);
  BOOST_TEST(client.requests.front().request.body.find("evt_1") !=
             std::string::npos);
  for (auto expect : {"evt_1", "evt_2", "evt_3"}) {
    BOOST_REQUIRE(client.requests.size() == 1u);
    BOOST_TEST(client.requests.front().request.body.find(expect) !=
               std::string::npos);
    client.answer(200);
    run();
  }
  BOOST_TEST(client.requests.empty());
}

BOOST_AUTO_TEST_CASE(an_ordered_endpoints_head_keeps_its_place_in_the_store) {
  // The head of a FIFO endpoint fails and waits for its retry; the process
  // goes (a new actor over the same store). The head comes back first: its
  // retry kept its place in the store's order, where a retry on another
  // endpoint moves to when it is due.
  for (auto id : {"1", "2", "3"}) {
    job(id, "ep");
    advance(1);
  }
  auto cfg = endpoint("ep", {1, 1, 1, 1});
  cfg.ordered = true;
  auto a = spawn(cfg);
  BOOST_REQUIRE(held_ids(client) == (std::vector<std::string>{"evt_1"}));
  client.answer(503);
  run();
  BOOST_TEST(stored("dlv_1").next_attempt_at == now() + 1000);
  auto page = real_log->line_of("ep", {}, 10, {});
  BOOST_REQUIRE(page);
  BOOST_REQUIRE(page->deliveries.size() == 3u);
  BOOST_TEST(page->deliveries[0].id == "dlv_1");
  BOOST_TEST(page->places[0] < page->places[1]);
  caf::anon_send_exit(a, caf::exit_reason::kill);
  run();

  auto b = spawn(cfg);
  BOOST_TEST(client.requests.empty()); // the head's retry holds the line
  advance(1000);
  auto sent = answer_in_turn();
  BOOST_TEST(sent == (std::vector<std::string>{"evt_1", "evt_2", "evt_3"}),
             boost::test_tools::per_element());
  (void)b;
}

BOOST_AUTO_TEST_CASE(a_replayed_dead_letter_joins_the_back_of_a_fifo_line) {
  // dlv_0 was accepted first and dead-lettered; replayed (as the intake
  // writes a replay: due now) after dlv_1 and dlv_2 were accepted, it goes
  // after them, not back to where it was accepted.
  auto first = job("0", "ep");
  advance(1);
  auto d = first.state;
  storage::changes ws;
  auto was = storage::standing_of(d);
  d.state = delivery_state::dead_lettered;
  d.finished_at = now();
  ws.delivery_changed(d, storage::record_kind::delivery_dead_lettered, was);
  BOOST_REQUIRE(real_log->commit(ws, storage::durability::buffered).ok());
  for (auto id : {"1", "2"}) {
    job(id, "ep");
    advance(1);
  }
  d.state = delivery_state::pending;
  d.finished_at = 0;
  d.next_attempt_at = now();
  ws.clear();
  ws.delivery_changed(d, storage::record_kind::delivery_replayed,
                      storage::standing{delivery_state::dead_lettered, 0});
  BOOST_REQUIRE(real_log->commit(ws, storage::durability::buffered).ok());
  auto cfg = endpoint("ep", {1, 1, 1, 1});
  cfg.ordered = true;
  auto a = spawn(cfg);
  auto sent = answer_in_turn();
  BOOST_TEST(sent == (std::vector<std::string>{"evt_1", "evt_2", "evt_0"}),
             boost::test_tools::per_element());
  (void)a;
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
  auto watcher = watch_down(a, down);
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

// The endpoint goes while an outcome is being written (a retry scheduled,
// not yet in effect): the retry must not survive the removal.
BOOST_AUTO_TEST_CASE(removal_while_an_outcome_is_written_dead_letters_it) {
  auto a = spawn(endpoint("ep", {30, 30, 30, 30}));
  deliver(a, {job("1", "ep")});
  BOOST_REQUIRE(client.requests.size() == 1u);
  bool down = false;
  auto watcher = watch_down(a, down);
  run();
  client.answer(503);                       // its outcome: retry in 30 s...
  caf::anon_send(a, actors::remove_atom_v); // ...and the removal, before
  run();                                    // the outcome is written
  auto d = stored("dlv_1");
  BOOST_TEST((d.state == delivery_state::dead_lettered));
  BOOST_TEST(d.reason == "endpoint_deleted");
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

BOOST_AUTO_TEST_CASE(a_backlog_larger_than_the_window_is_paged_in_due_order) {
  // Twenty deliveries wait in the store (a restart, or a long outage); the
  // actor holds four at a time, the next ones due, whatever its in-flight
  // bound allows.
  std::vector<std::string> all;
  for (int i = 0; i < 20; ++i) {
    char id[8];
    std::snprintf(id, sizeof id, "%02d", i);
    job(id, "ep");
    all.push_back(std::string{"evt_"} + id);
    advance(1); // each due a millisecond after the one before
  }
  auto a = spawn(endpoint("ep", {1, 1, 1, 1}), 4);
  std::vector<std::string> sent;
  int pages_at_start = log.pages;
  BOOST_TEST(pages_at_start == 1);
  while (!client.requests.empty()) {
    BOOST_TEST(client.requests.size() <= 4u); // never more than the window
    for (auto& id : held_ids(client))
      sent.push_back(id);
    while (!client.requests.empty())
      client.answer(200);
    run();
  }
  BOOST_TEST(sent == all, boost::test_tools::per_element());
  BOOST_TEST(log.pages >= 5); // 20 / 4, read as the window emptied
  for (int i = 0; i < 20; ++i) {
    char id[8];
    std::snprintf(id, sizeof id, "dlv_%02d", i);
    BOOST_TEST((stored(id).state == delivery_state::delivered), id);
  }
}

BOOST_AUTO_TEST_CASE(a_hand_off_a_page_has_seen_is_not_taken_twice) {
  auto j = job("1", "ep");
  auto seen_at = real_log->last_sequence();
  auto a = spawn(endpoint("ep", {1, 1, 1, 1})); // its first page has dlv_1
  BOOST_REQUIRE(client.requests.size() == 1u);
  client.answer(200);
  run();
  BOOST_TEST((stored("dlv_1").state == delivery_state::delivered));
  // The ingest actor's hand-off of the same commit arrives late.
  caf::anon_send(a, actors::deliver_atom_v, std::vector<delivery::job>{j},
                 seen_at);
  run();
  advance(10000);
  BOOST_TEST(client.requests.empty()); // delivered once
  BOOST_TEST(stored("dlv_1").attempts.size() == 1u);
}

BOOST_AUTO_TEST_CASE(deliveries_another_node_made_pending_are_fetched_once) {
  auto a = spawn(endpoint("ep", {1, 1, 1, 1})); // nothing in the store yet
  BOOST_TEST(client.requests.empty());
  // Another node of the cluster accepted an event for ep: its delivery is
  // in the store, and the log's news of it reaches this node's actor.
  job("1", "ep");
  std::vector<actors::pending_news> news{
      {"dlv_1", "ep", real_log->last_sequence()}};
  caf::anon_send(a, actors::fetch_atom_v, news);
  run();
  BOOST_TEST(held_ids(client) == std::vector<std::string>{"evt_1"},
             boost::test_tools::per_element());
  client.answer(200);
  run();
  BOOST_TEST((stored("dlv_1").state == delivery_state::delivered));
  // The same news again (a poll after a notification): delivered already.
  caf::anon_send(a, actors::fetch_atom_v, news);
  run();
  advance(10000);
  BOOST_TEST(client.requests.empty());
  BOOST_TEST(stored("dlv_1").attempts.size() == 1u);
}

BOOST_AUTO_TEST_CASE(new_deliveries_past_the_frontier_wait_their_turn) {
  for (auto id : {"1", "2", "3", "4", "5"}) {
    job(id, "ep");
    advance(1);
  }
  auto cfg = endpoint("ep", {1, 1, 1, 1});
  cfg.max_in_flight = 2;
  auto a = spawn(cfg, 2); // two in flight, two more waiting in memory
  BOOST_TEST(held_ids(client) == (std::vector<std::string>{"evt_1", "evt_2"}),
             boost::test_tools::per_element());
  // A new one, handed over while the backlog is still in the store: it is
  // due after the backlog, so it waits in the store too.
  deliver(a, {job("6", "ep")});
  BOOST_TEST(client.requests.size() == 2u);
  std::vector<std::string> sent;
  while (!client.requests.empty()) {
    for (auto& id : held_ids(client))
      sent.push_back(id);
    while (!client.requests.empty())
      client.answer(200);
    run();
  }
  BOOST_TEST(sent == (std::vector<std::string>{"evt_1", "evt_2", "evt_3",
                                               "evt_4", "evt_5", "evt_6"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(the_most_severe_goes_first_when_deliveries_wait) {
  // A Slack-like endpoint: one request a second. Ten low events wait, most
  // of them in the store (a window of four); a critical one accepted after
  // them goes next, not after them.
  for (int i = 0; i < 10; ++i) {
    job("low" + std::to_string(i), "ep", "low");
    advance(1);
  }
  auto cfg = endpoint("ep", {1, 1, 1, 1});
  cfg.rate = {1, 1};
  auto a = spawn(cfg, 4);
  BOOST_TEST(held_ids(client) == std::vector<std::string>{"evt_low0"},
             boost::test_tools::per_element());
  client.answer(200);
  run();
  deliver(a, {job("crit", "ep", "critical")});
  advance(1000);
  BOOST_TEST(held_ids(client) == std::vector<std::string>{"evt_crit"},
             boost::test_tools::per_element());
  // Then the rest, in acceptance order.
  std::vector<std::string> sent;
  for (int i = 0; i < 12 && !client.requests.empty(); ++i) {
    client.answer(200);
    run();
    advance(1000);
    for (auto& id : held_ids(client))
      sent.push_back(id);
  }
  std::vector<std::string> rest;
  for (int i = 1; i < 10; ++i)
    rest.push_back("evt_low" + std::to_string(i));
  BOOST_TEST(sent == rest, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_backlog_is_paged_in_the_most_severe_first) {
  // After a restart the store's own order brings the most severe first,
  // each severity in acceptance order, a window at a time.
  std::vector<std::pair<std::string, std::string>> accepted{
      {"a", "low"},  {"b", "info"},     {"c", "high"}, {"d", "low"},
      {"e", "high"}, {"f", "critical"}, {"g", "info"}, {"h", "medium"}};
  for (auto& [id, severity] : accepted) {
    job(id, "ep", severity);
    advance(1);
  }
  auto cfg = endpoint("ep", {1, 1, 1, 1});
  cfg.max_in_flight = 1;
  auto a = spawn(cfg, 2);
  auto sent = [&] {
    std::vector<std::string> out;
    while (!client.requests.empty()) {
      for (auto& id : held_ids(client))
        out.push_back(id);
      client.answer(200);
      run();
    }
    return out;
  }();
  BOOST_TEST(sent ==
                 (std::vector<std::string>{"evt_f", "evt_c", "evt_e", "evt_h",
                                           "evt_a", "evt_d", "evt_b", "evt_g"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(an_ordered_endpoint_ignores_severity) {
  for (auto [id, severity] :
       {std::pair{"1", "low"}, {"2", "critical"}, {"3", "info"}}) {
    job(id, "ep", severity, true);
    advance(1);
  }
  auto cfg = endpoint("ep", {1, 1, 1, 1});
  cfg.ordered = true;
  auto a = spawn(cfg, 2);
  deliver(a, {job("4", "ep", "critical", true)});
  BOOST_TEST(answer_in_turn() ==
                 (std::vector<std::string>{"evt_1", "evt_2", "evt_3", "evt_4"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(an_attempt_a_crash_cut_short_is_made_again) {
  // The store as a SIGKILL left it: an attempt started, never finished.
  auto j = job("1", "ep");
  j.state.attempts.push_back(storage::attempt{1, now(), 0, 0, 0, "", "", ""});
  storage::changes ws;
  ws.delivery_changed(j.state, storage::record_kind::attempt_started,
                      storage::standing_of(j.state));
  BOOST_REQUIRE(real_log->commit(ws, storage::durability::buffered).ok());
  advance(5000);
  auto a = spawn(endpoint("ep", {1, 1, 1, 1}));
  BOOST_REQUIRE(client.requests.size() == 1u);
  client.answer(200);
  run();
  auto d = stored("dlv_1");
  BOOST_TEST((d.state == delivery_state::delivered));
  BOOST_REQUIRE(d.attempts.size() == 2u);
  BOOST_TEST(d.attempts[0].error == delivery::interrupted_error);
  BOOST_TEST(d.attempts[1].status == 200);
  (void)a;
}

BOOST_AUTO_TEST_CASE(removal_dead_letters_the_store_a_page_at_a_time) {
  for (int i = 0; i < 7; ++i)
    job(std::to_string(i), "ep");
  auto a = spawn(endpoint("ep", {30, 30, 30, 30}), 2);
  BOOST_REQUIRE(client.requests.size() == 2u); // dlv_0, dlv_1 in flight
  bool down = false;
  auto watcher = watch_down(a, down);
  run();
  caf::anon_send(a, actors::remove_atom_v);
  run();
  for (int i = 2; i < 7; ++i) {
    auto d = stored("dlv_" + std::to_string(i));
    BOOST_TEST((d.state == delivery_state::dead_lettered), i);
    BOOST_TEST(d.reason == "endpoint_deleted");
  }
  BOOST_TEST(!down); // two attempts in flight
  client.answer(200);
  client.answer(503);
  run();
  BOOST_TEST((stored("dlv_0").state == delivery_state::delivered));
  BOOST_TEST((stored("dlv_1").state == delivery_state::dead_lettered));
  BOOST_TEST(down);
  caf::anon_send_exit(watcher, caf::exit_reason::user_shutdown);
  run();
}

BOOST_AUTO_TEST_SUITE_END()
