// The RocksDB store's own cases: what its on-disk layout does (migrations
// of older layouts, index entries and range deletions, table files), the
// lock on its directory, and a failing disk. What every backend must do is
// the contract suite (tests/storage/store_contract.cpp, in postgres_tests),
// which runs against this store as well.
#include "storage/store.hpp"

#include "tests/storage/store_contract.hpp"
#include "tests/support/temp_dir.hpp"

#include <boost/test/unit_test.hpp>

#include <rocksdb/db.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace tocsin;
using namespace tocsin::storage;
using namespace tocsin::test::store_helpers;

namespace {

/// Opens a closed store with RocksDB itself and calls `fn` with each column
/// family: to make it look as an older version wrote it.
void rewrite_store(
    const std::filesystem::path& dir,
    const std::function<void(rocksdb::DB&, rocksdb::ColumnFamilyHandle*)>& fn,
    const rocksdb::ColumnFamilyOptions& cf_opts = {}) {
  rocksdb::DBOptions opts;
  std::vector<std::string> names;
  BOOST_REQUIRE(
      rocksdb::DB::ListColumnFamilies(opts, dir.string(), &names).ok());
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (auto& n : names)
    descriptors.emplace_back(n, cf_opts);
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  BOOST_REQUIRE(
      rocksdb::DB::Open(opts, dir.string(), descriptors, &handles, &raw).ok());
  for (auto* h : handles) {
    fn(*raw, h);
    BOOST_REQUIRE(raw->DestroyColumnFamilyHandle(h).ok());
  }
  BOOST_REQUIRE(raw->Close().ok());
  delete raw;
}

/// Compacts the log and the events of a closed store by level, as tocsin did
/// until 2026-11-28, into tables of about `table_bytes` in L1.
void compact_by_level(const std::filesystem::path& dir,
                      std::uint64_t table_bytes = 64 << 20) {
  rocksdb::ColumnFamilyOptions opts;
  opts.target_file_size_base = table_bytes;
  rewrite_store(
      dir,
      [](rocksdb::DB& db, rocksdb::ColumnFamilyHandle* h) {
        if (h->GetName() != "log" && h->GetName() != "events")
          return;
        rocksdb::CompactRangeOptions o;
        o.change_level = true;
        o.target_level = 1;
        o.bottommost_level_compaction =
            rocksdb::BottommostLevelCompaction::kForce; // rewritten, not moved
        BOOST_REQUIRE(db.CompactRange(o, h, nullptr, nullptr).ok());
        rocksdb::ColumnFamilyMetaData meta;
        db.GetColumnFamilyMetaData(h, &meta);
        BOOST_REQUIRE(meta.levels.size() > 1);
        BOOST_TEST(meta.levels[0].files.empty());
        BOOST_TEST(meta.levels[1].files.size() == meta.file_count);
      },
      opts);
}

/// Calls `fn` with one column family of a closed store.
void with_column_family(
    const std::filesystem::path& dir, const std::string& cf,
    const std::function<void(rocksdb::DB&, rocksdb::ColumnFamilyHandle*)>& fn) {
  rewrite_store(dir, [&](rocksdb::DB& db, rocksdb::ColumnFamilyHandle* h) {
    if (h->GetName() == cf)
      fn(db, h);
  });
}

/// How many tables a column family of a closed store has.
std::size_t table_files_of(const std::filesystem::path& dir,
                           const std::string& cf) {
  std::size_t n = 0;
  with_column_family(dir, cf, [&](auto& db, auto* h) {
    rocksdb::ColumnFamilyMetaData meta;
    db.GetColumnFamilyMetaData(h, &meta);
    n = meta.file_count;
  });
  return n;
}

std::size_t log_tables(const std::filesystem::path& dir) {
  return table_files_of(dir, "log");
}

/// How many live keys a column family of a closed store has.
std::size_t entries_of(const std::filesystem::path& dir,
                       const std::string& cf) {
  std::size_t n = 0;
  with_column_family(dir, cf, [&](auto& db, auto* h) {
    std::unique_ptr<rocksdb::Iterator> it{db.NewIterator({}, h)};
    for (it->SeekToFirst(); it->Valid(); it->Next())
      ++n;
    BOOST_REQUIRE(it->status().ok());
  });
  return n;
}

void drop_column_families(const std::filesystem::path& dir,
                          const std::set<std::string>& drop) {
  rewrite_store(dir, [&](rocksdb::DB& db, rocksdb::ColumnFamilyHandle* h) {
    if (drop.count(h->GetName()))
      BOOST_REQUIRE(db.DropColumnFamily(h).ok());
  });
}

} // namespace

