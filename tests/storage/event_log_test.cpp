#include "storage/event_log.hpp"
#include "storage/log_fold.hpp"

#include "tests/support/temp_dir.hpp"

#include <boost/test/unit_test.hpp>

#include <nlohmann/json.hpp>

using namespace tocsin;
using namespace tocsin::storage;

namespace {

delivery make_delivery(std::string id, std::string event_id) {
  delivery d;
  d.id = std::move(id);
  d.event_id = std::move(event_id);
  d.endpoint_id = "ep";
  d.created_at = 1000;
  d.next_attempt_at = 1000;
  return d;
}

std::vector<nlohmann::json> records(event_log& log) {
  std::vector<nlohmann::json> out;
  auto st = log.for_each_record(0, [&](std::uint64_t, std::string_view r) {
    out.push_back(nlohmann::json::parse(r));
    return true;
  });
  BOOST_REQUIRE(st.ok());
  return out;
}

} // namespace

BOOST_AUTO_TEST_SUITE(event_log)

BOOST_AUTO_TEST_CASE(commits_events_and_deliveries_and_reads_them_back) {
  test::temp_dir dir;
  auto log = open_event_log({dir.path().string()});
  BOOST_REQUIRE(log);
  event_record e{"evt_1", R"({"id":"evt_1"})", 1000, {"dlv_1", "dlv_2"}};
  write_set ws;
  ws.add_event(e);
  ws.put_delivery(make_delivery("dlv_1", "evt_1"), "delivery.created");
  ws.put_delivery(make_delivery("dlv_2", "evt_1"), "delivery.created");
  BOOST_REQUIRE((*log)->commit(ws, durability::synced).ok());

  auto got = (*log)->get_event("evt_1");
  BOOST_REQUIRE(got);
  BOOST_REQUIRE(*got);
  BOOST_TEST((*got)->body == e.body);
  BOOST_TEST((*got)->delivery_ids == e.delivery_ids);
  auto missing = (*log)->get_event("evt_nope");
  BOOST_REQUIRE(missing);
  BOOST_TEST(!*missing);

  std::vector<std::string> pending;
  BOOST_REQUIRE(
      (*log)
          ->for_each_pending([&](delivery&& d) { pending.push_back(d.id); })
          .ok());
  BOOST_TEST(pending == (std::vector<std::string>{"dlv_1", "dlv_2"}));

  auto recs = records(**log);
  BOOST_REQUIRE(recs.size() == 3u);
  BOOST_TEST(recs[0]["kind"] == "event.accepted");
  BOOST_TEST(recs[1]["kind"] == "delivery.created");
  BOOST_TEST(recs[1]["delivery_id"] == "dlv_1");
  BOOST_TEST(recs[0]["seq"].get<int>() + 1 == recs[1]["seq"].get<int>());
}

BOOST_AUTO_TEST_CASE(state_changes_move_deliveries_between_indexes) {
  test::temp_dir dir;
  auto log = open_event_log({dir.path().string()});
  BOOST_REQUIRE(log);
  auto a = make_delivery("dlv_a", "evt_1");
  auto b = make_delivery("dlv_b", "evt_1");
  write_set ws;
  ws.put_delivery(a, "delivery.created");
  ws.put_delivery(b, "delivery.created");
  BOOST_REQUIRE((*log)->commit(ws, durability::buffered).ok());

  a.state = delivery_state::delivered;
  b.state = delivery_state::dead_lettered;
  b.reason = "attempts_exhausted";
  b.attempts.push_back(attempt{1, 1000, 1100, 503, 12.5, "busy", ""});
  ws.clear();
  ws.put_delivery(a, "delivery.delivered");
  ws.put_delivery(b, "delivery.dead_lettered");
  BOOST_REQUIRE((*log)->commit(ws, durability::buffered).ok());

  int pending = 0;
  BOOST_REQUIRE((*log)->for_each_pending([&](delivery&&) { ++pending; }).ok());
  BOOST_TEST(pending == 0);
  auto dead = (*log)->list_dead_letters("", 10);
  BOOST_REQUIRE(dead);
  BOOST_REQUIRE(dead->size() == 1u);
  BOOST_TEST((*dead)[0].id == "dlv_b");
  BOOST_TEST((*dead)[0].reason == "attempts_exhausted");
  BOOST_REQUIRE((*dead)[0].attempts.size() == 1u);
  BOOST_TEST((*dead)[0].attempts[0].status == 503);
  BOOST_TEST((*dead)[0].attempts[0].response == "busy");

  // Back to pending (a replay): out of the dead letters again.
  b.state = delivery_state::pending;
  ws.clear();
  ws.put_delivery(b, "delivery.replayed");
  BOOST_REQUIRE((*log)->commit(ws, durability::buffered).ok());
  BOOST_TEST((*log)->list_dead_letters("", 10)->empty());
}

