// The throwaway PostgreSQL the storage tests run against
// (tests/support/pg_cluster): it starts as the postgres user, takes
// connections over TCP with libpqxx, survives a crash and a restart with its
// data, as the failover and restart tests need it to.
#include "tests/support/pg_cluster.hpp"

#include <boost/test/unit_test.hpp>

#include <pqxx/pqxx>

using namespace tocsin::test;

BOOST_AUTO_TEST_SUITE(pg_cluster)

BOOST_AUTO_TEST_CASE(starts_takes_connections_and_keeps_data_across_a_crash) {
  BOOST_TEST_REQUIRE(postgres_installed(),
                     "PostgreSQL 15 is not installed: apt-get install "
                     "postgresql (scripts/install-deps.sh --test)");
  tocsin::test::pg_cluster pg; // its own: this test crashes it
  {
    pqxx::connection c{pg.url()};
    pqxx::work w{c};
    w.exec0("CREATE TABLE t (v int)");
    w.exec0("INSERT INTO t VALUES (42)");
    w.commit();
  }
  pg.stop("immediate"); // a crash: committed data survives it
  BOOST_CHECK_THROW(pqxx::connection{pg.url()}, pqxx::broken_connection);
  pg.start();
  pqxx::connection c{pg.url()};
  pqxx::work w{c};
  BOOST_TEST(w.exec1("SELECT v FROM t")[0].as<int>() == 42);
  BOOST_TEST(pg.psql("SELECT count(*) FROM t") == "1\n");
}

BOOST_AUTO_TEST_SUITE_END()
