// The adaptive concurrency limit on explicit time: every answer and its
// time given by the test.
#include "delivery/concurrency_limit.hpp"

#include <boost/test/unit_test.hpp>

namespace tocsin::delivery {

BOOST_AUTO_TEST_SUITE(concurrency_limit_suite)

BOOST_AUTO_TEST_CASE(the_limit_rises_while_answers_stay_near_the_floor) {
  concurrency_limit c;
  BOOST_TEST(c.limit() == 16);
  unix_ms now = 1000;
  // 16 answers at the floor with the limit used: one step.
  for (int i = 0; i < 16; ++i)
    c.record(answer_kind::ok, 10, c.limit(), now += 1);
  BOOST_TEST(c.limit() == 17);
  for (int i = 0; i < 2000; ++i)
    c.record(answer_kind::ok, 10 + (i % 5), c.limit(), now += 1);
  BOOST_TEST(c.limit() > 60);
  BOOST_TEST(c.floor() == 10);
}

BOOST_AUTO_TEST_CASE(a_limit_that_holds_nothing_back_does_not_grow) {
  concurrency_limit c;
  unix_ms now = 1000;
  for (int i = 0; i < 1000; ++i)
    c.record(answer_kind::ok, 10, 3, now += 1); // 3 of 16 in flight
  BOOST_TEST(c.limit() == 16);
}

BOOST_AUTO_TEST_CASE(latency_growth_cuts_the_limit_once_per_round_trip) {
  concurrency_limit c;
  unix_ms now = 1000;
  for (int i = 0; i < 10; ++i)
    c.record(answer_kind::ok, 10, c.limit(), now += 1);
  // The receiver starts queueing: three times its floor.
  c.record(answer_kind::ok, 30, c.limit(), now += 1);
  BOOST_TEST(c.limit() == 12); // 16 * 0.8
  // Answers to attempts sent before that cut: no more cuts.
  c.record(answer_kind::ok, 30, 16, now - 5, now + 25);
  c.record(answer_kind::ok, 30, 16, now, now + 30);
  BOOST_TEST(c.limit() == 12);
  // An attempt sent after it, and still slow: the next round trip's cut.
  c.record(answer_kind::ok, 30, 12, now + 1, now + 31);
  BOOST_TEST(c.limit() == 9);
}

BOOST_AUTO_TEST_CASE(overloads_and_failures_cut_the_limit) {
  concurrency_limit c;
  unix_ms now = 1000;
  c.record(answer_kind::overload, 5, 16, now);
  BOOST_TEST(c.limit() == 12);
  c.record(answer_kind::failure, 0, 12, now += 600);
  BOOST_TEST(c.limit() == 9);
}

BOOST_AUTO_TEST_CASE(the_limit_stays_between_its_floor_and_ceiling) {
  concurrency_options o;
  o.min = 2;
  o.max = 20;
  concurrency_limit c{o};
  unix_ms now = 1000;
  for (int i = 0; i < 50; ++i)
    c.record(answer_kind::overload, 1, c.limit(), now += 1000);
  BOOST_TEST(c.limit() == 2);
  for (int i = 0; i < 5000; ++i)
    c.record(answer_kind::ok, 10, c.limit(), now += 1);
  BOOST_TEST(c.limit() == 20);
}

BOOST_AUTO_TEST_CASE(the_floor_forgets_what_is_older_than_its_window) {
  concurrency_limit c;
  unix_ms now = 1000;
  c.record(answer_kind::ok, 2, 1, now);
  c.record(answer_kind::ok, 3, 1, now += 10);
  BOOST_TEST(c.floor() == 2);
  // The receiver moved (a slower host): 40 s later the old floor is gone,
  // and answers at its new speed no longer count as queueing.
  c.record(answer_kind::ok, 20, 1, now += 40'000);
  BOOST_TEST(c.floor() == 20);
  auto before = c.limit();
  c.record(answer_kind::ok, 25, 1, now += 1000);
  BOOST_TEST(c.limit() == before);
}

BOOST_AUTO_TEST_CASE(a_fast_receiver_gets_a_few_milliseconds_of_slack) {
  // A 0.2 ms floor: 2 ms is 10 times it, and still no queueing worth a cut
  // (it is within the 2 ms slack); 3 ms is past it.
  concurrency_limit c;
  unix_ms now = 1000;
  c.record(answer_kind::ok, 0.2, 16, now);
  for (int i = 0; i < 16; ++i)
    c.record(answer_kind::ok, 2, c.limit(), now += 1);
  BOOST_TEST(c.limit() == 17);
  c.record(answer_kind::ok, 3, c.limit(), now += 1);
  BOOST_TEST(c.limit() == 13);
}

BOOST_AUTO_TEST_CASE(a_slow_receiver_is_cut_past_the_tolerance) {
  // A 20 ms floor: 27 ms is near it (1.35x); 29 ms is queueing (1.45x).
  concurrency_limit c;
  unix_ms now = 1000;
  c.record(answer_kind::ok, 20, 16, now);
  c.record(answer_kind::ok, 27, 16, now += 1);
  BOOST_TEST(c.limit() == 16);
  c.record(answer_kind::ok, 29, 16, now += 1);
  BOOST_TEST(c.limit() == 12);
}

BOOST_AUTO_TEST_CASE(after_an_outage_the_limit_starts_small_and_doubles) {
  concurrency_limit c;
  unix_ms now = 1000;
  for (int i = 0; i < 40 * 40; ++i)
    c.record(answer_kind::ok, 10, c.limit(), now += 1);
  auto before = c.limit();
  BOOST_TEST(before >= 40);
  // The receiver is gone: failures, the circuit opens, probes fail.
  c.record(answer_kind::failure, 0, before, now += 1);
  BOOST_TEST(c.limit() == static_cast<int>(before * 0.8));
  auto half = c.limit() / 2; // of what it had when the circuit opened
  c.restart();
  BOOST_TEST(c.limit() == 1);
  for (int probe = 0; probe < 3; ++probe) {
    c.record(answer_kind::failure, 0, 1, now += 5000);
    c.restart();
  }
  BOOST_TEST(c.limit() == 1);
  // It answers again: one more per answer while under half the old limit
  // (each round trip doubles it), then one per round trip.
  int answers = 0;
  while (c.limit() < half && answers < 1000) {
    c.record(answer_kind::ok, 10, c.limit(), now += 1);
    ++answers;
  }
  BOOST_TEST(c.limit() == half);
  BOOST_TEST(answers == half - 1);
  for (int i = 0; i < half - 1; ++i)
    c.record(answer_kind::ok, 10, c.limit(), now += 1);
  BOOST_TEST(c.limit() == half);
  c.record(answer_kind::ok, 10, c.limit(), now += 1);
  BOOST_TEST(c.limit() == half + 1);
}

BOOST_AUTO_TEST_CASE(an_overload_ends_the_quick_growth) {
  concurrency_limit c;
  unix_ms now = 1000;
  for (int i = 0; i < 40 * 40; ++i)
    c.record(answer_kind::ok, 10, c.limit(), now += 1);
  c.restart();
  for (int i = 0; i < 5; ++i)
    c.record(answer_kind::ok, 10, c.limit(), now += 1);
  BOOST_TEST(c.limit() == 6);
  c.record(answer_kind::overload, 10, 6, now += 1000);
  BOOST_TEST(c.limit() == 4);
  // From here, one step per limit's worth of answers.
  for (int i = 0; i < 3; ++i)
    c.record(answer_kind::ok, 10, c.limit(), now += 1);
  BOOST_TEST(c.limit() == 4);
  c.record(answer_kind::ok, 10, c.limit(), now += 1);
  BOOST_TEST(c.limit() == 5);
}

BOOST_AUTO_TEST_SUITE_END()

} // namespace tocsin::delivery
