// Nodes sharing one PostgreSQL store (storage/cluster.hpp), each with a
// store of its own on one database, against a real PostgreSQL: leases taken,
// renewed and released; a live holder's lease never taken and an expired one
// taken with the next epoch (time moves by moving the rows' times into the
// past: the database's clock is the only one); two nodes racing for the same
// leases never both win; a commit fenced by an old epoch refused alone, and a
// take waiting for the commit made under the epoch it ends; news of commits
// and releases heard by the other node, also after its listening connection
// was ended.
#include "storage/postgres/postgres_store.hpp"
#include "storage/postgres/store_impl.hpp"

#include "common/ids.hpp"
#include "tests/postgres/pg_fixture.hpp"

#include <boost/test/unit_test.hpp>

#include <pqxx/pqxx>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <latch>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

using namespace tocsin;
using namespace tocsin::storage;
using namespace std::chrono_literals;

namespace {

std::unique_ptr<store> open_on(const std::string& url) {
  store_options o;
  o.kind = backend::postgres;
  o.postgres_url = url;
  auto s = open_store(o);
  BOOST_TEST_REQUIRE(s.ok(), (s.ok() ? "" : s.error().message));
  BOOST_TEST_REQUIRE((*s)->cluster() != nullptr);
  return std::move(*s);
}

/// A database of its own and the stores of the nodes on it.
struct shared_db {
  std::string name;
  std::string url;

  explicit shared_db(std::string n)
      : name(std::move(n)), url(test::fresh_database(name)) {}

  std::unique_ptr<store> node() { return open_on(url); }

  std::string sql(const std::string& q) const {
    return test::cluster().psql(q, name);
  }
  /// Every lease (or those `where` says) expired a second ago, as if its
  /// holder had stopped renewing it.
  void expire_leases(const std::string& where = "true") const {
    sql("UPDATE tocsin_leases SET expires_at = now() - interval '1 second' "
        "WHERE expires_at IS NOT NULL AND " +
        where);
  }
  /// Node `id`'s last heartbeat a minute ago.
  void silence(const std::string& id) const {
    sql("UPDATE tocsin_nodes SET heartbeat_at = now() - interval '1 minute' "
        "WHERE id = '" +
        id + "'");
  }
  /// "node_id epoch" of lease `name` as stored ("" for none).
  std::string lease_row(const std::string& lease) const {
    return sql("SELECT coalesce(node_id, '-') || ' ' || epoch FROM "
               "tocsin_leases WHERE name = '" +
               lease + "'");
  }
  /// Sessions of this database waiting for a lock, running a statement
  /// that contains `what`.
  int waiting_for_lock(const std::string& what) const {
    return std::stoi(test::cluster().psql(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = '" + name +
            "' AND wait_event_type = 'Lock' AND query LIKE '%" + what + "%'",
        "postgres"));
  }
};

template <class T>
std::string why(const result<T>& r) {
  return r.ok() ? std::string{} : r.error().message;
}

membership beat(store& s, const std::string& node,
                std::vector<std::string> take = {},
                std::vector<std::string> release = {}) {
  heartbeat_request r;
  r.node = node;
  r.listen = node + ".internal:8080";
  r.ttl = 10s;
  r.take = std::move(take);
  r.release = std::move(release);
  auto m = s.cluster()->heartbeat(r);
  BOOST_TEST_REQUIRE(m.ok(), why(m));
  return std::move(*m);
}

const node_record* find_node(const membership& m, const std::string& id) {
  for (auto& n : m.nodes)
    if (n.id == id)
      return &n;
  return nullptr;
}

/// Calls `fn` until it returns true, at most for `limit`: for a state
/// another session reaches (a backend waiting for a lock).
template <class F>
bool within(std::chrono::seconds limit, F&& fn) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (fn())
      return true;
    std::this_thread::sleep_for(10ms); // a poll
  }
  return fn();
}

changes one_event(const std::string& id = new_id("evt")) {
  event_record e{id, R"({"type":"policy.denied"})", now_ms(), {}};
  changes c;
  c.event_accepted(e);
  return c;
}

