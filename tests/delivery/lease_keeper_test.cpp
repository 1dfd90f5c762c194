// Placement (who should drive what) and the lease keeper (what one node
// takes, keeps, hands over and loses), on explicit time: heartbeats are
// answered by the test as the database would.
#include "delivery/lease_keeper.hpp"
#include "delivery/placement.hpp"

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <map>
#include <set>

namespace tocsin::delivery {

namespace {

std::vector<std::string> endpoints(int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i)
    out.push_back("ep_" + std::to_string(i));
  return out;
}

std::map<std::string, std::size_t>
loads(const std::map<std::string, std::string>& placed) {
  std::map<std::string, std::size_t> out;
  for (auto& [name, node] : placed)
    ++out[node];
  return out;
}

storage::node_record alive(std::string id) {
  return {std::move(id), "", 0, true, {}};
}

/// What the database answers a heartbeat: the node holds what it held and
/// was not released, plus what it asked to take and nobody else holds.
struct fake_db {
  std::map<std::string, std::pair<std::string, std::uint64_t>> leases;
  std::vector<storage::node_record> nodes;

  storage::membership beat(const storage::heartbeat_request& r) {
    for (auto& name : r.release)
      if (leases.count(name) && leases[name].first == r.node)
        leases[name].first.clear();
    for (auto& name : r.take) {
      auto& l = leases[name];
      if (l.first.empty()) {
        l.first = r.node;
        ++l.second;
      }
    }
    storage::membership m;
    m.nodes = nodes;
    for (auto& [name, l] : leases)
      if (l.first == r.node)
        m.held.push_back({name, l.second});
    return m;
  }
};

} // namespace

BOOST_AUTO_TEST_SUITE(placement_and_leases)

BOOST_AUTO_TEST_CASE(every_name_is_placed_and_the_load_is_even) {
  auto names = endpoints(100);
  names.emplace_back("escalation");
  auto placed = place(names, {"c", "a", "b"});
  BOOST_TEST(placed.size() == names.size());
  auto l = loads(placed);
  BOOST_TEST(l.size() == 3u);
  for (auto& [node, n] : l)
    BOOST_TEST((n == 33 || n == 34), node << " has " << n);
  // Order and repeats do not matter: every node computes the same.
  BOOST_TEST((place(names, {"b", "a", "c", "a"}) == placed));
  BOOST_TEST(place(names, {}).empty());
}

BOOST_AUTO_TEST_CASE(a_node_that_joins_takes_its_share_and_moves_little_else) {
  auto names = endpoints(60);
  auto before = place(names, {"a", "b"});
  auto after = place(names, {"a", "b", "c"});
  std::size_t moved_between_old = 0, to_new = 0;
  for (auto& [name, node] : after) {
    if (node == "c")
      ++to_new;
    else if (node != before[name])
      ++moved_between_old;
  }
  BOOST_TEST(to_new == 20u);
  // Rendezvous hashing: the old nodes keep what they had, give the newcomer
  // its share, and the load bound pushes only a few along.
  BOOST_TEST(moved_between_old <= 6u, moved_between_old);
}

BOOST_AUTO_TEST_CASE(a_node_takes_its_share_once_it_has_seen_the_cluster) {
  lease_keeper k{"a", "127.0.0.1:1", std::chrono::seconds{10}};
  k.set_names(endpoints(4));
  fake_db db;
  db.nodes = {alive("a")};
  // The first heartbeat only meets the cluster: nothing placed yet.
  BOOST_TEST(k.next_round().take.empty());
  auto first = k.round_done(db.beat(k.next_round()), 0);
  BOOST_TEST(first.gained.empty());
  // Alone: everything is its own.
  auto second = k.round_done(db.beat(k.next_round()), 100);
  BOOST_TEST(second.gained.size() == 4u);
  for (auto& g : second.gained)
    BOOST_TEST(g.epoch == 1u);
  // Renewals change nothing.
  BOOST_TEST(k.round_done(db.beat(k.next_round()), 200).empty());
}

BOOST_AUTO_TEST_CASE(
    a_lease_another_node_should_hold_is_drained_then_released) {
  lease_keeper k{"a", "", std::chrono::seconds{10}};
  auto names = endpoints(6);
  k.set_names(names);
  fake_db db;
  db.nodes = {alive("a")};
  k.round_done(db.beat(k.next_round()), 0);
  k.round_done(db.beat(k.next_round()), 0);
  BOOST_REQUIRE(k.held().size() == 6u);
  // b joins: what is b's is handed over, not dropped.
  db.nodes = {alive("a"), alive("b")};
  auto r = k.round_done(db.beat(k.next_round()), 1000);
  auto theirs = place(names, {"a", "b"});
  std::set<std::string> expected;
  for (auto& [name, node] : theirs)
    if (node == "b")
      expected.insert(name);
  BOOST_TEST(std::set<std::string>(r.hand_over.begin(), r.hand_over.end()) ==
                 expected,
             boost::test_tools::per_element());
  BOOST_TEST(r.lost.empty());
  // Still held (and renewed) until drained; asked again, not twice.
  BOOST_TEST(k.next_round().release.empty());
  BOOST_TEST(k.round_done(db.beat(k.next_round()), 2000).hand_over.empty());
  for (auto& name : r.hand_over)
    k.drained(name);
  BOOST_TEST(k.next_round().release.size() == expected.size());
  k.round_done(db.beat(k.next_round()), 3000);
  BOOST_TEST(k.held().size() == 6u - expected.size());
  for (auto& name : expected)
    BOOST_TEST(db.leases[name].first.empty(), name << " released");
}

