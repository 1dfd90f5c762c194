// The token bucket and the circuit breaker on explicit time: no sleeps.
#include "delivery/flow_control.hpp"

#include <boost/test/unit_test.hpp>

using namespace tocsin::delivery;
using tocsin::unix_ms;

BOOST_AUTO_TEST_SUITE(flow_control)

BOOST_AUTO_TEST_CASE(unlimited_bucket_always_gives) {
  token_bucket b;
  for (int i = 0; i < 1000; ++i)
    BOOST_TEST(b.try_take(1000));
  BOOST_TEST(b.next_token_at(1000) == 1000);
}

BOOST_AUTO_TEST_CASE(bucket_allows_the_burst_then_the_rate) {
  token_bucket b{{1.0, 3}}; // Slack: 1 per second, burst 3
  unix_ms t = 1'000'000;
  int sent = 0;
  std::vector<unix_ms> at;
  // 20 requests waiting: send whenever a token is there.
  while (sent < 20) {
    if (b.try_take(t)) {
      at.push_back(t);
      ++sent;
    } else {
      auto next = b.next_token_at(t);
      BOOST_TEST_REQUIRE(next > t);
      t = next;
    }
  }
  BOOST_TEST(at[0] == 1'000'000);
  BOOST_TEST(at[2] == 1'000'000); // the burst
  // Then one per second: 17 more over 17 s.
  for (std::size_t i = 3; i < at.size(); ++i)
    BOOST_TEST(at[i] - at[i - 1] == 1000);
  BOOST_TEST(at.back() - at.front() == 17'000);
}

BOOST_AUTO_TEST_CASE(bucket_refills_while_idle_but_not_beyond_the_burst) {
  token_bucket b{{2.0, 2}};
  BOOST_TEST(b.try_take(0 + 1));
  BOOST_TEST(b.try_take(1));
  BOOST_TEST(!b.try_take(1));
  BOOST_TEST(b.next_token_at(1) == 501);
  BOOST_TEST(b.try_take(501));
  // An hour idle: still only the burst.
  BOOST_TEST(b.try_take(3'600'000));
  BOOST_TEST(b.try_take(3'600'000));
  BOOST_TEST(!b.try_take(3'600'000));
}

BOOST_AUTO_TEST_CASE(breaker_opens_after_consecutive_failures) {
  circuit_breaker cb{{3, 500}};
  BOOST_TEST((cb.on_failure(10) == circuit_breaker::change::none));
  BOOST_TEST((cb.on_failure(20) == circuit_breaker::change::none));
  BOOST_TEST(cb.allows(20, 0));
  BOOST_TEST((cb.on_failure(30) == circuit_breaker::change::opened));
  BOOST_TEST((cb.current() == circuit_breaker::state::open));
  BOOST_TEST(!cb.allows(100, 0));
  BOOST_TEST(*cb.reopens_at() == 530);
  BOOST_TEST(!cb.allows(529, 0));
}

BOOST_AUTO_TEST_CASE(a_success_in_between_resets_the_count) {
  circuit_breaker cb{{3, 500}};
  cb.on_failure(1);
  cb.on_failure(2);
  cb.on_success();
  cb.on_failure(3);
  cb.on_failure(4);
  BOOST_TEST((cb.current() == circuit_breaker::state::closed));
  cb.on_answer(); // a 4xx: the endpoint is up
  cb.on_failure(5);
  cb.on_failure(6);
  BOOST_TEST((cb.current() == circuit_breaker::state::closed));
}

BOOST_AUTO_TEST_CASE(half_open_lets_one_probe_through) {
  circuit_breaker cb{{1, 500}};
  BOOST_TEST((cb.on_failure(0) == circuit_breaker::change::opened));
  BOOST_TEST(cb.allows(500, 0)); // the probe
  BOOST_TEST((cb.current() == circuit_breaker::state::half_open));
  BOOST_TEST(!cb.allows(500, 1)); // only one at a time
  BOOST_TEST(!cb.reopens_at());   // wait for its answer
  // The probe fails: open again, a new cooldown, no second "opened".
  BOOST_TEST((cb.on_failure(600) == circuit_breaker::change::none));
  BOOST_TEST(!cb.allows(700, 0));
  BOOST_TEST(*cb.reopens_at() == 1100);
  // The next probe succeeds: closed, everything flows.
  BOOST_TEST(cb.allows(1100, 0));
  BOOST_TEST((cb.on_success() == circuit_breaker::change::closed));
  BOOST_TEST(cb.allows(1100, 15));
}

BOOST_AUTO_TEST_CASE(zero_failures_never_opens) {
  circuit_breaker cb{{0, 500}};
  for (int i = 0; i < 100; ++i)
    BOOST_TEST((cb.on_failure(i) == circuit_breaker::change::none));
  BOOST_TEST(cb.allows(100, 50));
}

BOOST_AUTO_TEST_SUITE_END()
