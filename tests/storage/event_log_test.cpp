#include "common/ids.hpp"
#include "storage/store.hpp"
#include "storage/log_fold.hpp"

#include "common/ids.hpp"

#include "tests/support/temp_dir.hpp"

#include <boost/test/unit_test.hpp>

#include <nlohmann/json.hpp>
#include <rocksdb/db.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <set>
#include <thread>

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

std::vector<nlohmann::json> records(store& log) {
  std::vector<nlohmann::json> out;
  auto st = log.read_log(0, [&](std::uint64_t, std::string_view r) {
    out.push_back(nlohmann::json::parse(r));
    return true;
  });
  BOOST_REQUIRE(st.ok());
  return out;
}

/// Every pending delivery of `endpoint` in the index's order, read a page of
/// `limit` at a time.
std::vector<std::string> pending_ids(store& log,
                                     std::string endpoint = "ep",
                                     std::size_t limit = 2) {
  std::vector<std::string> out;
  line_position from;
  for (;;) {
    auto page = log.line_of(endpoint, from, limit, {});
    BOOST_REQUIRE(page.ok());
    for (auto& d : page->deliveries)
      out.push_back(d.id);
    if (!page->next)
      return out;
    from = *page->next;
  }
}

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

constexpr standing pending_at_1000{delivery_state::pending, 1000};

} // namespace

BOOST_AUTO_TEST_SUITE(event_log)

BOOST_AUTO_TEST_CASE(commits_events_and_deliveries_and_reads_them_back) {
  test::temp_dir dir;
  auto log = open_store({dir.path().string()});
  BOOST_REQUIRE(log);
  event_record e{"evt_1", R"({"id":"evt_1"})", 1000, {"dlv_1", "dlv_2"}};
  changes ws;
  ws.event_accepted(e);
  ws.delivery_changed(make_delivery("dlv_1", "evt_1"),
                  record_kind::delivery_created);
  ws.delivery_changed(make_delivery("dlv_2", "evt_1"),
                  record_kind::delivery_created);
  BOOST_REQUIRE((*log)->commit(ws, durability::synced).ok());

  auto got = (*log)->get_event("evt_1");
  BOOST_REQUIRE(got);
  BOOST_REQUIRE(*got);
  BOOST_TEST((*got)->body == e.body);
  BOOST_TEST((*got)->delivery_ids == e.delivery_ids);
  auto missing = (*log)->get_event("evt_nope");
  BOOST_REQUIRE(missing);
  BOOST_TEST(!*missing);
  // Several at once: in the order asked for, a missing one as nothing.
  auto several = (*log)->get_events({"evt_nope", "evt_1", "evt_1"});
  BOOST_REQUIRE(several);
  BOOST_REQUIRE(several->size() == 3u);
  BOOST_TEST(!(*several)[0]);
  BOOST_REQUIRE((*several)[1]);
  BOOST_TEST((*several)[1]->body == e.body);
  BOOST_REQUIRE((*several)[2]);
  BOOST_TEST((*several)[2]->id == "evt_1");

  BOOST_TEST(pending_ids(**log) ==
             (std::vector<std::string>{"dlv_1", "dlv_2"}));

  auto recs = records(**log);
  BOOST_REQUIRE(recs.size() == 3u);
  BOOST_TEST(recs[0]["kind"] == "event.accepted");
  BOOST_TEST(recs[1]["kind"] == "delivery.created");
  BOOST_TEST(recs[1]["delivery_id"] == "dlv_1");
  BOOST_TEST(recs[0]["seq"].get<int>() + 1 == recs[1]["seq"].get<int>());
}

BOOST_AUTO_TEST_CASE(events_read_at_once_come_in_the_order_asked_for) {
  // One pass in key order reads them: neighbours, gaps longer than its
  // steps, ids before, between and after the stored ones, repeats, some in
  // a table file and some in the memtable.
  test::temp_dir dir;
  auto body = [](int i) { return "{\"n\":" + std::to_string(i) + "}"; };
  auto id = [](int i) {
    char s[16];
    std::snprintf(s, sizeof s, "evt_%03d", i);
    return std::string{s};
  };
  for (int half : {0, 1}) {
    auto log = open_store({dir.path().string()});
    BOOST_REQUIRE(log);
    changes ws;
    for (int i = half; i < 200; i += 2)
      ws.event_accepted(event_record{id(i), body(i), 1000, {}});
    BOOST_REQUIRE((*log)->commit(ws, durability::synced).ok());
  } // the first half is flushed to a table when the store closes
  auto log = open_store({dir.path().string()});
  BOOST_REQUIRE(log);
  std::vector<std::string> ask{"evt_150", "evt_000", "evt_001", "evt_",
                               "evt_199", "evt_2",   "evt_040", "evt_150",
                               "evt_077", "evt_078", "evt_999", "evt_100"};
  for (int i = 120; i < 140; ++i)
    ask.push_back(id(i));
  auto got = (*log)->get_events(ask);
  BOOST_REQUIRE(got);
  BOOST_REQUIRE(got->size() == ask.size());
  for (std::size_t i = 0; i < ask.size(); ++i) {
    auto one = (*log)->get_event(ask[i]);
    BOOST_REQUIRE(one);
    BOOST_TEST((*got)[i].has_value() == one->has_value(), ask[i]);
    if ((*got)[i] && *one)
      BOOST_TEST((*got)[i]->body == (*one)->body, ask[i]);
  }
  BOOST_TEST(!(*got)[3]);  // "evt_"
  BOOST_TEST(!(*got)[5]);  // "evt_2"
  BOOST_TEST(!(*got)[10]); // "evt_999"
  BOOST_REQUIRE((*got)[9]);
  BOOST_TEST((*got)[9]->body == body(78));
}

