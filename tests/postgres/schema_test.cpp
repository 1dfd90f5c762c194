// The PostgreSQL store's schema against a real PostgreSQL: created once in
// an empty database, left alone when current, created once when several
// nodes start at once (the advisory lock), an older one brought forward
// with its rows, and a newer one refused untouched.
#include "storage/postgres/schema.hpp"

#include "tests/postgres/pg_fixture.hpp"

#include <boost/test/unit_test.hpp>

#include <pqxx/pqxx>

#include <thread>
#include <vector>

using namespace tocsin;
using namespace tocsin::storage;

BOOST_AUTO_TEST_SUITE(postgres_schema)

BOOST_AUTO_TEST_CASE(created_once_then_left_alone) {
  auto db = test::fresh_database("schema_once");
  pqxx::connection c{db};
  BOOST_TEST(*postgres::stored_schema_version(c) == 0);
  auto st = postgres::migrate(c);
  BOOST_TEST_REQUIRE(st.ok(), (st.ok() ? "" : st.error().message));
  BOOST_TEST(*postgres::stored_schema_version(c) == postgres::schema_version);
  {
    pqxx::work w{c};
    w.exec0("INSERT INTO tocsin_endpoints VALUES ('ep', '{}')");
    w.commit();
  }
  BOOST_TEST(postgres::migrate(c).ok());
  pqxx::read_transaction r{c};
  BOOST_TEST(r.exec1("SELECT count(*) FROM tocsin_endpoints")[0].as<int>() ==
             1);
  BOOST_TEST(r.exec1("SELECT seq FROM tocsin_log_head")[0].as<long>() == 0);
}

BOOST_AUTO_TEST_CASE(nodes_starting_at_once_create_it_once) {
  auto db = test::fresh_database("schema_race");
  std::vector<std::thread> nodes;
  std::vector<std::string> errors(4);
  for (std::size_t i = 0; i < errors.size(); ++i)
    nodes.emplace_back([&, i] {
      try {
        pqxx::connection c{db};
        if (auto st = postgres::migrate(c); !st)
          errors[i] = st.error().message;
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
    });
  for (auto& t : nodes)
    t.join();
  for (auto& e : errors)
    BOOST_TEST(e.empty(), e);
  pqxx::connection c{db};
  pqxx::read_transaction r{c};
  BOOST_TEST(r.exec1("SELECT count(*) FROM tocsin_schema")[0].as<int>() == 1);
  BOOST_TEST(r.exec1("SELECT count(*) FROM tocsin_log_head")[0].as<int>() == 1);
}

BOOST_AUTO_TEST_CASE(a_newer_schema_is_refused_untouched) {
  auto db = test::fresh_database("schema_newer");
  pqxx::connection c{db};
  BOOST_REQUIRE(postgres::migrate(c).ok());
  {
    pqxx::work w{c};
    w.exec0("UPDATE tocsin_schema SET version = " +
            std::to_string(postgres::schema_version + 1));
    w.commit();
  }
  auto st = postgres::migrate(c);
  BOOST_REQUIRE(!st.ok());
  BOOST_TEST(st.error().code == "schema_too_new");
  BOOST_TEST(st.error().message.find("schema version " +
                                     std::to_string(postgres::schema_version +
                                                    1)) != std::string::npos,
             st.error().message);
  BOOST_TEST(*postgres::stored_schema_version(c) ==
             postgres::schema_version + 1);
  // The lock was let go: another start is refused the same way, at once.
  pqxx::connection other{db};
  BOOST_TEST(postgres::migrate(other).error().code == "schema_too_new");
}

BOOST_AUTO_TEST_CASE(a_version_1_store_is_brought_forward_keeping_its_rows) {
  // A store as version 1 left it: without the cluster's tables.
  auto db = test::fresh_database("schema_v1");
  pqxx::connection c{db};
  BOOST_REQUIRE(postgres::migrate(c).ok());
  {
    pqxx::work w{c};
    w.exec0("DROP TABLE tocsin_nodes, tocsin_leases");
    w.exec0("UPDATE tocsin_schema SET version = 1");
    w.exec0("INSERT INTO tocsin_endpoints VALUES ('ep', '{}')");
    w.exec0("UPDATE tocsin_log_head SET seq = 7");
    w.commit();
  }
  BOOST_REQUIRE(*postgres::stored_schema_version(c) == 1);
  auto st = postgres::migrate(c);
  BOOST_TEST_REQUIRE(st.ok(), (st.ok() ? "" : st.error().message));
  BOOST_TEST(*postgres::stored_schema_version(c) == 2);
  pqxx::read_transaction r{c};
  BOOST_TEST(r.exec1("SELECT count(*) FROM tocsin_schema")[0].as<int>() == 1);
  BOOST_TEST(r.exec1("SELECT count(*) FROM tocsin_endpoints")[0].as<int>() ==
             1);
  BOOST_TEST(r.exec1("SELECT seq FROM tocsin_log_head")[0].as<long>() == 7);
  BOOST_TEST(r.exec1("SELECT count(*) FROM tocsin_nodes")[0].as<int>() == 0);
  BOOST_TEST(r.exec1("SELECT count(*) FROM tocsin_leases")[0].as<int>() == 0);
}

BOOST_AUTO_TEST_CASE(an_unreachable_database_is_store_unavailable) {
  auto db = test::fresh_database("schema_gone");
  pqxx::connection c{db};
  test::cluster().stop("immediate");
  auto st = postgres::migrate(c);
  test::cluster().start();
  BOOST_REQUIRE(!st.ok());
  BOOST_TEST(st.error().code == "store_unavailable");
}

BOOST_AUTO_TEST_SUITE_END()
