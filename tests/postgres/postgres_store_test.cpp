// What only the PostgreSQL store does, against a real PostgreSQL: the
// database restarted under it (commits refused as "store_unavailable"
// meanwhile, then taken again without reopening the store), a set the
// database refuses failing alone instead of with the sets grouped with it,
// client bytes kept as bytes, and two stores (two nodes) committing to one
// database. (The contract both backends keep is the
// store_contract suite.)
#include "storage/postgres/postgres_store.hpp"

#include "common/ids.hpp"
#include "tests/postgres/pg_fixture.hpp"

#include <boost/test/unit_test.hpp>

#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

using namespace tocsin;
using namespace tocsin::storage;

namespace {

std::unique_ptr<store> open_pg(const std::string& db) {
  store_options o;
  o.kind = backend::postgres;
  o.postgres_url = test::fresh_database(db);
  auto s = open_store(o);
  BOOST_TEST_REQUIRE(s.ok(), (s.ok() ? "" : s.error().message));
  return std::move(*s);
}

changes one_event(const std::string& endpoint) {
  auto now = now_ms();
  event_record e{new_id("evt"), R"({"type":"policy.denied"})", now, {}};
  delivery d;
  d.id = new_id("dlv");
  d.event_id = e.id;
  d.endpoint_id = endpoint;
  d.next_attempt_at = now;
  e.delivery_ids.push_back(d.id);
  changes c;
  c.event_accepted(e);
  c.delivery_created(d);
  return c;
}

/// Calls `fn` until it returns true, at most for `limit` (a condition the
/// store reaches by itself: reconnecting takes up to a second).
template <class F>
bool within(std::chrono::seconds limit, F&& fn) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (fn())
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds{10}); // a poll
  }
  return fn();
}

} // namespace

BOOST_AUTO_TEST_SUITE(postgres_store)

BOOST_AUTO_TEST_CASE(
    a_restarted_database_is_refused_meanwhile_then_taken_again) {
  auto s = open_pg("store_restart");
  BOOST_TEST_REQUIRE(s->commit(one_event("ep"), durability::synced).ok());
  auto& pg = test::cluster();
  pg.stop("immediate");
  auto refused = s->commit(one_event("ep"), durability::synced);
  BOOST_TEST_REQUIRE(!refused.ok());
  BOOST_TEST(refused.error().code == "store_unavailable");
  BOOST_TEST(s->writable().error().code == "store_unavailable");
  // A lost connection passes by itself: the store can go on.
  BOOST_TEST(!s->failed());
  auto read = s->line_of("ep", {}, 10, {});
  BOOST_TEST_REQUIRE(!read.ok());
  BOOST_TEST(read.error().code == "store_unavailable");
  pg.start();
  // The same store, not reopened: writable again by itself, and the
  // commit before the crash is there with the one after.
  BOOST_TEST(
      within(std::chrono::seconds{10}, [&] { return s->writable().ok(); }));
  auto again = s->commit(one_event("ep"), durability::synced);
  BOOST_TEST_REQUIRE(again.ok(), (again.ok() ? "" : again.error().message));
  auto page = s->line_of("ep", {}, 10, {});
  BOOST_TEST_REQUIRE(page.ok());
  BOOST_TEST(page->deliveries.size() == 2u);
  BOOST_TEST(s->last_sequence() == 4u);
}

BOOST_AUTO_TEST_CASE(a_set_the_database_refuses_fails_alone) {
  auto s = open_pg("store_refused_set");
  // Many threads commit at once, so that sets are grouped; one of them
  // carries a row the database refuses (a NUL in text).
  std::vector<std::thread> threads;
  std::atomic<int> ok{0}, refused{0};
  for (int i = 0; i < 8; ++i)
    threads.emplace_back([&, i] {
      for (int j = 0; j < 20; ++j) {
        auto c =
            one_event(i == 3 && j == 10 ? std::string{"bad\0ep", 6} : "ep");
        (s->commit(c, durability::synced).ok() ? ok : refused)++;
      }
    });
  for (auto& t : threads)
    t.join();
  BOOST_TEST(refused.load() == 1);
  BOOST_TEST(ok.load() == 159);
  auto page = s->line_of("ep", {}, 1000, {});
  BOOST_TEST_REQUIRE(page.ok());
  BOOST_TEST(page->deliveries.size() == 159u);
  BOOST_TEST(s->last_sequence() == 2u * 159u);
}

