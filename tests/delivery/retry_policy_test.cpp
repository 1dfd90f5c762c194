#include "delivery/retry_policy.hpp"

#include <boost/test/unit_test.hpp>

using namespace tocsin;
using namespace tocsin::delivery;
using net::inbound_response;

namespace {

inbound_response answer(int s, std::string retry_after = {}) {
  inbound_response r;
  r.status = s;
  r.retry_after = std::move(retry_after);
  return r;
}

inbound_response network_error() {
  inbound_response r;
  r.error = "connect: Connection refused";
  return r;
}

/// A delivery with `n` finished attempts, the window starting at t = 0.
storage::delivery with_attempts(int n) {
  storage::delivery d;
  d.window_start = 0;
  for (int i = 1; i <= n; ++i)
    d.attempts.push_back(storage::attempt{i, 0, 1, 503, 1, "", "", ""});
  return d;
}

const plugins::classification retryable{outcome::retry, {}};

/// The verdict after an attempt that ended with `r`, which the transport
/// would read as `says`.
verdict after(const delivery::retry_policy& p, const storage::delivery& d,
              const inbound_response& r, const plugins::classification& says,
              unix_ms now, std::mt19937_64& rng) {
  auto c = classify(
      r, [&](int, std::string_view, std::string_view) { return says; });
  return decide(p, d, c, r.retry_after, now, rng);
}

} // namespace

BOOST_AUTO_TEST_SUITE(retry_policy)

// Which statuses mean what is the transport's business (see each plugin's
// classification table); a missing answer is always the host's: retried.
BOOST_AUTO_TEST_CASE(no_answer_is_retried_whatever_the_transport_says) {
  std::mt19937_64 rng{1};
  delivery::retry_policy p;
  auto v = after(p, with_attempts(1), network_error(),
                 plugins::classification{outcome::success, {}}, 0, rng);
  BOOST_TEST((v.what == outcome::retry));
  inbound_response forbidden;
  forbidden.forbidden = true;
  auto f = after(p, with_attempts(1), forbidden, retryable, 0, rng);
  BOOST_TEST((f.dead_lettered()));
  BOOST_TEST(f.reason == "forbidden_address");
}

BOOST_AUTO_TEST_CASE(the_transports_reason_follows_the_code) {
  std::mt19937_64 rng{1};
  delivery::retry_policy p;
  auto v = after(p, with_attempts(1), answer(400),
                 plugins::classification{outcome::permanent, "invalid_payload"},
                 0, rng);
  BOOST_TEST(v.reason == "rejected_http_400: invalid_payload");
}

BOOST_AUTO_TEST_CASE(default_schedule_is_five_attempts_over_fifteen_minutes) {
  delivery::retry_policy p;
  BOOST_TEST(p.max_attempts() == 5);
  BOOST_TEST(p.window_ms() == 15 * 60 * 1000);
}

BOOST_AUTO_TEST_CASE(follows_the_schedule_without_jitter) {
  delivery::retry_policy p{{60, 120, 240, 480}, 0};
  std::mt19937_64 rng{1};
  unix_ms now = 0;
  std::vector<unix_ms> times{0};
  for (int n = 1; n <= 4; ++n) {
    auto v = after(p, with_attempts(n), answer(503), retryable, now, rng);
    BOOST_REQUIRE((v.what == outcome::retry));
    now = v.next_attempt_at;
    times.push_back(now);
  }
  BOOST_TEST(times == (std::vector<unix_ms>{0, 60000, 180000, 420000, 900000}));
  auto last = after(p, with_attempts(5), answer(503), retryable, now, rng);
  BOOST_TEST((last.dead_lettered()));
  BOOST_TEST(last.reason == "attempts_exhausted");
}