BOOST_AUTO_TEST_SUITE(rocksdb_store)

// Index entries go with SingleDelete, which is only right for a key written
// once between deletions: a delivery that comes and goes from the indexes
// many times (retries at new times, a dead letter replayed), across a flush
// of what is in memory (a reopen) and a full compaction, leaves no entry.
BOOST_AUTO_TEST_CASE(index_entries_come_and_go_without_leftovers) {
  test::temp_dir dir;
  auto d = make_delivery("dlv_a", "evt_1");
  auto step = [&](storage::store& log, record_kind kind,
                  std::optional<standing> was) {
    changes ws;
    ws.delivery_changed(d, kind, was);
    BOOST_REQUIRE(log.commit(ws, durability::buffered).ok());
  };
  auto pending_count = [](storage::store& log) {
    auto b = log.backlog_of("ep");
    BOOST_REQUIRE(b.ok());
    return b->pending;
  };
  {
    auto log = open_store({dir.path().string()});
    BOOST_REQUIRE(log);
    step(**log, record_kind::delivery_created, std::nullopt);
    for (unix_ms due : {2000, 3000, 4000}) { // retries, each at a new time
      auto was = standing_of(d);
      d.next_attempt_at = due;
      step(**log, record_kind::delivery_retry_scheduled, was);
      BOOST_TEST(pending_ids(**log) == std::vector<std::string>{"dlv_a"});
    }
  }
  // Reopened: what was in memory is now in a table file, below the
  // deletions to come.
  auto log = open_store({dir.path().string()});
  BOOST_REQUIRE(log);
  auto was = standing_of(d);
  d.next_attempt_at = 4500; // one more retry, in memory over the file
  step(**log, record_kind::delivery_retry_scheduled, was);
  BOOST_TEST(pending_count(**log) == 1u);
  was = standing_of(d);
  d.state = delivery_state::dead_lettered;
  d.finished_at = 5000;
  step(**log, record_kind::delivery_dead_lettered, was);
  BOOST_TEST(pending_ids(**log).empty());
  BOOST_TEST(pending_count(**log) == 0u);
  d.state = delivery_state::pending; // replayed: indexed again
  d.next_attempt_at = 6000;
  step(**log, record_kind::delivery_replayed, std::nullopt);
  BOOST_TEST(pending_ids(**log) == std::vector<std::string>{"dlv_a"});
  BOOST_TEST(pending_count(**log) == 1u);
  was = standing_of(d);
  d.state = delivery_state::delivered;
  d.finished_at = 7000;
  step(**log, record_kind::delivery_delivered, was);
  BOOST_TEST(pending_ids(**log).empty());
  BOOST_TEST(pending_count(**log) == 0u);
  log->reset();
  // Compacted to the last level: no entry of either index is left, and no
  // older one came back.
  std::size_t entries = 0;
  rewrite_store(dir.path(),
                [&](rocksdb::DB& db, rocksdb::ColumnFamilyHandle* h) {
                  BOOST_REQUIRE(db.CompactRange({}, h, nullptr, nullptr).ok());
                  if (h->GetName() != "pending" && h->GetName() != "due")
                    return;
                  std::unique_ptr<rocksdb::Iterator> it{db.NewIterator({}, h)};
                  for (it->SeekToFirst(); it->Valid(); it->Next())
                    ++entries;
                });
  BOOST_TEST(entries == 0u);
  log = open_store({dir.path().string()});
  BOOST_REQUIRE(log);
  BOOST_TEST(pending_ids(**log).empty());
  BOOST_TEST(pending_count(**log) == 0u);
}

