#include "common/log.hpp"
#include "common/time.hpp"

#include <boost/test/unit_test.hpp>

#include <random>

using namespace tocsin;

BOOST_AUTO_TEST_SUITE(time_format)

BOOST_AUTO_TEST_CASE(rfc3339_formats_utc_milliseconds) {
  BOOST_TEST(format_rfc3339(0) == "1970-01-01T00:00:00.000Z");
  BOOST_TEST(format_rfc3339(1795756200123) == "2026-11-27T05:10:00.123Z");
  BOOST_TEST(format_rfc3339(-1) == "1969-12-31T23:59:59.999Z");
  BOOST_TEST(format_rfc3339(253402300799999) == "9999-12-31T23:59:59.999Z");
  BOOST_TEST(format_rfc3339(-62167219200000) == "0000-01-01T00:00:00.000Z");
  // Every instant of years 0 to 9999 reads back as itself.
  std::mt19937_64 rng{1};
  std::uniform_int_distribution<long long> any{-62167219200000,
                                               253402300799999};
  for (int i = 0; i < 100000; ++i) {
    auto t = any(rng);
    auto text = format_rfc3339(t);
    BOOST_TEST_REQUIRE(text.size() == 24u);
    BOOST_TEST_REQUIRE(parse_rfc3339(text).value_or(t + 1) == t, text);
  }
}

BOOST_AUTO_TEST_CASE(rfc3339_parses_offsets_and_fractions) {
  BOOST_TEST(*parse_rfc3339("2026-11-27T05:10:00.123Z") == 1795756200123);
  BOOST_TEST(*parse_rfc3339("2026-11-27T05:10:00Z") == 1795756200000);
  BOOST_TEST(*parse_rfc3339("2026-11-27T06:10:00.5+01:00") == 1795756200500);
  BOOST_TEST(*parse_rfc3339("2026-11-27T05:10:00.123456789Z") == 1795756200123);
  BOOST_TEST(*parse_rfc3339("2024-02-29T00:00:00Z") == 1709164800000);
}

BOOST_AUTO_TEST_CASE(rfc3339_rejects_invalid_dates) {
  for (auto s :
       {"", "2026-11-27", "2026-11-27T05:10:00", "2026-13-01T00:00:00Z",
        "2026-02-30T00:00:00Z", "2023-02-29T00:00:00Z", "2026-11-27T25:00:00Z",
        "2026-11-27T05:10:00.Z", "2026-11-27T05:10:00Zjunk", "yesterday"})
    BOOST_TEST(!parse_rfc3339(s), s);
}

BOOST_AUTO_TEST_CASE(http_dates) {
  BOOST_TEST(*parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT") == 784111777000);
  BOOST_TEST(!parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"));
  BOOST_TEST(!parse_http_date("Sun, 06 Foo 1994 08:49:37 GMT"));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(log_throttle)

BOOST_AUTO_TEST_CASE(lets_one_record_through_per_interval_and_counts_the_rest) {
  using namespace std::chrono;
  log::throttle t{seconds{10}};
  log::throttle::clock::time_point at{};
  BOOST_TEST(t.admit(at)); // the first always
  BOOST_TEST(t.held_back() == 0u);
  BOOST_TEST(!t.admit(at + seconds{1}));
  BOOST_TEST(!t.admit(at + seconds{9}));
  BOOST_TEST(t.admit(at + seconds{10}));
  BOOST_TEST(t.held_back() == 2u);
  BOOST_TEST(t.admit(at + seconds{25}));
  BOOST_TEST(t.held_back() == 0u);
}

BOOST_AUTO_TEST_SUITE_END()