BOOST_AUTO_TEST_CASE(a_lease_taken_by_another_node_is_lost_at_once) {
  lease_keeper k{"a", "", std::chrono::seconds{10}};
  k.set_names({"x", "y"});
  fake_db db;
  db.nodes = {alive("a")};
  k.round_done(db.beat(k.next_round()), 0);
  k.round_done(db.beat(k.next_round()), 0);
  BOOST_REQUIRE(k.held().size() == 2u);
  // Paused past its lease: b took x (a newer epoch), then a beats again.
  db.leases["x"] = {"b", 2};
  db.nodes = {alive("a"), alive("b")};
  auto r = k.round_done(db.beat(k.next_round()), 20000);
  BOOST_TEST(r.lost == std::vector<std::string>{"x"},
             boost::test_tools::per_element());
  BOOST_TEST(k.held().count("x") == 0u);
}

BOOST_AUTO_TEST_CASE(a_lease_that_moved_away_and_back_is_lost_then_gained) {
  lease_keeper k{"a", "", std::chrono::seconds{10}};
  k.set_names({"x"});
  fake_db db;
  db.nodes = {alive("a")};
  k.round_done(db.beat(k.next_round()), 0);
  k.round_done(db.beat(k.next_round()), 0);
  // Between two heartbeats of a (paused), b took x and a took it back:
  // what a ran under epoch 1 is fenced off, and it starts again under 3.
  db.leases["x"] = {"a", 3};
  auto r = k.round_done(db.beat(k.next_round()), 30000);
  BOOST_TEST(r.lost == std::vector<std::string>{"x"},
             boost::test_tools::per_element());
  BOOST_REQUIRE(r.gained.size() == 1u);
  BOOST_TEST(r.gained[0].epoch == 3u);
}

BOOST_AUTO_TEST_CASE(heartbeats_failing_for_the_ttl_lose_everything) {
  lease_keeper k{"a", "", std::chrono::seconds{10}};
  k.set_names({"x"});
  fake_db db;
  db.nodes = {alive("a")};
  k.round_done(db.beat(k.next_round()), 0);
  k.round_done(db.beat(k.next_round()), 1000); // renewed as sent at 1000
  BOOST_TEST(k.round_failed(5000).lost.empty());
  BOOST_TEST(k.round_failed(10999).lost.empty());
  BOOST_TEST(k.round_failed(11000).lost == std::vector<std::string>{"x"},
             boost::test_tools::per_element());
  BOOST_TEST(k.held().empty());
}

BOOST_AUTO_TEST_CASE(leaving_hands_everything_over) {
  lease_keeper k{"a", "", std::chrono::seconds{10}};
  k.set_names({"x", "y", "escalation"});
  fake_db db;
  db.nodes = {alive("a")};
  k.round_done(db.beat(k.next_round()), 0);
  k.round_done(db.beat(k.next_round()), 0);
  k.leave();
  BOOST_TEST(k.next_round().take.empty());
  auto r = k.round_done(db.beat(k.next_round()), 100);
  BOOST_TEST(r.hand_over.size() == 3u);
  for (auto& name : r.hand_over)
    k.drained(name);
  k.round_done(db.beat(k.next_round()), 200);
  BOOST_TEST(k.held().empty());
}

BOOST_AUTO_TEST_CASE(
    a_fenced_lease_is_forgotten_and_not_taken_back_while_held) {
  lease_keeper k{"a", "", std::chrono::seconds{10}};
  k.set_names({"x"});
  fake_db db;
  db.nodes = {alive("a")};
  k.round_done(db.beat(k.next_round()), 0);
  k.round_done(db.beat(k.next_round()), 0);
  db.leases["x"] = {"b", 5};
  BOOST_TEST(k.forget("x"));
  BOOST_TEST(k.held().empty());
  // Asked again (it is placed here) but b holds it: nothing gained.
  auto r = k.round_done(db.beat(k.next_round()), 100);
  BOOST_TEST(r.gained.empty());
  BOOST_TEST(r.lost.empty());
}

BOOST_AUTO_TEST_SUITE_END()

} // namespace tocsin::delivery