BOOST_AUTO_TEST_CASE(idempotency_keys_are_kept_as_bytes) {
  auto s = open_pg("store_key_bytes");
  std::string key{"k\xff\x01\"\\{}", 7};
  idempotency_record rec{{"evt_A"}, 5, "d"};
  changes c;
  c.idempotency_key_used(key, rec);
  BOOST_TEST_REQUIRE(s->commit(c, durability::synced).ok());
  auto got = s->get_idempotency_key(key);
  BOOST_TEST_REQUIRE(got.ok());
  BOOST_TEST_REQUIRE(got->has_value());
  BOOST_TEST((*got)->ids == std::vector<std::string>{"evt_A"});
  BOOST_TEST(!s->get_idempotency_key("k")->has_value());
}

BOOST_AUTO_TEST_CASE(two_stores_on_one_database_both_commit) {
  // Nodes of a cluster, each with its store on the one database: every
  // commit of either is in the log once, numbered in commit order.
  auto url = test::fresh_database("store_two_writers");
  store_options o;
  o.kind = backend::postgres;
  o.postgres_url = url;
  auto first = open_store(o);
  BOOST_TEST_REQUIRE(first.ok());
  auto second = open_store(o);
  BOOST_TEST_REQUIRE(second.ok(), (second.ok() ? "" : second.error().message));
  std::vector<std::thread> threads;
  std::atomic<int> failed{0};
  std::mutex mtx;
  std::set<std::string> committed; // event ids
  for (int i = 0; i < 6; ++i)
    threads.emplace_back([&, i] {
      auto& s = i % 2 ? **first : **second;
      for (int j = 0; j < 25; ++j) {
        auto c = one_event("ep");
        auto id = c.list().front().id;
        if (!s.commit(c, durability::synced).ok()) {
          ++failed;
          continue;
        }
        std::lock_guard lock{mtx};
        committed.insert(id);
      }
    });
  for (auto& t : threads)
    t.join();
  BOOST_TEST(failed.load() == 0);
  BOOST_TEST(committed.size() == 150u);
  std::vector<std::uint64_t> seqs;
  std::multiset<std::string> logged; // the events' acceptances
  BOOST_TEST((*first)
                 ->read_log(1,
                            [&](std::uint64_t seq, std::string_view text) {
                              seqs.push_back(seq);
                              auto j = nlohmann::json::parse(text);
                              if (j["kind"] == "event.accepted")
                                logged.insert(j["event_id"]);
                              return true;
                            })
                 .ok());
  BOOST_TEST_REQUIRE(seqs.size() == 300u);
  for (std::size_t i = 0; i < seqs.size(); ++i)
    BOOST_TEST_REQUIRE(seqs[i] == i + 1);
  BOOST_TEST((logged ==
              std::multiset<std::string>(committed.begin(), committed.end())));
  BOOST_TEST((*second)->line_of("ep", {}, 1000, {})->deliveries.size() == 150u);
}

BOOST_AUTO_TEST_CASE(a_store_ends_only_its_own_stale_session) {
  // A store that lost its connection ends, as it connects again, the
  // session the server may still hold for it (by its application_name, a
  // token of its own in it): never the session of another store.
  auto url = test::fresh_database("store_stale_session");
  auto& pg = test::cluster();
  auto sessions = [&](const std::string& where) {
    return pg.psql("SELECT pid || ' ' || application_name FROM "
                   "pg_stat_activity WHERE datname = 'store_stale_session' "
                   "AND " +
                       where + " ORDER BY 1",
                   "postgres");
  };
  store_options o;
  o.kind = backend::postgres;
  o.postgres_url = url;
  auto first = open_store(o);
  BOOST_TEST_REQUIRE(first.ok());
  auto first_session = sessions("application_name LIKE 'tocsin %'");
  BOOST_TEST_REQUIRE(
      std::count(first_session.begin(), first_session.end(), '\n') == 1);
  auto second = open_store(o);
  BOOST_TEST_REQUIRE(second.ok());
  // The second store's commit waits for the log's head (held here) in its
  // transaction; its session is ended under it.
  pqxx::connection holder{url};
  pqxx::work hold{holder};
  hold.exec("SELECT seq FROM tocsin_log_head FOR UPDATE");
  std::optional<result<std::uint64_t>> cut;
  std::thread committer{
      [&] { cut = (*second)->commit(one_event("ep"), durability::synced); }};
  BOOST_TEST_REQUIRE(within(std::chrono::seconds{10}, [&] {
    return !sessions("wait_event_type = 'Lock'").empty();
  }));
  auto second_session = sessions("wait_event_type = 'Lock'");
  BOOST_TEST(second_session != first_session);
  BOOST_TEST(second_session.find(" tocsin ") != std::string::npos);
  auto second_pid = second_session.substr(0, second_session.find(' '));
  BOOST_TEST(pg.psql("SELECT pg_terminate_backend(" + second_pid + ")",
                     "postgres") == "t\n");
  committer.join();
  hold.abort();
  BOOST_TEST_REQUIRE(cut.has_value());
  BOOST_TEST(!cut->ok());
  // It connects again (its own old session ended, if the server still had
  // it) and commits; the first store's session is the one it had.
  BOOST_TEST(within(std::chrono::seconds{10},
                    [&] { return (*second)->writable().ok(); }));
  auto again = (*second)->commit(one_event("ep"), durability::synced);
  BOOST_TEST_REQUIRE(again.ok(), (again.ok() ? "" : again.error().message));
  auto now = sessions("application_name LIKE 'tocsin %'");
  BOOST_TEST(now.find(first_session) != std::string::npos, now);
  BOOST_TEST((*first)->commit(one_event("ep"), durability::synced).ok());
}