/// What a store's listener heard, waited for with a deadline.
struct news_log {
  std::mutex mtx;
  std::condition_variable cv;
  std::vector<std::pair<cluster_news, std::uint64_t>> heard;

  std::function<void(cluster_news, std::uint64_t)> handler() {
    return [this](cluster_news n, std::uint64_t seq) {
      {
        std::lock_guard lock{mtx};
        heard.emplace_back(n, seq);
      }
      cv.notify_all();
    };
  }

  /// true once `news` (with `seq`, when given) was heard, within 10 s.
  bool wait_for(cluster_news news, std::optional<std::uint64_t> seq = {}) {
    std::unique_lock lock{mtx};
    return cv.wait_for(lock, 10s, [&] {
      return std::any_of(heard.begin(), heard.end(), [&](auto& h) {
        return h.first == news && (!seq || h.second == *seq);
      });
    });
  }
};

} // namespace

BOOST_AUTO_TEST_SUITE(cluster_store)

BOOST_AUTO_TEST_CASE(leases_are_taken_renewed_and_released) {
  shared_db db{"cluster_basic"};
  auto a = db.node();
  auto m = beat(*a, "a", {"ep_2", "ep_1", "ep_1"});
  BOOST_TEST((m.held ==
              std::vector<lease_grant>{{"ep_1", 1}, {"ep_2", 1}})); // in order
  BOOST_TEST_REQUIRE(m.nodes.size() == 1u);
  BOOST_TEST(m.nodes[0].id == "a");
  BOOST_TEST(m.nodes[0].listen == "a.internal:8080");
  BOOST_TEST(m.nodes[0].alive);
  BOOST_TEST((m.nodes[0].leases == std::vector<std::string>{"ep_1", "ep_2"}));
  BOOST_TEST(m.now > 0);
  BOOST_TEST(m.nodes[0].heartbeat_at <= m.now);

  // Renewed by every heartbeat, whether asked for or not: a lease about to
  // expire lasts the ttl again, at the same epoch.
  db.sql("UPDATE tocsin_leases SET expires_at = now() + interval '1 second'");
  m = beat(*a, "a");
  BOOST_TEST((m.held == std::vector<lease_grant>{{"ep_1", 1}, {"ep_2", 1}}));
  BOOST_TEST(db.sql("SELECT count(*) FROM tocsin_leases WHERE expires_at > "
                    "now() + interval '9 seconds'") == "2\n");

  // Released: free at the same epoch; taken again: the next one.
  m = beat(*a, "a", {}, {"ep_1"});
  BOOST_TEST((m.held == std::vector<lease_grant>{{"ep_2", 1}}));
  BOOST_TEST(db.lease_row("ep_1") == "- 1\n");
  m = beat(*a, "a", {"ep_1"});
  BOOST_TEST((m.held == std::vector<lease_grant>{{"ep_1", 2}, {"ep_2", 1}}));

  // The listing is what the heartbeat saw.
  auto listed = a->cluster()->nodes(10s);
  BOOST_TEST_REQUIRE(listed.ok());
  BOOST_TEST_REQUIRE(listed->size() == 1u);
  BOOST_TEST(((*listed)[0].leases == std::vector<std::string>{"ep_1", "ep_2"}));

  // Leaving gives everything up and takes the node off the list.
  BOOST_TEST(a->cluster()->leave("a").ok());
  BOOST_TEST(db.lease_row("ep_2") == "- 1\n");
  BOOST_TEST(a->cluster()->nodes(10s)->empty());
}