BOOST_AUTO_TEST_CASE(jitter_stays_within_ten_percent_and_inside_the_window) {
  delivery::retry_policy p{{60, 120, 240, 480}, 0.1};
  std::mt19937_64 rng{42};
  for (int trial = 0; trial < 1000; ++trial) {
    unix_ms now = 0;
    for (int n = 1; n <= 4; ++n) {
      auto v = after(p, with_attempts(n), network_error(), retryable, now, rng);
      BOOST_REQUIRE((v.what == outcome::retry));
      auto delay = v.next_attempt_at - now;
      auto nominal = static_cast<unix_ms>(p.schedule[n - 1] * 1000);
      BOOST_REQUIRE(delay >= nominal * 9 / 10);
      BOOST_REQUIRE(delay <= nominal * 11 / 10);
      BOOST_REQUIRE(v.next_attempt_at <= p.window_ms());
      now = v.next_attempt_at;
    }
  }
}

BOOST_AUTO_TEST_CASE(retry_after_is_honoured_when_it_fits_the_window) {
  delivery::retry_policy p{{60, 120, 240, 480}, 0};
  std::mt19937_64 rng{1};
  // 1st attempt at 0 answered 429 Retry-After: 300 -> wait 300 s, not 60.
  auto v = after(p, with_attempts(1), answer(429, "300"), retryable, 0, rng);
  BOOST_TEST(v.next_attempt_at == 300000);
  // Does not fit (window ends at 900 s): the schedule applies.
  auto w = after(p, with_attempts(1), answer(429, "3600"), retryable, 0, rng);
  BOOST_TEST(w.next_attempt_at == 60000);
  // Shorter than the schedule: the schedule's delay still applies.
  auto x = after(p, with_attempts(1), answer(503, "5"), retryable, 0, rng);
  BOOST_TEST(x.next_attempt_at == 60000);
}

BOOST_AUTO_TEST_CASE(retry_after_parses_seconds_and_http_dates) {
  unix_ms now = 784111777000; // Sun, 06 Nov 1994 08:49:37 GMT
  BOOST_TEST(*parse_retry_after("120", now) == 120000);
  BOOST_TEST(*parse_retry_after(" 7 ", now) == 7000);
  BOOST_TEST(*parse_retry_after("Sun, 06 Nov 1994 08:50:37 GMT", now) == 60000);
  BOOST_TEST(*parse_retry_after("Sun, 06 Nov 1994 08:40:37 GMT", now) == 0);
  BOOST_TEST(!parse_retry_after("-5", now));
  BOOST_TEST(!parse_retry_after("soon", now));
  BOOST_TEST(!parse_retry_after("", now));
}

BOOST_AUTO_TEST_CASE(permanent_failures_dead_letter_at_once) {
  delivery::retry_policy p;
  std::mt19937_64 rng{1};
  auto gone =
      after(p, with_attempts(1), answer(410),
            plugins::classification{outcome::disable_endpoint, {}}, 0, rng);
  BOOST_TEST((gone.dead_lettered()));
  BOOST_TEST(gone.reason == "endpoint_gone");
  BOOST_TEST(gone.flags_endpoint());
  auto bad = after(p, with_attempts(1), answer(400),
                   plugins::classification{outcome::permanent, {}}, 0, rng);
  BOOST_TEST((bad.dead_lettered()));
  BOOST_TEST(bad.reason == "rejected_http_400");
  BOOST_TEST(!bad.flags_endpoint());
}

BOOST_AUTO_TEST_CASE(interrupted_attempts_do_not_count) {
  delivery::retry_policy p{{1, 1, 1, 1}, 0};
  std::mt19937_64 rng{1};
  auto d = with_attempts(4);
  d.attempts.push_back(
      storage::attempt{5, 0, 1, 0, 0, "", std::string{interrupted_error}, ""});
  d.attempts.push_back(storage::attempt{6, 0, 1, 503, 0, "", "", ""});
  BOOST_TEST(counted_attempts(d) == 5);
  d.attempts.pop_back();
  BOOST_TEST(counted_attempts(d) == 4);
  auto v = after(p, d, network_error(), retryable, 0, rng);
  BOOST_TEST((v.what == outcome::retry));
}

BOOST_AUTO_TEST_SUITE_END()