BOOST_AUTO_TEST_CASE(a_second_opener_is_refused_with_store_locked) {
  test::temp_dir dir;
  auto first = open_store({dir.path().string()});
  BOOST_REQUIRE(first);
  auto second = open_store({dir.path().string()});
  BOOST_REQUIRE(!second);
  BOOST_TEST(second.error().code == "store_locked");
}

BOOST_AUTO_TEST_CASE(a_failed_sync_fails_what_it_covered_and_stops_writes) {
  // Commits are written first and synced after: a sync that fails fails
  // the commit waiting for it, and the store refuses every write and any
  // synced answer (an idempotency key's replay) from then on.
  // The store then says it cannot go on (failed(), on_failure once), for
  // the daemon to exit and be started again.
  test::temp_dir dir;
  std::atomic<bool> failing{false};
  std::vector<std::string> told; // on_failure's calls
  store_options opts{dir.path().string()};
  opts.fail_log_sync = [&] { return failing.load(); };
  opts.on_failure = [&](const std::string& why) { told.push_back(why); };
  auto opened = open_store(opts);
  BOOST_REQUIRE(opened);
  auto& log = **opened;
  auto one = [](const std::string& id) {
    changes ws;
    ws.delivery_created(make_delivery(id, "evt_1"));
    return ws;
  };
  BOOST_REQUIRE(log.commit(one("dlv_1"), durability::synced));
  BOOST_TEST(!log.failed());
  failing = true;
  auto failed = log.commit(one("dlv_2"), durability::synced);
  BOOST_REQUIRE(!failed);
  BOOST_TEST(failed.error().message.find("sync") != std::string::npos,
             failed.error().message);
  BOOST_TEST(!log.commit(one("dlv_3"), durability::buffered).ok());
  BOOST_TEST(!log.commit(changes{}, durability::synced).ok());
  BOOST_TEST(!log.writable().ok());
  auto why = log.failed();
  BOOST_REQUIRE(why);
  BOOST_TEST(why->find("sync") != std::string::npos, *why);
  BOOST_REQUIRE(told.size() == 1u);
  BOOST_TEST(told[0] == *why);
  BOOST_TEST(log.writable().error().message.find(*why) != std::string::npos);
  failing = false;
  // RocksDB 7.8 does not resume after a failed sync of its write-ahead log
  // (the log's writer keeps the error): the store refuses writes until it
  // is opened again, as when the daemon restarts.
  std::this_thread::sleep_for(std::chrono::milliseconds{1100});
  BOOST_TEST(!log.writable().ok());
  BOOST_TEST(!log.commit(one("dlv_5"), durability::synced).ok());
  BOOST_TEST(told.size() == 1u);
  opened->reset();
  auto again = open_store(opts);
  BOOST_REQUIRE(again);
  BOOST_TEST(!(*again)->failed());
  // What was written before the sync failed reached the operating system:
  // it is there (answered 503, and still delivered — hence idempotency
  // keys for resends).
  auto kept = (*again)->get_delivery("dlv_2");
  BOOST_REQUIRE(kept);
  BOOST_TEST(kept->has_value());
  BOOST_TEST((*again)->commit(one("dlv_4"), durability::synced).ok());
  BOOST_TEST((*again)->commit(changes{}, durability::synced).ok());
}

