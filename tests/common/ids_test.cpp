#include "common/ids.hpp"

#include <boost/test/unit_test.hpp>

#include <set>

using namespace tocsin;

BOOST_AUTO_TEST_SUITE(ids)

BOOST_AUTO_TEST_CASE(ids_are_prefixed_valid_and_strictly_increasing) {
  std::set<std::string> seen;
  std::string last;
  for (int i = 0; i < 10000; ++i) {
    auto id = new_id("evt");
    BOOST_REQUIRE(is_valid_id(id, "evt"));
    BOOST_REQUIRE(id > last); // time-ordered, monotonic within a millisecond
    last = id;
    seen.insert(id);
  }
  BOOST_TEST(seen.size() == 10000u);
}

BOOST_AUTO_TEST_CASE(an_id_tells_when_it_was_made) {
  auto before = now_ms();
  auto id = new_id("evt");
  auto at = time_of_id(id, "evt");
  BOOST_REQUIRE(at);
  BOOST_TEST(*at >= before);
  BOOST_TEST(*at <= now_ms());
  // The ULID spec's example time: 01ARZ3NDEK is 1469922850259 ms.
  BOOST_TEST(*time_of_id("evt_01ARZ3NDEKTSV4RRFFQ69G5FAV", "evt") ==
             1469922850259);
  BOOST_TEST(!time_of_id("evt_nope", "evt"));
  BOOST_TEST(!time_of_id(id, "dlv"));
}

BOOST_AUTO_TEST_CASE(validation_rejects_malformed_ids) {
  BOOST_TEST(!is_valid_id("evt_", "evt"));
  BOOST_TEST(!is_valid_id("dlv_01JD0000000000000000000000", "evt"));
  BOOST_TEST(
      !is_valid_id("evt_01JD00000000000000000000UU", "evt")); // U not base32
  BOOST_TEST(!is_valid_id("evt_01JD0000000000000000000000/", "evt"));
  BOOST_TEST(is_valid_id("evt_01JD0000000000000000000000", "evt"));
}

BOOST_AUTO_TEST_SUITE_END()
