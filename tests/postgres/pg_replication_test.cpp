// The test cluster's replication (tests/support/pg_cluster), as the store's
// failover tests use it: a synchronous standby has every commit the primary
// answered when the primary crashes, a promoted standby takes writes, and a
// libpq URL naming both servers with target_session_attrs=read-write finds
// whichever is the primary. Each test crashes its primary, so each has its
// own pair (about 2 s to start both).
#include "tests/support/pg_cluster.hpp"

#include <boost/test/unit_test.hpp>

#include <pqxx/pqxx>

#include <string>
#include <utility>

using namespace tocsin::test;

namespace {

/// fsync off: the tests crash PostgreSQL's processes, never the machine,
/// and what they wrote stays in the kernel's cache (their fsyncs made
/// starting a standby take several seconds on a busy VM).
struct pair_of_servers {
  pg_cluster primary{
      pg_options{.settings = {"fsync=off"}, .replication = true}};
  std::unique_ptr<pg_cluster> standby = primary.make_standby("standby1");
};

void require_postgres() {
  BOOST_TEST_REQUIRE(postgres_installed(),
                     "PostgreSQL 15 is not installed: apt-get install "
                     "postgresql (scripts/install-deps.sh --test)");
}

/// Port of the server a connection landed on, and whether it is a standby.
std::pair<int, bool> where(pqxx::connection& c) {
  pqxx::nontransaction n{c};
  auto row = n.exec1("SELECT inet_server_port(), pg_is_in_recovery()");
  return {row[0].as<int>(), row[1].as<bool>()};
}

} // namespace

BOOST_AUTO_TEST_SUITE(pg_replication)

BOOST_AUTO_TEST_CASE(
    a_commit_with_a_sync_standby_is_on_it_after_the_primary_crashes) {
  require_postgres();
  pair_of_servers s;
  BOOST_TEST(s.primary.replication_state("standby1") == "streaming|async");
  s.primary.make_synchronous("standby1");
  BOOST_TEST(s.primary.replication_state("standby1") == "streaming|sync");
  BOOST_TEST(s.standby->in_recovery());

  // Commit after commit, the primary crashed right after the last one was
  // answered: each was flushed on the standby before it was answered.
  constexpr int commits = 300;
  {
    pqxx::connection c{s.primary.url()};
    pqxx::nontransaction{c}.exec0("CREATE TABLE t (v int PRIMARY KEY)");
    for (int i = 1; i <= commits; ++i) {
      pqxx::work w{c};
      w.exec0("INSERT INTO t VALUES (" + std::to_string(i) + ")");
      w.commit();
    }
  }
  s.primary.stop("immediate");
  s.standby->promote();
  BOOST_TEST(!s.standby->in_recovery());
  BOOST_TEST(s.standby->psql("SELECT count(*), max(v) FROM t") ==
             std::to_string(commits) + "|" + std::to_string(commits) + "\n");
  // It takes writes now, and does not wait for a standby of its own.
  s.standby->psql("INSERT INTO t VALUES (0)");
  BOOST_TEST(s.standby->psql("SELECT count(*) FROM t") ==
             std::to_string(commits + 1) + "\n");
}

BOOST_AUTO_TEST_CASE(a_two_host_read_write_url_follows_the_promotion) {
  require_postgres();
  pair_of_servers s;
  s.primary.make_synchronous("standby1");
  auto url = read_write_url({&s.primary, s.standby.get()});
  BOOST_TEST_MESSAGE(url);
  BOOST_TEST(url.find("target_session_attrs=read-write") != std::string::npos);
  {
    pqxx::connection c{url};
    BOOST_TEST((where(c) == std::pair{int{s.primary.port()}, false}));
  }
  // The standby alone is left, and it does not take writes: no connection.
  s.primary.stop("immediate");
  BOOST_CHECK_THROW(pqxx::connection{url}, pqxx::broken_connection);
  s.standby->promote();
  pqxx::connection c{url};
  BOOST_TEST((where(c) == std::pair{int{s.standby->port()}, false}));
  pqxx::nontransaction{c}.exec0("CREATE TABLE after_failover (v int)");
}

BOOST_AUTO_TEST_SUITE_END()