BOOST_AUTO_TEST_CASE(a_store_from_before_the_endpoint_index_gets_one) {
  test::temp_dir dir;
  {
    auto log = open_store({dir.path().string()});
    BOOST_REQUIRE(log);
    changes ws;
    for (auto [id, ep, at] :
         {std::tuple{"dlv_1", "a", 3000}, std::tuple{"dlv_2", "a", 1000},
          std::tuple{"dlv_3", "b", 2000}}) {
      auto d = make_delivery(id, "evt");
      d.endpoint_id = ep;
      d.state = delivery_state::dead_lettered;
      d.finished_at = at;
      ws.delivery_changed(d, record_kind::delivery_dead_lettered);
    }
    BOOST_REQUIRE((*log)->commit(ws, durability::synced).ok());
  }
  // Take the index away, as a store of an older version never had it.
  drop_column_families(dir.path(), {"dead_by_endpoint"});
  auto log = open_store({dir.path().string()});
  BOOST_REQUIRE(log);
  auto a = (*log)->list_dead_letters_of("a", 0, 10);
  BOOST_REQUIRE(a);
  BOOST_REQUIRE(a->size() == 2u);
  BOOST_TEST((*a)[0].id == "dlv_2");
  BOOST_TEST((*a)[1].id == "dlv_1");
  BOOST_TEST((*log)->list_dead_letters_of("b", 0, 10)->size() == 1u);
}

BOOST_AUTO_TEST_CASE(a_store_from_before_the_per_endpoint_indexes_is_migrated) {
  test::temp_dir dir;
  {
    auto log = open_store({dir.path().string()});
    BOOST_REQUIRE(log);
    changes ws;
    for (auto [id, due] :
         {std::pair{"dlv_1", 2000}, std::pair{"dlv_2", 1000}}) {
      auto d = make_delivery(id, "evt");
      d.next_attempt_at = due;
      ws.delivery_created(d);
    }
    BOOST_REQUIRE((*log)->commit(ws, durability::synced).ok());
  }
  // Rewrite the indexes as an older version kept them: pending by id
  // alone, no due index, no layout mark.
  rewrite_store(
      dir.path(), [](rocksdb::DB& db, rocksdb::ColumnFamilyHandle* h) {
        if (h->GetName() == "due")
          BOOST_REQUIRE(db.DropColumnFamily(h).ok());
        if (h->GetName() == "pending") {
          for (auto id : {"dlv_1", "dlv_2"}) {
            BOOST_REQUIRE(db.Delete({}, h, std::string{"ep"} + '\0' + id).ok());
            BOOST_REQUIRE(db.Put({}, h, id, "").ok());
          }
        }
        if (h->GetName() == "default")
          BOOST_REQUIRE(db.Delete({}, h, "index_layout").ok());
      });
  auto log = open_store({dir.path().string()});
  BOOST_REQUIRE(log);
  using v = std::vector<std::string>;
  BOOST_TEST(pending_ids(**log) == (v{"dlv_2", "dlv_1"}),
             boost::test_tools::per_element());
  BOOST_TEST(*(*log)->endpoints_with_pending() == (v{"ep"}),
             boost::test_tools::per_element());
  log->reset();
  BOOST_TEST(entries_of(dir.path(), "pending") == 0u);
}

BOOST_AUTO_TEST_CASE(a_store_with_an_index_in_acceptance_order_drops_it) {
  // Layout "2" kept every pending delivery in a second index, in the order
  // accepted: at open it goes (one range deletion, its tables dropped) and
  // the due index stays as it is.
  test::temp_dir dir;
  using v = std::vector<std::string>;
  {
    auto log = open_store({dir.path().string()});
    BOOST_REQUIRE(log);
    changes ws;
    for (auto [id, due] : {std::pair{"dlv_1", 2000}, std::pair{"dlv_2", 1000},
                           std::pair{"dlv_3", 3000}}) {
      auto d = make_delivery(id, "evt");
      d.next_attempt_at = due;
      ws.delivery_created(d);
    }
    BOOST_REQUIRE((*log)->commit(ws, durability::synced).ok());
  }
  rewrite_store(dir.path(), [](rocksdb::DB& db,
                               rocksdb::ColumnFamilyHandle* h) {
    if (h->GetName() == "pending") {
      for (auto id : {"dlv_1", "dlv_2", "dlv_3"})
        BOOST_REQUIRE(db.Put({}, h, std::string{"ep"} + '\0' + id, "").ok());
      BOOST_REQUIRE(db.Flush({}, h).ok()); // in a table file
    }
    if (h->GetName() == "default")
      BOOST_REQUIRE(db.Put({}, h, "index_layout", "2").ok());
  });
  BOOST_TEST(entries_of(dir.path(), "pending") == 3u);
  {
    auto log = open_store({dir.path().string()});
    BOOST_REQUIRE(log);
    BOOST_TEST(pending_ids(**log) == (v{"dlv_2", "dlv_1", "dlv_3"}),
               boost::test_tools::per_element());
    auto backlog = (*log)->backlog_of("ep");
    BOOST_REQUIRE(backlog);
    BOOST_TEST(backlog->pending == 3u);
  }
  BOOST_TEST(entries_of(dir.path(), "pending") == 0u);
  BOOST_TEST(table_files_of(dir.path(), "pending") == 0u);
}

