// The PostgreSQL store's log against a real PostgreSQL: sequence numbers in
// commit order with no gaps, so that a reader tailing by sequence while two
// connections commit concurrently never skips a record committed late;
// an aborted transaction leaves no gap; what is written reads back byte for
// byte.
#include "storage/postgres/log_table.hpp"
#include "storage/postgres/schema.hpp"

#include "tests/postgres/pg_fixture.hpp"

#include <boost/test/unit_test.hpp>

#include <pqxx/pqxx>

#include <atomic>
#include <random>
#include <thread>

using namespace tocsin;
using namespace tocsin::storage::postgres;

namespace {

std::string migrated(const std::string& name) {
  auto db = test::fresh_database(name);
  pqxx::connection c{db};
  prepare_log(c);
  auto st = migrate(c);
  BOOST_TEST_REQUIRE(st.ok(), (st.ok() ? "" : st.error().message));
  return db;
}

} // namespace

BOOST_AUTO_TEST_SUITE(postgres_log)

BOOST_AUTO_TEST_CASE(records_read_back_as_written_and_aborts_leave_no_gap) {
  auto db = migrated("log_basic");
  pqxx::connection c{db};
  prepare_log(c);
  std::string binary{"\0\x01\xff{\"a\":\"\\\"}", 11};
  {
    pqxx::work t{c};
    BOOST_TEST(append_log(t, {{1, 3, binary}, {2, 4, ""}}) == 2u);
    t.commit();
  }
  {
    pqxx::work t{c};
    BOOST_TEST(append_log(t, {{3, 5, "lost"}}) == 3u);
    t.abort(); // its number is given back
  }
  {
    pqxx::work t{c};
    BOOST_TEST(append_log(t, {{4, 6, "kept"}}) == 3u);
    BOOST_TEST(append_log(t, {}) == 0u);
    t.commit();
  }
  pqxx::read_transaction r{c};
  auto all = read_log(r, 0, 10);
  BOOST_REQUIRE_EQUAL(all.size(), 3u);
  BOOST_TEST(all[0].seq == 1u);
  BOOST_TEST(all[0].entry.fields == binary);
  BOOST_TEST(all[0].entry.kind == 3);
  BOOST_TEST(all[1].entry.fields.empty());
  BOOST_TEST(all[2].seq == 3u);
  BOOST_TEST(all[2].entry.fields == "kept");
  BOOST_TEST(read_log(r, 1, 1).at(0).seq == 2u);
}

BOOST_AUTO_TEST_CASE(a_tailing_reader_never_skips_a_record_committed_late) {
  auto db = migrated("log_order");
  constexpr int per_writer = 150;
  std::atomic<bool> writing{true};
  std::atomic<int> failures{0};
  auto writer = [&](unsigned seed) {
    try {
      pqxx::connection c{db};
      prepare_log(c);
      std::mt19937 rng{seed};
      for (int i = 0; i < per_writer; ++i) {
        pqxx::work t{c};
        std::vector<log_entry> batch(1 + rng() % 4, log_entry{1, 1, "x"});
        append_log(t, batch);
        // Work between taking numbers and committing: where a sequence
        // that is not held to commit would let a later writer overtake.
        if (rng() % 2)
          t.exec("SELECT pg_sleep(0.001)");
        t.commit();
      }
    } catch (const std::exception&) {
      ++failures;
    }
  };
  std::vector<std::uint64_t> seen;
  std::thread reader{[&] {
    try {
      pqxx::connection c{db};
      prepare_log(c);
      std::uint64_t last = 0;
      for (bool more = true; more;) {
        more = writing.load();
        pqxx::read_transaction r{c};
        for (auto& e : read_log(r, last, 1000)) {
          seen.push_back(e.seq);
          last = e.seq;
        }
      }
    } catch (const std::exception&) {
      ++failures;
    }
  }};
  std::thread a{writer, 1u}, b{writer, 2u};
  a.join();
  b.join();
  writing = false;
  reader.join();
  BOOST_TEST(failures.load() == 0);
  pqxx::connection c{db};
  prepare_log(c);
  pqxx::read_transaction r{c};
  auto total = r.exec1(
      "SELECT sum(last_seq - first_seq + 1), max(last_seq) FROM tocsin_log");
  BOOST_TEST(total[0].as<std::size_t>() == total[1].as<std::size_t>());
  // Everything committed was seen by the tail, each number once, in order.
  BOOST_REQUIRE_EQUAL(seen.size(), total[0].as<std::size_t>());
  for (std::size_t i = 0; i < seen.size(); ++i)
    BOOST_TEST_REQUIRE(seen[i] == i + 1);
}

BOOST_AUTO_TEST_SUITE_END()