BOOST_AUTO_TEST_CASE(state_changes_move_deliveries_between_indexes) {
  test::temp_dir dir;
  auto log = open_store({dir.path().string()});
  BOOST_REQUIRE(log);
  auto a = make_delivery("dlv_a", "evt_1");
  auto b = make_delivery("dlv_b", "evt_1");
  changes ws;
  ws.delivery_changed(a, record_kind::delivery_created);
  ws.delivery_changed(b, record_kind::delivery_created);
  BOOST_REQUIRE((*log)->commit(ws, durability::buffered).ok());

  a.state = delivery_state::delivered;
  b.state = delivery_state::dead_lettered;
  b.reason = "attempts_exhausted";
  b.attempts.push_back(attempt{1, 1000, 1100, 503, 12.5, "busy", ""});
  ws.clear();
  ws.delivery_changed(a, record_kind::delivery_delivered);
  ws.delivery_changed(b, record_kind::delivery_dead_lettered);
  BOOST_REQUIRE((*log)->commit(ws, durability::buffered).ok());

  BOOST_TEST(pending_ids(**log).empty());
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
  ws.delivery_changed(b, record_kind::delivery_replayed);
  BOOST_REQUIRE((*log)->commit(ws, durability::buffered).ok());
  BOOST_TEST((*log)->list_dead_letters("", 10)->empty());
}

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

BOOST_AUTO_TEST_CASE(dead_letters_page_in_id_order) {
  test::temp_dir dir;
  auto log = open_store({dir.path().string()});
  BOOST_REQUIRE(log);
  changes ws;
  for (auto id : {"dlv_3", "dlv_1", "dlv_2"}) {
    auto d = make_delivery(id, "evt");
    d.state = delivery_state::dead_lettered;
    ws.delivery_changed(d, record_kind::delivery_dead_lettered);
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
    auto log = open_store({dir.path().string()});
    BOOST_REQUIRE(log);
    changes ws;
    ws.delivery_changed(make_delivery("dlv_1", "evt_1"),
                    record_kind::delivery_created);
    ws.noted(record_kind::endpoint_flagged, R"({"endpoint_id":"ep"})");
    BOOST_REQUIRE((*log)->commit(ws, durability::synced).ok());
  }
  auto log = open_store({dir.path().string()});
  BOOST_REQUIRE(log);
  changes ws;
  ws.noted(record_kind::endpoint_flagged, R"({"endpoint_id":"ep2"})");
  BOOST_REQUIRE((*log)->commit(ws, durability::synced).ok());
  auto recs = records(**log);
  BOOST_REQUIRE(recs.size() == 3u);
  BOOST_TEST(recs[2]["seq"] == 3);
  BOOST_TEST(recs[2]["endpoint_id"] == "ep2");
  BOOST_TEST(pending_ids(**log).size() == 1u);
}

BOOST_AUTO_TEST_CASE(folding_the_log_gives_the_stored_state) {
  test::temp_dir dir;
  auto log = open_store({dir.path().string()});
  BOOST_REQUIRE(log);
  auto commit = [&](auto&& fill) {
    changes ws;
    fill(ws);
    BOOST_REQUIRE((*log)->commit(ws, durability::buffered).ok());
  };
  auto a = make_delivery("dlv_a", "evt_1");
  auto b = make_delivery("dlv_b", "evt_1");
  commit([&](changes& ws) {
    ws.delivery_created(a);
    ws.delivery_created(b);
  });
  for (int n = 1; n <= 2; ++n) {
    a.attempts.push_back(attempt{n, 1000, 0, 0, 0, "", ""});
    commit([&](changes& ws) {
      ws.delivery_changed(a, record_kind::attempt_started, pending_at_1000);
    });
    a.attempts.back().finished_at = 1100;
    a.attempts.back().status = n == 1 ? 503 : 200;
    if (n == 2)
      a.state = delivery_state::delivered;
    commit([&](changes& ws) {
      ws.delivery_changed(a, record_kind::attempt_finished, pending_at_1000);
    });
  }
  b.attempts.push_back(attempt{1, 1000, 1100, 400, 1, "no", ""});
  b.state = delivery_state::dead_lettered;
  b.reason = "rejected_http_400";
  commit([&](changes& ws) {
    ws.delivery_changed(b, record_kind::attempt_finished, pending_at_1000);
  });

  auto folded = fold_log(**log);
  BOOST_REQUIRE(folded);
  BOOST_REQUIRE(folded->size() == 2u);
  BOOST_TEST((folded->at("dlv_a").state == delivery_state::delivered));
  BOOST_TEST(folded->at("dlv_a").attempts == 2);
  BOOST_TEST((folded->at("dlv_b").state == delivery_state::dead_lettered));
  BOOST_TEST(folded->at("dlv_b").reason == "rejected_http_400");
  // And the indexes followed the transitions.
  BOOST_TEST(pending_ids(**log).empty());
  BOOST_TEST((*log)->list_dead_letters("", 10)->size() == 1u);
}

BOOST_AUTO_TEST_CASE(a_second_opener_is_refused_with_store_locked) {
  test::temp_dir dir;
  auto first = open_store({dir.path().string()});
  BOOST_REQUIRE(first);
  auto second = open_store({dir.path().string()});
  BOOST_REQUIRE(!second);
  BOOST_TEST(second.error().code == "store_locked");
}