BOOST_AUTO_TEST_CASE(dead_letters_page_in_id_order) {
  test::temp_dir dir;
  auto log = open_event_log({dir.path().string()});
  BOOST_REQUIRE(log);
  write_set ws;
  for (auto id : {"dlv_3", "dlv_1", "dlv_2"}) {
    auto d = make_delivery(id, "evt");
    d.state = delivery_state::dead_lettered;
    ws.put_delivery(d, "delivery.dead_lettered");
  }
  BOOST_REQUIRE((*log)->commit(ws, durability::buffered).ok());
  auto first = (*log)->list_dead_letters("", 2);
  BOOST_REQUIRE(first);
  BOOST_REQUIRE(first->size() == 2u);
  BOOST_TEST((*first)[0].id == "dlv_1");
  BOOST_TEST((*first)[1].id == "dlv_2");
  auto rest = (*log)->list_dead_letters("dlv_2", 2);
  BOOST_REQUIRE(rest->size() == 1u);
  BOOST_TEST((*rest)[0].id == "dlv_3");
}

BOOST_AUTO_TEST_CASE(survives_reopen_and_continues_the_sequence) {
  test::temp_dir dir;
  {
    auto log = open_event_log({dir.path().string()});
    BOOST_REQUIRE(log);
    write_set ws;
    ws.put_delivery(make_delivery("dlv_1", "evt_1"), "delivery.created");
    ws.add_record("endpoint.flagged", R"({"endpoint_id":"ep"})");
    BOOST_REQUIRE((*log)->commit(ws, durability::synced).ok());
  }
  auto log = open_event_log({dir.path().string()});
  BOOST_REQUIRE(log);
  write_set ws;
  ws.add_record("endpoint.flagged", R"({"endpoint_id":"ep2"})");
  BOOST_REQUIRE((*log)->commit(ws, durability::synced).ok());
  auto recs = records(**log);
  BOOST_REQUIRE(recs.size() == 3u);
  BOOST_TEST(recs[2]["seq"] == 3);
  BOOST_TEST(recs[2]["endpoint_id"] == "ep2");
  int pending = 0;
  BOOST_REQUIRE((*log)->for_each_pending([&](delivery&&) { ++pending; }).ok());
  BOOST_TEST(pending == 1);
}