// Not about a store at all (the names records are stored under): kept here
// from the old event_log suite so that storage_tests still checks them.
BOOST_AUTO_TEST_CASE(record_kinds_have_their_stored_names) {
  BOOST_TEST(to_string(record_kind::attempt_started) == "attempt.started");
  BOOST_TEST(to_string(record_kind::endpoint_circuit_closed) ==
             "endpoint.circuit_closed");
  for (int k = 0; k <= static_cast<int>(record_kind::event_escalated); ++k) {
    auto kind = static_cast<record_kind>(k);
    BOOST_TEST((record_kind_from(to_string(kind)) == kind));
  }
  BOOST_TEST(!record_kind_from("attempt.bogus"));
  BOOST_TEST(carries_attempt(record_kind::attempt_finished));
  BOOST_TEST(!carries_attempt(record_kind::delivery_delivered));
}

// ---- Retention
// ----------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(a_log_range_deletion_of_an_older_version_replays_safely) {
  // tocsin before 2026-11-28 started retention's range deletions in the log
  // with a sequence number's key. Replayed from a write-ahead log into a
  // memtable that takes insert hints, one would meet hints it does not
  // belong to (RocksDB 7.8 asserts): such a store opens without them once.
  test::temp_dir dir;
  auto marker = dir.path() / "TOCSIN-LOG-HINTS";
  {
    auto log = open_store({dir.path().string()});
    BOOST_REQUIRE(log);
    commit_event(**log, "evt_1", {{"dlv_1", pending, 0}});
  }
  BOOST_TEST(std::filesystem::exists(marker)); // a new store takes hints
  std::filesystem::remove(marker);             // as an older version left it
  auto be64 = [](std::uint64_t v) {
    std::string k(8, '\0');
    for (int i = 7; i >= 0; --i, v >>= 8)
      k[static_cast<std::size_t>(i)] = static_cast<char>(v & 0xff);
    return k;
  };
  rewrite_store(
      dir.path(), [&](rocksdb::DB& db, rocksdb::ColumnFamilyHandle* h) {
        if (h->GetName() != "log")
          return;
        std::string first;
        BOOST_REQUIRE(db.Get({}, h, be64(1), &first).ok());
        for (std::uint64_t seq = 3; seq <= 5000; ++seq)
          BOOST_REQUIRE(db.Put({}, h, be64(seq), first).ok());
        BOOST_REQUIRE(db.DeleteRange({}, h, be64(1), be64(4000)).ok());
      });
  for (int opening = 1; opening <= 2; ++opening) {
    auto log = open_store({dir.path().string()});
    BOOST_REQUIRE(log);
    BOOST_TEST(std::filesystem::exists(marker));
    BOOST_TEST((*log)->last_sequence() == 5000u + 2u * (opening - 1));
    commit_event(**log, "evt_" + std::to_string(opening + 1),
                 {{"dlv_" + std::to_string(opening + 1), pending, 0}});
    std::size_t kept = 0;
    BOOST_REQUIRE((*log)->read_log(1, [&](std::uint64_t, std::string_view) {
      ++kept;
      return true;
    }));
    BOOST_TEST(kept == 1001u + 2u * opening);
  }
}