BOOST_AUTO_TEST_CASE(endpoint_definitions_are_logged_and_survive_reopening) {
  test::temp_dir dir;
  {
    auto log = open_store({dir.path().string()});
    BOOST_REQUIRE(log);
    changes ws;
    ws.endpoint_put("b", R"({"id":"b","v":1})", record_kind::endpoint_created);
    ws.endpoint_put("a", R"({"id":"a","v":1})", record_kind::endpoint_created);
    BOOST_REQUIRE((*log)->commit(ws, durability::synced).ok());
    changes change;
    change.endpoint_put("a", R"({"id":"a","v":2})",
                        record_kind::endpoint_updated);
    change.endpoint_deleted("b");
    BOOST_REQUIRE((*log)->commit(change, durability::synced).ok());
  }
  auto log = open_store({dir.path().string()});
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

BOOST_AUTO_TEST_CASE(sequence_numbers_follow_commit_order_without_gaps) {
  // Four writers commit at once while a reader tails the log by sequence:
  // whenever it asks how far the log goes, every record up to there is
  // already readable, in order, each once.
  test::temp_dir dir;
  auto opened = open_store({dir.path().string()});
  BOOST_REQUIRE(opened);
  auto& log = **opened;
  constexpr int writers = 4, commits = 300;
  std::atomic<int> running{writers};
  std::atomic<bool> broken{false};
  std::string why;
  std::thread reader([&] {
    std::uint64_t seen = 0;
    for (;;) {
      bool last_round = running == 0;
      auto upto = log.last_sequence();
      auto st = log.read_log(seen + 1,
                                    [&](std::uint64_t seq, std::string_view) {
                                      if (seq > upto)
                                        return false;
                                      if (seq != seen + 1) {
                                        broken = true;
                                        why = "after " + std::to_string(seen) +
                                              " came " + std::to_string(seq);
                                        return false;
                                      }
                                      seen = seq;
                                      return true;
                                    });
      if (!st.ok() || broken)
        return;
      if (seen != upto) {
        broken = true;
        why = "last_sequence " + std::to_string(upto) + " but read up to " +
              std::to_string(seen);
        return;
      }
      if (last_round)
        return;
    }
  });
  std::vector<std::thread> threads;
  for (int w = 0; w < writers; ++w)
    threads.emplace_back([&, w] {
      for (int i = 0; i < commits; ++i) {
        changes ws;
        auto id = "dlv_" + std::to_string(w) + "_" + std::to_string(i);
        ws.delivery_created(make_delivery(id, "evt"));
        if (i % 3 == 0)
          ws.noted(record_kind::endpoint_flagged,
                        R"({"endpoint_id":"ep"})");
        BOOST_REQUIRE(log.commit(ws, i % 10 == 0 ? durability::synced
                                                 : durability::buffered)
                          .ok());
      }
      --running;
    });
  for (auto& t : threads)
    t.join();
  reader.join();
  BOOST_TEST(!broken, why);
  auto expected = writers * (commits + (commits + 2) / 3);
  BOOST_TEST(log.last_sequence() == static_cast<std::uint64_t>(expected));
  BOOST_TEST(records(log).size() == static_cast<std::size_t>(expected));
}

BOOST_AUTO_TEST_CASE(a_failed_sync_fails_what_it_covered_and_stops_writes) {
  // Commits are written first and synced after: a sync that fails fails
  // the commit waiting for it, and the store refuses every write and any
  // synced answer (an idempotency key's replay) from then on.
  test::temp_dir dir;
  std::atomic<bool> failing{false};
  store_options opts{dir.path().string()};
  opts.fail_log_sync = [&] { return failing.load(); };
  auto opened = open_store(opts);
  BOOST_REQUIRE(opened);
  auto& log = **opened;
  auto one = [](const std::string& id) {
    changes ws;
    ws.delivery_created(make_delivery(id, "evt_1"));
    return ws;
  };
  BOOST_REQUIRE(log.commit(one("dlv_1"), durability::synced));
  failing = true;
  auto failed = log.commit(one("dlv_2"), durability::synced);
  BOOST_REQUIRE(!failed);
  BOOST_TEST(failed.error().message.find("sync") != std::string::npos,
             failed.error().message);
  BOOST_TEST(!log.commit(one("dlv_3"), durability::buffered).ok());
  BOOST_TEST(!log.commit(changes{}, durability::synced).ok());
  BOOST_TEST(!log.writable().ok());
  failing = false;
  // RocksDB 7.8 does not resume after a failed sync of its write-ahead log
  // (the log's writer keeps the error): the store refuses writes until it
  // is opened again, as when the daemon restarts.
  std::this_thread::sleep_for(std::chrono::milliseconds{1100});
  BOOST_TEST(!log.writable().ok());
  opened->reset();
  auto again = open_store(opts);
  BOOST_REQUIRE(again);
  // What was written before the sync failed reached the operating system:
  // it is there (answered 503, and still delivered — hence idempotency
  // keys for resends).
  auto kept = (*again)->get_delivery("dlv_2");
  BOOST_REQUIRE(kept);
  BOOST_TEST(kept->has_value());
  BOOST_TEST((*again)->commit(one("dlv_4"), durability::synced).ok());
  BOOST_TEST((*again)->commit(changes{}, durability::synced).ok());
}

BOOST_AUTO_TEST_CASE(dead_letters_are_indexed_per_endpoint_by_time) {
  test::temp_dir dir;
  auto opened = open_store({dir.path().string()});
  BOOST_REQUIRE(opened);
  auto& log = **opened;
  auto dead = [](std::string id, std::string ep, unix_ms at) {
    auto d = make_delivery(std::move(id), "evt");
    d.endpoint_id = std::move(ep);
    d.state = delivery_state::dead_lettered;
    d.finished_at = at;
    return d;
  };
  changes ws;
  ws.delivery_changed(dead("dlv_1", "a", 3000),
                  record_kind::delivery_dead_lettered);
  ws.delivery_changed(dead("dlv_2", "b", 1000),
                  record_kind::delivery_dead_lettered);
  ws.delivery_changed(dead("dlv_3", "a", 1000),
                  record_kind::delivery_dead_lettered);
  ws.delivery_changed(dead("dlv_4", "a", 2000),
                  record_kind::delivery_dead_lettered);
  ws.delivery_changed(dead("dlv_5", "ab", 500),
                  record_kind::delivery_dead_lettered);
  BOOST_REQUIRE(log.commit(ws, durability::buffered).ok());
  auto ids = [](const std::vector<delivery>& ds) {
    std::vector<std::string> out;
    for (auto& d : ds)
      out.push_back(d.id);
    return out;
  };
  using v = std::vector<std::string>;
  BOOST_TEST(ids(*log.list_dead_letters_of("a", 0, 10)) ==
             (v{"dlv_3", "dlv_4", "dlv_1"}));
  BOOST_TEST(ids(*log.list_dead_letters_of("a", 2000, 10)) ==
             (v{"dlv_4", "dlv_1"}));
  BOOST_TEST(ids(*log.list_dead_letters_of("a", 0, 2)) ==
             (v{"dlv_3", "dlv_4"}));
  BOOST_TEST(ids(*log.list_dead_letters_of("b", 0, 10)) == (v{"dlv_2"}));
  BOOST_TEST(log.list_dead_letters_of("nobody", 0, 10)->empty());
  // A replay takes it out of both indexes.
  auto back = dead("dlv_4", "a", 2000);
  back.state = delivery_state::pending;
  back.finished_at = 0;
  ws.clear();
  ws.delivery_changed(back, record_kind::delivery_replayed,
                  standing{delivery_state::dead_lettered, 0});
  BOOST_REQUIRE(log.commit(ws, durability::buffered).ok());
  BOOST_TEST(ids(*log.list_dead_letters_of("a", 0, 10)) ==
             (v{"dlv_3", "dlv_1"}));
  BOOST_TEST(log.list_dead_letters("", 10)->size() == 4u);
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

BOOST_AUTO_TEST_CASE(pending_deliveries_page_per_endpoint_in_their_places) {
  test::temp_dir dir;
  auto opened = open_store({dir.path().string()});
  BOOST_REQUIRE(opened);
  auto& log = **opened;
  // Endpoint "a" (and "ab", whose keys follow a's) with dues out of id order.
  changes ws;
  std::vector<delivery> a;
  for (auto [id, due] : {std::pair{"dlv_1", 5000}, std::pair{"dlv_2", 1000},
                         std::pair{"dlv_3", 3000}, std::pair{"dlv_4", 3000}}) {
    auto d = make_delivery(id, "evt");
    d.endpoint_id = "a";
    d.next_attempt_at = due;
    ws.delivery_created(d);
    a.push_back(d);
  }
  auto other = make_delivery("dlv_0", "evt");
  other.endpoint_id = "ab";
  ws.delivery_created(other);
  auto seq = log.commit(ws, durability::buffered);
  BOOST_REQUIRE(seq);
  BOOST_TEST(*seq == log.last_sequence());
  BOOST_TEST(*seq == 5u);
  using v = std::vector<std::string>;
  BOOST_TEST(pending_ids(log, "a") == (v{"dlv_2", "dlv_3", "dlv_4", "dlv_1"}),
             boost::test_tools::per_element());
  BOOST_TEST(pending_ids(log, "ab") == (v{"dlv_0"}));
  BOOST_TEST(pending_ids(log, "nobody").empty());

  // A page: its size, where the next one starts, what it skips, the log
  // position it reflects.
  auto page = log.line_of("a", {}, 2,
                             [](std::string_view id) { return id == "dlv_3"; });
  BOOST_REQUIRE(page);
  BOOST_TEST(page->deliveries.size() == 2u);
  BOOST_TEST(page->deliveries[0].id == "dlv_2");
  BOOST_TEST(page->deliveries[1].id == "dlv_4");
  BOOST_TEST(page->places == (std::vector<unix_ms>{1000, 3000}),
             boost::test_tools::per_element());
  BOOST_REQUIRE(page->next);
  BOOST_TEST(page->next->id == "dlv_1");
  BOOST_TEST(page->next->place == 5000);
  BOOST_TEST(page->as_of == 5u);

  // A retry moves the delivery to when it is due, unless its writer keeps
  // it in its place (a FIFO endpoint's head); delivered and dead-lettered
  // ones leave the index.
  auto was = standing_of(a[1]);
  a[1].next_attempt_at = 9000; // dlv_2 retried later
  auto kept = standing_of(a[0]);
  a[0].next_attempt_at = 20000; // dlv_1 retried, its place kept
  a[2].state = delivery_state::delivered;
  a[3].state = delivery_state::dead_lettered;
  a[3].finished_at = 4000;
  ws.clear();
  ws.delivery_changed(a[0], record_kind::attempt_finished, kept, kept.place);
  ws.delivery_changed(a[1], record_kind::attempt_finished, was);
  ws.delivery_changed(a[2], record_kind::attempt_finished,
                  standing{delivery_state::pending, 3000});
  ws.delivery_changed(a[3], record_kind::attempt_finished); // read from the store
  BOOST_REQUIRE(log.commit(ws, durability::buffered).ok());
  BOOST_TEST(pending_ids(log, "a") == (v{"dlv_1", "dlv_2"}),
             boost::test_tools::per_element());
  page = log.line_of("a", {}, 10, {});
  BOOST_REQUIRE(page);
  BOOST_TEST(page->places == (std::vector<unix_ms>{5000, 9000}),
             boost::test_tools::per_element());
  BOOST_TEST(page->deliveries[0].next_attempt_at == 20000);
  // A replay brings one back.
  a[3].state = delivery_state::pending;
  a[3].next_attempt_at = 100;
  ws.clear();
  ws.delivery_changed(a[3], record_kind::delivery_replayed);
  BOOST_REQUIRE(log.commit(ws, durability::buffered).ok());
  BOOST_TEST(pending_ids(log, "a") == (v{"dlv_4", "dlv_1", "dlv_2"}),
             boost::test_tools::per_element());
  auto endpoints = log.endpoints_with_pending();
  BOOST_REQUIRE(endpoints);
  BOOST_TEST(*endpoints == (v{"a", "ab"}), boost::test_tools::per_element());
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

BOOST_AUTO_TEST_SUITE_END()

// ---- Retention
// ---------------------------------------------------------------

namespace {

/// Commits an event with one delivery per (id, state, finished_at).
void commit_event(
    storage::store& log, const std::string& event_id,
    std::vector<std::tuple<std::string, delivery_state, unix_ms>> deliveries) {
  event_record e{event_id, R"({"id":")" + event_id + R"("})", 1000, {}};
  changes ws;
  for (auto& [id, state, finished] : deliveries)
    e.delivery_ids.push_back(id);
  ws.event_accepted(e);
  for (auto& [id, state, finished] : deliveries) {
    auto d = make_delivery(id, event_id);
    d.state = state;
    d.finished_at = finished;
    ws.delivery_created(d);
  }
  BOOST_REQUIRE(log.commit(ws, durability::synced).ok());
}

bool has_event(storage::store& log, const std::string& id) {
  auto e = log.get_event(id);
  BOOST_REQUIRE(e);
  return e->has_value();
}

bool has_delivery(storage::store& log, const std::string& id) {
  auto d = log.get_delivery(id);
  BOOST_REQUIRE(d);
  return d->has_value();
}

/// expire() until it has nothing more; what it removed in all.
expiry expire_all(storage::store& log, unix_ms cutoff, std::size_t limit) {
  expiry sum;
  for (int calls = 0;; ++calls) {
    BOOST_REQUIRE(calls < 1000);
    auto x = log.expire(cutoff, cutoff, limit);
    BOOST_REQUIRE(x);
    sum.events += x->events;
    sum.deliveries += x->deliveries;
    sum.idempotency_keys += x->idempotency_keys;
    sum.log_records += x->log_records;
    if (!x->more)
      return sum;
  }
}

constexpr auto delivered = delivery_state::delivered;
constexpr auto dead = delivery_state::dead_lettered;
constexpr auto pending = delivery_state::pending;

} // namespace

BOOST_AUTO_TEST_SUITE(retention)

BOOST_AUTO_TEST_CASE(
    retention_removes_events_once_all_their_deliveries_finished_before_the_cutoff) {
  test::temp_dir dir;
  auto log = open_store({dir.path().string()});
  BOOST_REQUIRE(log);
  auto& l = **log;
  commit_event(l, "evt_1", {{"dlv_1", delivered, 1000}, {"dlv_2", dead, 2000}});
  commit_event(l, "evt_2", {{"dlv_3", delivered, 1500}, {"dlv_4", pending, 0}});
  commit_event(l, "evt_3", {{"dlv_5", delivered, 5000}});
  commit_event(l, "evt_4", {{"dlv_6", dead, 2500}});
  BOOST_TEST(l.expired_before() == 0);
  // evt_3 was an escalation derived from evt_1 and evt_3 itself.
  changes links;
  links.escalation_linked("evt_1", "evt_3");
  links.escalation_linked("evt_2", "evt_3");
  BOOST_REQUIRE(l.commit(links, durability::buffered));
  BOOST_TEST(*l.escalations_of("evt_1") == std::vector<std::string>{"evt_3"});
  // evt_4, an escalation as escalation_recorded records one: its members
  // (real ids, packed) and its group's index go with it.
  auto a = new_id("evt"), b = new_id("evt");
  changes rec;
  rec.counted_in_group(a, "r", "g");
  rec.counted_in_group(b, "r", "g");
  rec.escalation_recorded("evt_4", "r", "g", now_ms(), a + "\n" + b + "\n");
  BOOST_REQUIRE(l.commit(rec, durability::buffered));
  BOOST_TEST(*l.members_of("evt_4") == (std::vector<std::string>{a, b}));
  BOOST_TEST(*l.escalations_of(b) == std::vector<std::string>{"evt_4"});

  // One delivery looked at per call: the pass comes back until done.
  auto x = expire_all(l, 3000, 1);
  BOOST_TEST(x.events == 2u); // evt_1, evt_4
  BOOST_TEST(x.deliveries == 3u);
  BOOST_TEST(!has_event(l, "evt_1"));
  BOOST_TEST(!has_delivery(l, "dlv_1"));
  BOOST_TEST(!has_delivery(l, "dlv_2"));
  BOOST_TEST(!has_event(l, "evt_4"));
  // Its links go with it; those of events kept stay.
  BOOST_TEST(l.escalations_of("evt_1")->empty());
  BOOST_TEST(*l.escalations_of("evt_2") == std::vector<std::string>{"evt_3"});
  BOOST_TEST(l.members_of("evt_4")->empty());
  BOOST_TEST(l.escalations_of(b)->empty());
  // Dead letters go from both indexes.
  BOOST_TEST(l.list_dead_letters("", 10)->empty());
  BOOST_TEST(l.list_dead_letters_of("ep", 0, 10)->empty());
  // An event with a pending delivery stays whole, however old the other.
  BOOST_TEST(has_event(l, "evt_2"));
  BOOST_TEST(has_delivery(l, "dlv_3"));
  BOOST_TEST(pending_ids(l) == std::vector<std::string>{"dlv_4"});
  // Finished after the cutoff: kept.
  BOOST_TEST(has_event(l, "evt_3"));
  BOOST_TEST(l.expired_before() == 3000);

  // Its last delivery finishes: the event goes at the next pass.
  auto d4 = make_delivery("dlv_4", "evt_2");
  d4.state = delivered;
  d4.finished_at = 2800;
  changes ws;
  ws.delivery_changed(d4, record_kind::attempt_finished, pending_at_1000);
  BOOST_REQUIRE(l.commit(ws, durability::buffered));
  x = expire_all(l, 3000, 100);
  BOOST_TEST(x.events == 1u);
  BOOST_TEST(x.deliveries == 2u);
  BOOST_TEST(!has_event(l, "evt_2"));
  BOOST_TEST(!has_delivery(l, "dlv_3"));
  BOOST_TEST(!has_delivery(l, "dlv_4"));
  BOOST_TEST(has_event(l, "evt_3"));
  // Nothing left before the cutoff.
  BOOST_TEST(expire_all(l, 3000, 100).events == 0u);
}

BOOST_AUTO_TEST_CASE(a_replayed_dead_letter_is_kept_until_it_finishes_again) {
  test::temp_dir dir;
  auto log = open_store({dir.path().string()});
  BOOST_REQUIRE(log);
  auto& l = **log;
  commit_event(l, "evt_1", {{"dlv_1", dead, 1000}});
  // Replayed: pending again (its old index entry stays behind).
  auto d = make_delivery("dlv_1", "evt_1");
  changes ws;
  ws.delivery_changed(d, record_kind::delivery_replayed,
                  standing{dead, 0});
  BOOST_REQUIRE(l.commit(ws, durability::buffered));
  BOOST_TEST(expire_all(l, 3000, 100).events == 0u);
  BOOST_TEST(has_delivery(l, "dlv_1"));
  // Delivered late: kept for the whole retention from then.
  d.state = delivered;
  d.finished_at = 4000;
  ws.clear();
  ws.delivery_changed(d, record_kind::attempt_finished, pending_at_1000);
  BOOST_REQUIRE(l.commit(ws, durability::buffered));
  BOOST_TEST(expire_all(l, 3000, 100).events == 0u);
  BOOST_TEST(expire_all(l, 4001, 100).events == 1u);
  BOOST_TEST(!has_delivery(l, "dlv_1"));
}

BOOST_AUTO_TEST_CASE(retention_expires_idempotency_keys_and_old_log_records) {
  test::temp_dir dir;
  {
    auto log = open_store({dir.path().string()});
    BOOST_REQUIRE(log);
    auto& l = **log;
    changes ws;
    ws.idempotency_key_used("old", {{"evt_1"}, 1000, "d1"});
    ws.idempotency_key_used("new", {{"evt_2"}, 5000, "d2"});
    BOOST_REQUIRE(l.commit(ws, durability::buffered));
    commit_event(l, "evt_3", {{"dlv_1", pending, 0}});
    auto seq = l.last_sequence();
    BOOST_TEST(seq == 4u);

    // Log records go by when they were written (now): a cutoff in the
    // future takes all but the newest, which carries the sequence on.
    auto x = expire_all(l, now_ms() + 60000, 100);
    BOOST_TEST(x.idempotency_keys == 2u);
    BOOST_TEST(x.log_records == 3u);
    BOOST_TEST(!l.get_idempotency_key("old")->has_value());
    BOOST_TEST(!l.get_idempotency_key("new")->has_value());
    auto recs = records(l);
    BOOST_REQUIRE(recs.size() == 1u);
    BOOST_TEST(recs[0]["seq"] == seq);
    // The pending delivery is not retention's to remove.
    BOOST_TEST(has_delivery(l, "dlv_1"));
  }
  auto log = open_store({dir.path().string()});
  BOOST_REQUIRE(log);
  BOOST_TEST((*log)->last_sequence() == 4u);
  commit_event(**log, "evt_4", {{"dlv_2", pending, 0}});
  BOOST_TEST((*log)->last_sequence() == 6u);
}

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
    BOOST_REQUIRE(
        (*log)->read_log(1, [&](std::uint64_t, std::string_view) {
          ++kept;
          return true;
        }));
    BOOST_TEST(kept == 1001u + 2u * opening);
  }
}

BOOST_AUTO_TEST_CASE(a_cutoff_in_the_past_keeps_newer_keys_and_records) {
  test::temp_dir dir;
  auto log = open_store({dir.path().string()});
  BOOST_REQUIRE(log);
  auto& l = **log;
  changes ws;
  ws.idempotency_key_used("old", {{"evt_1"}, 1000, "d1"});
  ws.idempotency_key_used("new", {{"evt_2"}, 5000, "d2"});
  BOOST_REQUIRE(l.commit(ws, durability::buffered));
  // Keys have their own cutoff (their window may be shorter).
  auto x = l.expire(0, 3000, 100);
  BOOST_REQUIRE(x);
  BOOST_TEST(x->idempotency_keys == 1u);
  BOOST_TEST(x->log_records == 0u); // written now, after the cutoff
  BOOST_TEST(!l.get_idempotency_key("old")->has_value());
  BOOST_TEST(l.get_idempotency_key("new")->has_value());
  BOOST_TEST(records(l).size() == 2u);
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

// ---- Listing events
// -----------------------------------------------------------

namespace {

constexpr unix_ms listing_t0 = 1'800'000'000'000; // 2027-01-15

/// An event id made at `at`: ids made in one millisecond differ in their
/// last characters (`n`).
std::string event_id_at(unix_ms at, int n = 0) {
  static constexpr std::string_view digits = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
  auto id = id_floor("evt", at);
  id[id.size() - 2] = digits[static_cast<std::size_t>(n / 32 % 32)];
  id[id.size() - 1] = digits[static_cast<std::size_t>(n % 32)];
  return id;
}

/// Event i of the listing tests: accepted at t0 + i s, of two types, three
/// severities and three agents; every fourth acknowledged, every tenth
/// resolved; event 5 as a version that kept no fields wrote it.
event_record listing_event(int i) {
  event_record e;
  e.accepted_at = listing_t0 + i * 1000;
  e.id = event_id_at(e.accepted_at);
  event_fields f;
  f.type = i % 2 == 0 ? "policy.denied" : "anomaly.detected";
  f.severity = i % 3 == 0 ? "critical" : i % 3 == 1 ? "high" : "info";
  f.agent_id = "agent-" + std::to_string(i % 3);
  f.summary = "event " + std::to_string(i);
  f.timestamp = "2027-01-15T08:00:00.000Z";
  e.body = nlohmann::json{{"id", e.id},
                          {"type", f.type},
                          {"severity", f.severity},
                          {"agent_id", f.agent_id},
                          {"summary", f.summary}}
               .dump();
  if (i != 5)
    e.fields = f;
  if (i % 4 == 0)
    e.answers.push_back({event_state::acknowledged, "alice", "api", "", 1});
  if (i % 10 == 0)
    e.answers.push_back({event_state::resolved, "bob", "slack", "", 2});
  return e;
}

constexpr int listing_count = 60;

/// The listing's events, committed in chunks (the first flushed to a table
/// file when its store closes, so that reads cross tables and memtable).
std::unique_ptr<storage::store>
open_with_listing_events(const std::filesystem::path& dir) {
  for (int half : {0, 1}) {
    auto log = open_store({dir.string()});
    BOOST_REQUIRE(log);
    changes ws;
    for (int i = half * listing_count / 2; i < (half + 1) * listing_count / 2;
         ++i)
      ws.event_accepted(listing_event(i));
    BOOST_REQUIRE((*log)->commit(ws, durability::synced).ok());
    if (half == 1)
      return std::move(*log);
  }
  return nullptr;
}

/// The ids of the events of listing_event() that `keep` says yes to,
/// newest first.
std::vector<std::string> expected_ids(const std::function<bool(int)>& keep) {
  std::vector<std::string> out;
  for (int i = listing_count - 1; i >= 0; --i)
    if (keep(i))
      out.push_back(listing_event(i).id);
  return out;
}

std::vector<std::string> ids_of(const event_page& page) {
  std::vector<std::string> out;
  for (auto& e : page.events)
    out.push_back(e.id);
  return out;
}

/// Every page of `q` (from its `before` on), each checked against the
/// limits; all the ids, in order.
std::vector<std::string> all_pages(storage::store& log, event_query q,
                                   std::size_t* pages = nullptr) {
  std::vector<std::string> out;
  for (std::size_t n = 1;; ++n) {
    BOOST_REQUIRE(n < 1000);
    auto page = log.list_events(q);
    BOOST_REQUIRE(page);
    BOOST_TEST(page->events.size() <= q.limit);
    BOOST_TEST(page->examined <= q.max_examined);
    for (auto& id : ids_of(*page))
      out.push_back(id);
    if (!page->next) {
      if (pages)
        *pages = n;
      return out;
    }
    // Each page ends below where it started.
    auto started = q.before.empty() ? std::string{"evt`"} : q.before;
    BOOST_TEST((*page->next < started), *page->next << " " << started);
    q.before = *page->next;
  }
}

} // namespace

BOOST_AUTO_TEST_SUITE(event_listing)

BOOST_AUTO_TEST_CASE(events_are_listed_newest_first_with_their_fields) {
  test::temp_dir dir;
  auto log = open_with_listing_events(dir.path());
  event_query q;
  q.limit = 500;
  auto page = log->list_events(q);
  BOOST_REQUIRE(page);
  BOOST_TEST(ids_of(*page) == expected_ids([](int) { return true; }));
  BOOST_TEST(!page->next);
  BOOST_TEST(page->examined == std::size_t{listing_count});
  // The record as stored: its answers, its state, its fields (read from
  // the body for a record of a version that kept none).
  auto& newest = page->events.front();
  BOOST_TEST(newest.id == listing_event(listing_count - 1).id);
  auto& e40 = page->events.at(listing_count - 1 - 40);
  BOOST_TEST((e40.state() == event_state::resolved));
  BOOST_TEST(e40.answers.size() == 2u);
  auto& e5 = page->events.at(listing_count - 1 - 5);
  BOOST_TEST(!e5.fields);
  BOOST_TEST(fields_of_event(e5).summary == "event 5");
  BOOST_TEST(fields_of_event(e5).type == "anomaly.detected");
  // The default limit.
  auto first = log->list_events({});
  BOOST_REQUIRE(first);
  BOOST_TEST(first->events.size() == 50u);
  BOOST_REQUIRE(first->next);
  BOOST_TEST(*first->next == first->events.back().id);
}

BOOST_AUTO_TEST_CASE(each_filter_keeps_only_what_it_names) {
  test::temp_dir dir;
  auto log = open_with_listing_events(dir.path());
  auto listed = [&](event_query q) {
    q.limit = 500;
    auto page = log->list_events(q);
    BOOST_REQUIRE(page);
    BOOST_TEST(!page->next);
    return ids_of(*page);
  };
  auto state_of = [](int i) { return listing_event(i).state(); };
  {
    event_query q;
    q.state = event_state::open;
    BOOST_TEST(listed(q) == expected_ids([&](int i) {
                 return state_of(i) == event_state::open;
               }));
    q.state = event_state::acknowledged;
    auto acked = listed(q);
    BOOST_TEST(acked ==
               expected_ids([&](int i) { return i % 4 == 0 && i % 10 != 0; }));
    BOOST_TEST(!acked.empty());
    q.state = event_state::resolved;
    BOOST_TEST(listed(q) == expected_ids([](int i) { return i % 10 == 0; }));
  }
  {
    event_query q;
    q.type = "anomaly.detected"; // event 5 (no fields kept) among them
    BOOST_TEST(listed(q) == expected_ids([](int i) { return i % 2 == 1; }));
  }
  {
    event_query q;
    q.severity = "high";
    BOOST_TEST(listed(q) == expected_ids([](int i) { return i % 3 == 1; }));
    q.severity = "medium";
    BOOST_TEST(listed(q).empty());
  }
  {
    event_query q;
    q.agent_id = "agent-2";
    BOOST_TEST(listed(q) == expected_ids([](int i) { return i % 3 == 2; }));
    q.agent_id = "agent-"; // whole ids, not prefixes
    BOOST_TEST(listed(q).empty());
  }
  {
    // All at once: open critical ones.
    event_query q;
    q.state = event_state::open;
    q.severity = "critical";
    auto open_critical = listed(q);
    BOOST_TEST(open_critical == expected_ids([](int i) {
                 return i % 3 == 0 && i % 4 != 0 && i % 10 != 0;
               }));
    BOOST_TEST(open_critical.size() >= 5u);
  }
}

BOOST_AUTO_TEST_CASE(since_and_until_bound_the_acceptance_time) {
  test::temp_dir dir;
  auto log = open_with_listing_events(dir.path());
  event_query q;
  q.limit = 500;
  q.since = listing_t0 + 10 * 1000; // inclusive: event 10 is in
  q.until = listing_t0 + 20 * 1000; // exclusive: event 20 is out
  auto page = log->list_events(q);
  BOOST_REQUIRE(page);
  BOOST_TEST(ids_of(*page) ==
             expected_ids([](int i) { return i >= 10 && i < 20; }));
  BOOST_TEST(!page->next);
  // Only the range is read, not the store.
  BOOST_TEST(page->examined == 10u);
  // Within a millisecond: an until just after it takes all made in it.
  q.since = listing_t0 + 59 * 1000;
  q.until = listing_t0 + 59 * 1000 + 1;
  page = log->list_events(q);
  BOOST_REQUIRE(page);
  BOOST_TEST(ids_of(*page) == expected_ids([](int i) { return i == 59; }));
  // A range with nothing in it, and one before everything.
  q.since = listing_t0 + 100 * 1000;
  q.until.reset();
  page = log->list_events(q);
  BOOST_REQUIRE(page);
  BOOST_TEST(page->events.empty());
  BOOST_TEST(page->examined == 0u);
  q.since = 0;
  q.until = listing_t0;
  page = log->list_events(q);
  BOOST_REQUIRE(page);
  BOOST_TEST(page->events.empty());
  BOOST_TEST(!page->next);
}

BOOST_AUTO_TEST_CASE(pages_cover_every_event_exactly_once) {
  test::temp_dir dir;
  auto log = open_with_listing_events(dir.path());
  for (std::size_t limit : {1u, 7u, 30u, 59u, 60u, 61u}) {
    event_query q;
    q.limit = limit;
    std::size_t pages = 0;
    BOOST_TEST(all_pages(*log, q, &pages) ==
                   expected_ids([](int) { return true; }),
               "limit " << limit);
    BOOST_TEST(pages == (listing_count + limit - 1) / limit, "limit " << limit);
  }
  // With filters and a time range too.
  event_query q;
  q.limit = 3;
  q.state = event_state::open;
  q.type = "policy.denied";
  q.since = listing_t0 + 7 * 1000;
  q.until = listing_t0 + 51 * 1000;
  BOOST_TEST(all_pages(*log, q) == expected_ids([](int i) {
               return i % 2 == 0 && i % 4 != 0 && i % 10 != 0 && i >= 7 &&
                      i < 51;
             }));
  // Events that arrive while a client pages are in no page of its walk
  // (they are newer than where it is) and never make it see one twice.
  q = {};
  q.limit = 10;
  auto first = log->list_events(q);
  BOOST_REQUIRE(first);
  BOOST_REQUIRE(first->next);
  changes ws;
  auto late = listing_event(listing_count + 5);
  ws.event_accepted(late);
  BOOST_REQUIRE(log->commit(ws, durability::synced).ok());
  q.before = *first->next;
  auto rest = all_pages(*log, q);
  BOOST_TEST(rest.size() == std::size_t{listing_count - 10});
  BOOST_TEST((std::find(rest.begin(), rest.end(), late.id) == rest.end()));
}

BOOST_AUTO_TEST_CASE(the_scan_budget_returns_what_matched_and_a_cursor) {
  test::temp_dir dir;
  auto log = open_with_listing_events(dir.path());
  // Open critical events are rare: within 8 records only some match.
  event_query q;
  q.state = event_state::open;
  q.severity = "critical";
  q.limit = 100;
  q.max_examined = 8;
  auto page = log->list_events(q);
  BOOST_REQUIRE(page);
  BOOST_TEST(page->examined == 8u);
  BOOST_TEST(page->events.size() < q.limit);
  BOOST_TEST(ids_of(*page) == expected_ids([](int i) {
               return i >= listing_count - 8 && i % 3 == 0 && i % 4 != 0 &&
                      i % 10 != 0;
             }));
  // The cursor is the last record read, matching or not.
  BOOST_REQUIRE(page->next);
  BOOST_TEST(*page->next == listing_event(listing_count - 8).id);
  // Followed, the cursors give every match once.
  std::size_t pages = 0;
  BOOST_TEST(all_pages(*log, q, &pages) == expected_ids([](int i) {
               return i % 3 == 0 && i % 4 != 0 && i % 10 != 0;
             }));
  BOOST_TEST(pages == std::size_t{(listing_count + 7) / 8});
  // A budget that runs out on the range's last record: no cursor.
  q = {};
  q.max_examined = 10;
  q.since = listing_t0 + 50 * 1000;
  page = log->list_events(q);
  BOOST_REQUIRE(page);
  BOOST_TEST(page->events.size() == 10u);
  BOOST_TEST(!page->next);
}

BOOST_AUTO_TEST_SUITE_END()