BOOST_AUTO_TEST_CASE(retention_takes_its_turn_with_every_nodes_commits) {
  // A chunk of retention holds the log head as a commit does: a commit of
  // another node (here: the test's transaction holding the head) is never
  // interleaved with it, so a delivery it replays is not removed under it.
  auto url = test::fresh_database("store_retention_turn");
  store_options o;
  o.kind = backend::postgres;
  o.postgres_url = url;
  auto s = open_store(o);
  BOOST_TEST_REQUIRE(s.ok());
  pqxx::connection other{url};
  pqxx::work other_commit{other};
  other_commit.exec("UPDATE tocsin_log_head SET seq = seq");
  std::atomic<bool> done{false};
  std::thread retention{[&] {
    auto st = (*s)->expire(now_ms(), now_ms(), 100);
    BOOST_TEST(st.ok(), (st.ok() ? "" : st.error().message));
    done = true;
  }};
  auto& pg = test::cluster();
  BOOST_TEST(within(std::chrono::seconds{10}, [&] {
    return done || pg.psql("SELECT count(*) FROM pg_stat_activity WHERE "
                           "datname = 'store_retention_turn' AND "
                           "wait_event_type = 'Lock'",
                           "postgres") == "1\n";
  }));
  BOOST_TEST(!done.load(), "retention did not wait for the other commit");
  other_commit.commit();
  retention.join();
  BOOST_TEST(done.load());
}

BOOST_AUTO_TEST_CASE(
    a_commit_cut_short_is_resolved_and_the_rest_refused_meanwhile) {
  // A commit that waits for a synchronous standby which is gone, then the
  // primary crashes under it: its outcome is unknown to tocsin until the
  // database is back. Meanwhile other commits are refused at once.
  test::pg_cluster primary{
      test::pg_options{.settings = {"fsync=off"}, .replication = true}};
  primary.psql("CREATE DATABASE doubt", "postgres");
  store_options o;
  o.kind = backend::postgres;
  o.postgres_url = primary.url("doubt");
  auto opened = open_store(o);
  BOOST_TEST_REQUIRE(opened.ok());
  auto& s = **opened;
  {
    auto standby = primary.make_standby("standby1");
    primary.make_synchronous("standby1");
  } // the standby is stopped: every commit now waits for it
  std::optional<result<std::uint64_t>> cut_short;
  std::thread committer{
      [&] { cut_short = s.commit(one_event("ep"), durability::synced); }};
  // Its commit is in, waiting for the standby.
  BOOST_TEST(within(std::chrono::seconds{30}, [&] {
    return primary.psql("SELECT count(*) FROM pg_stat_activity WHERE "
                        "wait_event = 'SyncRep'",
                        "postgres") == "1\n";
  }));
  primary.stop("immediate");
  // Refused at once while the first waits for the database's word (it
  // would wait as long as the database is away).
  auto refused = s.commit(one_event("ep"), durability::synced);
  BOOST_TEST(!refused.ok());
  BOOST_TEST((refused.ok() ? "" : refused.error().code) == "store_unavailable");
  BOOST_TEST(!cut_short.has_value());
  // Back (its own copy only: the standby is gone for good). The commit
  // was on the primary's disk: it took.
  primary.start();
  committer.join();
  BOOST_TEST_REQUIRE(cut_short->ok(),
                     (cut_short->ok() ? "" : cut_short->error().message));
  auto page = s.line_of("ep", {}, 10, {});
  BOOST_TEST_REQUIRE(page.ok());
  BOOST_TEST(page->deliveries.size() == 1u);
}

BOOST_AUTO_TEST_CASE(a_newer_schema_is_refused_with_one_line) {
  auto url = test::fresh_database("store_newer");
  store_options o;
  o.kind = backend::postgres;
  o.postgres_url = url;
  BOOST_TEST_REQUIRE(open_store(o).ok());
  test::cluster().psql("UPDATE tocsin_schema SET version = version + 1",
                       "store_newer");
  auto again = open_store(o);
  BOOST_TEST_REQUIRE(!again.ok());
  BOOST_TEST(again.error().code == "schema_too_new");
  BOOST_TEST(again.error().message.find('\n') == std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