BOOST_AUTO_TEST_CASE(a_store_from_before_retention_gets_its_time_indexes) {
  test::temp_dir dir;
  {
    auto log = open_store({dir.path().string()});
    BOOST_REQUIRE(log);
    commit_event(**log, "evt_1", {{"dlv_1", delivered, 1000}});
    changes ws;
    ws.idempotency_key_used("old", {{"evt_1"}, 1000, "d1"});
    BOOST_REQUIRE((*log)->commit(ws, durability::buffered));
  }
  // Take the indexes away, as a store of an older version never had them.
  drop_column_families(dir.path(), {"finished", "idempotency_at"});
  auto log = open_store({dir.path().string()});
  BOOST_REQUIRE(log);
  auto x = expire_all(**log, 3000, 100);
  BOOST_TEST(x.events == 1u);
  BOOST_TEST(x.idempotency_keys == 1u);
}

BOOST_AUTO_TEST_CASE(tables_of_expired_log_records_are_dropped_at_once) {
  // Not left to a compaction that may be far off: the space comes back
  // when retention has run.
  test::temp_dir dir;
  {
    auto log = open_store({dir.path().string()});
    BOOST_REQUIRE(log);
    std::uint64_t noise = 42; // incompressible reasons: tables as large
    for (int i = 0; i < 300; ++i) {
      std::string reason;
      for (int c = 0; c < 2000; ++c) {
        noise = noise * 6364136223846793005u + 1442695040888963407u;
        reason += static_cast<char>('a' + (noise >> 59));
      }
      changes ws;
      ws.noted(record_kind::endpoint_flagged,
               R"({"endpoint_id":"ep","reason":")" + reason + R"("})");
      BOOST_REQUIRE((*log)->commit(ws, durability::buffered));
    }
  }
  compact_by_level(dir.path(), 64 << 10); // ~600 KB: tables of 64 KB
  auto before = log_tables(dir.path());
  BOOST_TEST(before >= 5u);
  {
    auto log = open_store({dir.path().string()});
    BOOST_REQUIRE(log);
    auto x = expire_all(**log, now_ms() + 60'000, 100);
    BOOST_TEST(x.log_records == 299u); // the newest stays
    BOOST_TEST((*log)->last_sequence() == 300u);
  }
  // What is left: the table with the newest record, and the one the range
  // deletion was flushed to.
  BOOST_TEST(log_tables(dir.path()) <= 2u);
}

BOOST_AUTO_TEST_CASE(a_store_compacted_by_level_opens_as_it_is) {
  // Its levels are sorted runs to the universal compaction of the log and
  // the events: nothing is rewritten, nothing missed.
  test::temp_dir dir;
  {
    auto log = open_store({dir.path().string()});
    BOOST_REQUIRE(log);
    for (int i = 1; i <= 40; ++i)
      commit_event(**log, "evt_" + std::to_string(i),
                   {{"dlv_" + std::to_string(i), i % 2 ? delivered : pending,
                     i % 2 ? 1000 : 0}});
  }
  compact_by_level(dir.path());
  for (int opening = 1; opening <= 2; ++opening) {
    auto log = open_store({dir.path().string()});
    BOOST_REQUIRE(log);
    auto& l = **log;
    BOOST_TEST(records(l).size() == 80u + 2u * (opening - 1));
    BOOST_TEST(has_event(l, "evt_1"));
    BOOST_TEST(has_event(l, "evt_40"));
    BOOST_TEST(pending_ids(l).size() == 20u + (opening - 1));
    commit_event(l, "evt_new" + std::to_string(opening),
                 {{"dlv_new" + std::to_string(opening), pending, 0}});
    BOOST_TEST(has_event(l, "evt_new" + std::to_string(opening)));
    BOOST_TEST(l.last_sequence() == 80u + 2u * opening);
  }
}

BOOST_AUTO_TEST_SUITE_END()