BOOST_AUTO_TEST_CASE(a_lease_a_live_node_holds_is_not_taken) {
  shared_db db{"cluster_live_holder"};
  auto a = db.node();
  auto b = db.node();
  beat(*a, "a", {"ep"});
  auto m = beat(*b, "b", {"ep", "other"});
  BOOST_TEST((m.held == std::vector<lease_grant>{{"other", 1}}));
  BOOST_TEST_REQUIRE(find_node(m, "a"));
  BOOST_TEST((find_node(m, "a")->leases == std::vector<std::string>{"ep"}));
  BOOST_TEST(db.lease_row("ep") == "a 1\n");
  // A node silent for longer than the ttl is listed as not alive, but its
  // unexpired lease is still its own.
  db.silence("a");
  m = beat(*b, "b", {"ep"});
  BOOST_TEST((m.held == std::vector<lease_grant>{{"other", 1}}));
  BOOST_TEST(!find_node(m, "a")->alive);
  BOOST_TEST(find_node(m, "b")->alive);
  BOOST_TEST(db.lease_row("ep") == "a 1\n");
}

BOOST_AUTO_TEST_CASE(an_expired_lease_is_taken_with_the_next_epoch) {
  shared_db db{"cluster_expired"};
  auto a = db.node();
  auto b = db.node();
  BOOST_TEST(
      (beat(*a, "a", {"ep"}).held == std::vector<lease_grant>{{"ep", 1}}));
  // a stops: its heartbeat and its lease age past the ttl.
  db.silence("a");
  db.expire_leases();
  auto listed = b->cluster()->nodes(10s);
  BOOST_TEST_REQUIRE(listed.ok());
  BOOST_TEST_REQUIRE(listed->size() == 1u);
  BOOST_TEST(!(*listed)[0].alive);
  BOOST_TEST((*listed)[0].leases.empty()); // expired: not listed
  auto m = beat(*b, "b", {"ep"});
  BOOST_TEST((m.held == std::vector<lease_grant>{{"ep", 2}}));
  BOOST_TEST(db.lease_row("ep") == "b 2\n");
  // a comes back: the lease is b's now, and stays so.
  m = beat(*a, "a", {"ep"});
  BOOST_TEST(m.held.empty());
  BOOST_TEST((find_node(m, "b")->leases == std::vector<std::string>{"ep"}));
  BOOST_TEST(db.lease_row("ep") == "b 2\n");
}

BOOST_AUTO_TEST_CASE(two_nodes_racing_for_the_same_leases_never_both_win) {
  shared_db db{"cluster_race"};
  auto a = db.node();
  auto b = db.node();
  std::vector<std::string> names;
  for (int i = 0; i < 50; ++i)
    names.push_back("ep_" + std::to_string(100 + i));
  auto reversed = names;
  std::reverse(reversed.begin(), reversed.end());
  for (std::uint64_t round = 1; round <= 6; ++round) {
    std::latch start{2};
    std::optional<result<membership>> got_a, got_b;
    auto race = [&](store& s, std::string node, std::vector<std::string> take,
                    std::optional<result<membership>>& out) {
      heartbeat_request r{node, "", 10s, std::move(take), {}};
      start.arrive_and_wait();
      out = s.cluster()->heartbeat(r);
    };
    std::thread ta{race, std::ref(*a), "a", names, std::ref(got_a)};
    std::thread tb{race, std::ref(*b), "b", reversed, std::ref(got_b)};
    ta.join();
    tb.join();
    BOOST_TEST_REQUIRE(got_a->ok(), why(*got_a));
    BOOST_TEST_REQUIRE(got_b->ok(), why(*got_b));
    // Each lease taken once in the round (the epoch), by one node, which
    // is the one its own heartbeat says holds it.
    std::set<std::string> held;
    for (auto* m : {&**got_a, &**got_b})
      for (auto& g : m->held) {
        BOOST_TEST(held.insert(g.name).second, g.name << " held twice");
        BOOST_TEST(g.epoch == round, g.name);
      }
    BOOST_TEST(held.size() == names.size());
    BOOST_TEST(db.sql("SELECT count(*) FROM tocsin_leases WHERE epoch = " +
                      std::to_string(round)) == "50\n");
    // Both leave: every lease free for the next round.
    BOOST_TEST_REQUIRE(a->cluster()->leave("a").ok());
    BOOST_TEST_REQUIRE(b->cluster()->leave("b").ok());
  }
}

