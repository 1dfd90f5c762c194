// Who comes in and who makes room at the cap, without sockets.
#include "api/connection_table.hpp"

#include <boost/test/unit_test.hpp>

using namespace tocsin::api;

BOOST_AUTO_TEST_SUITE(connection_table_suite)

BOOST_AUTO_TEST_CASE(the_least_progress_makes_room_oldest_first) {
  connection_table t{6, 100};
  // 1, 2: unfinished heads (2 the older head: 1 moved on and back);
  // 3, 4: idle keep-alives (4 the older); 5: a body; 6: busy.
  for (connection_table::id_type id = 1; id <= 6; ++id)
    BOOST_REQUIRE(
        (t.admit(id, "10.0.0.1").refused == connection_table::refusal::none));
  BOOST_TEST(t.enter(4, conn_phase::idle));
  BOOST_TEST(t.enter(3, conn_phase::idle));
  BOOST_TEST(t.enter(1, conn_phase::busy));
  BOOST_TEST(t.enter(1, conn_phase::head));
  BOOST_TEST(t.enter(5, conn_phase::body));
  BOOST_TEST(t.enter(6, conn_phase::busy));
  std::vector<connection_table::id_type> evicted;
  std::vector<conn_phase> phases;
  for (connection_table::id_type id = 7; id <= 12; ++id) {
    auto in = t.admit(id, "10.0.0.2");
    if (in.evict) {
      evicted.push_back(*in.evict);
      phases.push_back(in.evicted_phase);
      BOOST_TEST(!t.phase_of(*in.evict));
      BOOST_TEST(!t.enter(*in.evict, conn_phase::busy)); // it must close
    }
    // The newcomer is busy at once (answered quickly): only the old ones
    // can be chosen.
    if (in.refused == connection_table::refusal::none)
      BOOST_TEST(t.enter(id, conn_phase::busy));
    BOOST_TEST(t.size() <= 6u);
  }
  // Heads (oldest first), then idle keep-alives (idle the longest first),
  // then the body; never the busy one: the last newcomer is refused.
  BOOST_TEST(evicted == (std::vector<connection_table::id_type>{2, 1, 4, 3, 5}),
             boost::test_tools::per_element());
  BOOST_TEST((phases.front() == conn_phase::head));
  BOOST_TEST((phases[2] == conn_phase::idle));
  BOOST_TEST((phases[4] == conn_phase::body));
  BOOST_TEST(!t.phase_of(12));
  BOOST_TEST(t.size() == 6u);
  BOOST_TEST((t.phase_of(6) == conn_phase::busy));
}

BOOST_AUTO_TEST_CASE(a_closing_connection_goes_before_a_head) {
  connection_table t{2, 100};
  t.admit(1, "a");
  t.admit(2, "a");
  BOOST_TEST(t.enter(2, conn_phase::closing));
  auto in = t.admit(3, "b");
  BOOST_TEST((in.evict == 2u));
  BOOST_TEST((in.evicted_phase == conn_phase::closing));
  // A new connection is a head: the oldest one goes next.
  in = t.admit(4, "b");
  BOOST_TEST((in.evict == 1u));
}

BOOST_AUTO_TEST_CASE(one_address_is_bounded_and_never_costs_another) {
  connection_table t{4, 2};
  BOOST_TEST(
      (t.admit(1, "10.0.0.1").refused == connection_table::refusal::none));
  BOOST_TEST(
      (t.admit(2, "10.0.0.1").refused == connection_table::refusal::none));
  BOOST_TEST(
      (t.admit(3, "10.0.0.2").refused == connection_table::refusal::none));
  // Past its bound: refused, and nobody is evicted for it.
  auto in = t.admit(4, "10.0.0.1");
  BOOST_TEST((in.refused == connection_table::refusal::per_address));
  BOOST_TEST(!in.evict);
  BOOST_TEST(t.size() == 3u);
  BOOST_TEST(t.count_from("10.0.0.1") == 2u);
  // Another address still gets in, up to the cap and past it by eviction
  // (the oldest head, which is 10.0.0.1's).
  BOOST_TEST(
      (t.admit(5, "10.0.0.3").refused == connection_table::refusal::none));
  in = t.admit(6, "10.0.0.3");
  BOOST_TEST((in.refused == connection_table::refusal::none));
  BOOST_TEST((in.evict == 1u));
  BOOST_TEST(t.count_from("10.0.0.1") == 1u);
  // Its slot came back: 10.0.0.1 may open one more.
  t.remove(2);
  BOOST_TEST(t.count_from("10.0.0.1") == 0u);
  BOOST_TEST(
      (t.admit(7, "10.0.0.1").refused == connection_table::refusal::none));
}

BOOST_AUTO_TEST_CASE(every_connection_busy_refuses_the_new_one) {
  connection_table t{2, 10};
  t.admit(1, "a");
  t.admit(2, "b");
  t.enter(1, conn_phase::busy);
  t.enter(2, conn_phase::busy);
  auto in = t.admit(3, "c");
  BOOST_TEST((in.refused == connection_table::refusal::full));
  BOOST_TEST(!in.evict);
  BOOST_TEST(t.size() == 2u);
  BOOST_TEST(t.count_from("c") == 0u);
  t.remove(1);
  t.remove(1); // twice: harmless
  BOOST_TEST((t.admit(3, "c").refused == connection_table::refusal::none));
}

BOOST_AUTO_TEST_SUITE_END()