BOOST_AUTO_TEST_CASE(folding_the_log_gives_the_stored_state) {
  test::temp_dir dir;
  auto log = open_event_log({dir.path().string()});
  BOOST_REQUIRE(log);
  auto commit = [&](auto&& fill) {
    write_set ws;
    fill(ws);
    BOOST_REQUIRE((*log)->commit(ws, durability::buffered).ok());
  };
  auto a = make_delivery("dlv_a", "evt_1");
  auto b = make_delivery("dlv_b", "evt_1");
  commit([&](write_set& ws) {
    ws.add_delivery(a);
    ws.add_delivery(b);
  });
  for (int n = 1; n <= 2; ++n) {
    a.attempts.push_back(attempt{n, 1000, 0, 0, 0, "", ""});
    commit([&](write_set& ws) {
      ws.put_delivery(a, "attempt.started", delivery_state::pending);
    });
    a.attempts.back().finished_at = 1100;
    a.attempts.back().status = n == 1 ? 503 : 200;
    if (n == 2)
      a.state = delivery_state::delivered;
    commit([&](write_set& ws) {
      ws.put_delivery(a, "attempt.finished", delivery_state::pending);
    });
  }
  b.attempts.push_back(attempt{1, 1000, 1100, 400, 1, "no", ""});
  b.state = delivery_state::dead_lettered;
  b.reason = "rejected_http_400";
  commit([&](write_set& ws) {
    ws.put_delivery(b, "attempt.finished", delivery_state::pending);
  });

  auto folded = fold_log(**log);
  BOOST_REQUIRE(folded);
  BOOST_REQUIRE(folded->size() == 2u);
  BOOST_TEST((folded->at("dlv_a").state == delivery_state::delivered));
  BOOST_TEST(folded->at("dlv_a").attempts == 2);
  BOOST_TEST((folded->at("dlv_b").state == delivery_state::dead_lettered));
  BOOST_TEST(folded->at("dlv_b").reason == "rejected_http_400");
  // And the indexes followed the transitions.
  int pending = 0;
  BOOST_REQUIRE((*log)->for_each_pending([&](delivery&&) { ++pending; }).ok());
  BOOST_TEST(pending == 0);
  BOOST_TEST((*log)->list_dead_letters("", 10)->size() == 1u);
}

BOOST_AUTO_TEST_CASE(a_second_opener_is_refused_with_store_locked) {
  test::temp_dir dir;
  auto first = open_event_log({dir.path().string()});
  BOOST_REQUIRE(first);
  auto second = open_event_log({dir.path().string()});
  BOOST_REQUIRE(!second);
  BOOST_TEST(second.error().code == "store_locked");
}

BOOST_AUTO_TEST_CASE(endpoint_definitions_are_logged_and_survive_reopening) {
  test::temp_dir dir;
  {
    auto log = open_event_log({dir.path().string()});
    BOOST_REQUIRE(log);
    write_set ws;
    ws.put_endpoint("b", R"({"id":"b","v":1})", "endpoint.created");
    ws.put_endpoint("a", R"({"id":"a","v":1})", "endpoint.created");
    BOOST_REQUIRE((*log)->commit(ws, durability::synced).ok());
    write_set change;
    change.put_endpoint("a", R"({"id":"a","v":2})", "endpoint.updated");
    change.delete_endpoint("b");
    BOOST_REQUIRE((*log)->commit(change, durability::synced).ok());
  }
  auto log = open_event_log({dir.path().string()});
  BOOST_REQUIRE(log);
  auto all = (*log)->list_endpoints();
  BOOST_REQUIRE(all);
  BOOST_REQUIRE(all->size() == 1u);
  BOOST_TEST((*all)[0].first == "a");
  BOOST_TEST((*all)[0].second == R"({"id":"a","v":2})");
  auto b = (*log)->get_endpoint("b");
  BOOST_REQUIRE(b);
  BOOST_TEST(!*b);
  // Every change is in the log, with the definition it stored.
  auto recs = records(**log);
  BOOST_REQUIRE(recs.size() == 4u);
  BOOST_TEST(recs[2]["kind"] == "endpoint.updated");
  BOOST_TEST(recs[2]["endpoint_id"] == "a");
  BOOST_TEST(recs[2]["endpoint"]["v"] == 2);
  BOOST_TEST(recs[3]["kind"] == "endpoint.deleted");
  BOOST_TEST(recs[3]["endpoint_id"] == "b");
}

BOOST_AUTO_TEST_SUITE_END()