BOOST_AUTO_TEST_CASE(a_set_fenced_by_an_old_epoch_is_refused_alone) {
  shared_db db{"cluster_fenced"};
  auto a = db.node();
  auto b = db.node();
  beat(*a, "a", {"ep", "ep_other"});
  db.expire_leases("name = 'ep'");
  BOOST_TEST(
      (beat(*b, "b", {"ep"}).held == std::vector<lease_grant>{{"ep", 2}}));

  // Three commits of a: the first holds the writer (the log head locked
  // by the test), the next two queue behind it and are written as one
  // group: one made under ep's old epoch, one under a lease a still holds.
  auto& writer = dynamic_cast<postgres::postgres_store&>(*a);
  pqxx::connection holder{db.url};
  pqxx::work hold{holder};
  hold.exec("SELECT seq FROM tocsin_log_head FOR UPDATE");
  std::optional<result<std::uint64_t>> first, stale, fresh;
  auto fenced_id = new_id("evt"), kept_id = new_id("evt");
  changes stale_set = one_event(fenced_id);
  stale_set.fence("ep", 1);
  changes fresh_set = one_event(kept_id);
  fresh_set.fence("ep_other", 1);
  std::thread t0{[&] { first = a->commit(one_event(), durability::synced); }};
  BOOST_TEST_REQUIRE(
      within(10s, [&] { return db.waiting_for_lock("tocsin_log_head") == 1; }));
  std::thread t1{[&] { stale = a->commit(stale_set, durability::synced); }};
  BOOST_TEST_REQUIRE(within(10s, [&] { return writer.queued() == 2; }));
  std::thread t2{[&] { fresh = a->commit(fresh_set, durability::synced); }};
  BOOST_TEST_REQUIRE(within(10s, [&] { return writer.queued() == 3; }));
  hold.abort();
  t0.join();
  t1.join();
  t2.join();

  BOOST_TEST_REQUIRE(first->ok());
  BOOST_TEST_REQUIRE(!stale->ok());
  BOOST_TEST(stale->error().code == "fenced");
  BOOST_TEST(stale->error().message.find("ep") != std::string::npos);
  BOOST_TEST(stale->error().message.find("epoch 2") != std::string::npos,
             stale->error().message);
  BOOST_TEST(stale->error().message.find("epoch 1") != std::string::npos,
             stale->error().message);
  BOOST_TEST_REQUIRE(fresh->ok(), why(*fresh));
  // Nothing of the fenced set is stored; the log has no gap where its
  // record would have been.
  BOOST_TEST(!a->get_event(fenced_id)->has_value());
  BOOST_TEST(a->get_event(kept_id)->has_value());
  BOOST_TEST(**fresh == 2u);
  BOOST_TEST(a->last_sequence() == 2u);
  std::vector<std::uint64_t> seqs;
  BOOST_TEST(a->read_log(1, [&](std::uint64_t seq, std::string_view) {
                seqs.push_back(seq);
                return true;
              }).ok());
  BOOST_TEST((seqs == std::vector<std::uint64_t>{1, 2}));
  // Not a lost connection: the store goes on writing.
  BOOST_TEST(a->writable().ok());
  BOOST_TEST(a->commit(one_event(), durability::synced).ok());
}

BOOST_AUTO_TEST_CASE(a_take_waits_for_the_commit_made_under_the_epoch_it_ends) {
  shared_db db{"cluster_fence_order"};
  auto a = db.node();
  auto b = db.node();
  beat(*a, "a", {"ep"});
  auto id = new_id("evt");
  BOOST_TEST_REQUIRE(a->commit(one_event(id), durability::synced).ok());
  // a's lease expires while a commits under it: the commit has read epoch
  // 1 (and holds the lease's row) and waits for the event's row, which the
  // test holds.
  db.expire_leases();
  pqxx::connection holder{db.url};
  pqxx::work hold{holder};
  hold.exec_params("SELECT 1 FROM tocsin_events WHERE id = $1 FOR UPDATE", id);
  event_record changed{id, R"({"type":"policy.denied","v":2})", now_ms(), {}};
  changes under_lease;
  under_lease.event_changed(changed, record_kind::event_acknowledged, "{}");
  under_lease.fence("ep", 1);
  std::optional<result<std::uint64_t>> committed;
  std::thread commit{
      [&] { committed = a->commit(under_lease, durability::synced); }};
  BOOST_TEST_REQUIRE(
      within(10s, [&] { return db.waiting_for_lock("tocsin_events") == 1; }));
  // b takes the lease meanwhile: it waits until the commit is done.
  std::atomic<bool> taken{false};
  std::optional<membership> took;
  std::thread take{[&] {
    took = beat(*b, "b", {"ep"});
    taken = true;
  }};
  BOOST_TEST(within(
      10s, [&] { return taken || db.waiting_for_lock("tocsin_leases") == 1; }));
  BOOST_TEST(!taken.load(), "the take did not wait for the commit");
  BOOST_TEST(!committed.has_value());
  hold.abort();
  commit.join();
  take.join();
  BOOST_TEST_REQUIRE(committed->ok(), why(*committed));
  BOOST_TEST((took->held == std::vector<lease_grant>{{"ep", 2}}));
  // The take came after the commit: what was committed under epoch 1 is
  // there, and a's next write under it is refused.
  BOOST_TEST((*a->get_event(id))->body == changed.body);
  changes late;
  late.event_changed(changed, record_kind::event_resolved, "{}");
  late.fence("ep", 1);
  auto refused = a->commit(late, durability::synced);
  BOOST_TEST_REQUIRE(!refused.ok());
  BOOST_TEST(refused.error().code == "fenced");
}

BOOST_AUTO_TEST_CASE(a_commit_and_a_release_are_heard_by_the_other_node) {
  shared_db db{"cluster_news"};
  news_log heard;
  auto a = db.node();
  auto b = db.node();
  b->cluster()->listen(heard.handler());
  BOOST_TEST(b->last_sequence() == 0u);
  auto seq = a->commit(one_event(), durability::synced);
  BOOST_TEST_REQUIRE(seq.ok());
  BOOST_TEST(heard.wait_for(cluster_news::log_advanced, *seq));
  // b's idea of the log's end follows a's commits.
  BOOST_TEST(b->last_sequence() == *seq);
  beat(*a, "a", {"ep"});
  BOOST_TEST(a->cluster()->leave("a").ok());
  BOOST_TEST(heard.wait_for(cluster_news::leases_released, 0));
  std::lock_guard lock{heard.mtx};
  BOOST_TEST(heard.heard.size() == 2u); // nothing else
}

BOOST_AUTO_TEST_CASE(a_release_by_heartbeat_is_heard) {
  shared_db db{"cluster_release_news"};
  news_log heard;
  auto a = db.node();
  auto b = db.node();
  b->cluster()->listen(heard.handler());
  beat(*a, "a", {"ep"});
  beat(*a, "a", {}, {"ep"});
  BOOST_TEST(heard.wait_for(cluster_news::leases_released, 0));
}

BOOST_AUTO_TEST_CASE(the_listener_comes_back_after_its_connection_is_ended) {
  shared_db db{"cluster_news_again"};
  news_log heard;
  auto a = db.node();
  auto b = db.node();
  b->cluster()->listen(heard.handler());
  BOOST_TEST_REQUIRE(a->commit(one_event(), durability::synced).ok());
  BOOST_TEST_REQUIRE(heard.wait_for(cluster_news::log_advanced, 1));
  BOOST_TEST(db.sql("SELECT count(pg_terminate_backend(pid)) FROM "
                    "pg_stat_activity WHERE datname = current_database() AND "
                    "application_name LIKE 'tocsin % news'") == "1\n");
  // Back by itself, and told to look (news may have been missed), with
  // the log's end as it is.
  BOOST_TEST_REQUIRE(heard.wait_for(cluster_news::reconnected, 1));
  BOOST_TEST_REQUIRE(a->commit(one_event(), durability::synced).ok());
  BOOST_TEST(heard.wait_for(cluster_news::log_advanced, 2));
  BOOST_TEST(b->last_sequence() == 2u);
}

BOOST_AUTO_TEST_SUITE_END()
