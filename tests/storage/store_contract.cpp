// The store's contract: what every backend of storage::store keeps, tested
// through the interface alone, each case once per backend (the embedded
// RocksDB store in a directory of its own, and the PostgreSQL store in a
// fresh database of the test binary's one PostgreSQL). Cases about one
// backend's own layout stay with it (tests/storage/rocksdb_store_test.cpp,
// tests/postgres/).
#include "tests/storage/store_contract.hpp"

#include "common/ids.hpp"
#include "storage/log_fold.hpp"
#include "storage/store.hpp"

#include "tests/postgres/pg_fixture.hpp"
#include "tests/support/temp_dir.hpp"

#include <boost/test/unit_test.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

using namespace tocsin;
using namespace tocsin::storage;
using namespace tocsin::test::store_helpers;

namespace {

std::unique_ptr<store> opened_or_fail(result<std::unique_ptr<store>> s) {
  BOOST_TEST_REQUIRE(s.ok(), "opening the store failed: "
                                 << (s.ok() ? "" : s.error().message));
  return std::move(*s);
}

} // namespace

/// The RocksDB store, in a directory of its own. open(): the store there
/// (created by the first).
struct rocksdb_backend {
  tocsin::test::temp_dir dir;

  std::unique_ptr<store> open() {
    return opened_or_fail(open_store({.dir = dir.path().string()}));
  }
};

/// The PostgreSQL store, in a fresh database of the binary's PostgreSQL.
/// open(): the store in it (the schema created by the first).
struct postgres_backend {
  std::string url = tocsin::test::fresh_database(unique_name());

  std::unique_ptr<store> open() {
    return opened_or_fail(
        open_store({.kind = backend::postgres, .postgres_url = url}));
  }

private:
  static std::string unique_name() {
    static int made = 0;
    return "store_contract_" + std::to_string(++made);
  }
};

using backends = std::tuple<rocksdb_backend, postgres_backend>;

BOOST_AUTO_TEST_SUITE(store_contract)

// ---- Commits, the log, and the state folded from it
// ----------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(log_and_state)

BOOST_AUTO_TEST_CASE_TEMPLATE(commits_events_and_deliveries_and_reads_them_back,
                              B, backends) {
  B b;
  std::unique_ptr<store> log = b.open();
  event_record e{"evt_1", R"({"id":"evt_1"})", 1000, {"dlv_1", "dlv_2"}};
  changes ws;
  ws.event_accepted(e);
  ws.delivery_changed(make_delivery("dlv_1", "evt_1"),
                      record_kind::delivery_created);
  ws.delivery_changed(make_delivery("dlv_2", "evt_1"),
                      record_kind::delivery_created);
  BOOST_REQUIRE(log->commit(ws, durability::synced).ok());

  auto got = log->get_event("evt_1");
  BOOST_REQUIRE(got);
  BOOST_REQUIRE(*got);
  BOOST_TEST((*got)->body == e.body);
  BOOST_TEST((*got)->delivery_ids == e.delivery_ids);
  auto missing = log->get_event("evt_nope");
  BOOST_REQUIRE(missing);
  BOOST_TEST(!*missing);
  // Several at once: in the order asked for, a missing one as nothing.
  auto several = log->get_events({"evt_nope", "evt_1", "evt_1"});
  BOOST_REQUIRE(several);
  BOOST_REQUIRE(several->size() == 3u);
  BOOST_TEST(!(*several)[0]);
  BOOST_REQUIRE((*several)[1]);
  BOOST_TEST((*several)[1]->body == e.body);
  BOOST_REQUIRE((*several)[2]);
  BOOST_TEST((*several)[2]->id == "evt_1");

  BOOST_TEST(pending_ids(*log) == (std::vector<std::string>{"dlv_1", "dlv_2"}));

  auto recs = records(*log);
  BOOST_REQUIRE(recs.size() == 3u);
  BOOST_TEST(recs[0]["kind"] == "event.accepted");
  BOOST_TEST(recs[1]["kind"] == "delivery.created");
  BOOST_TEST(recs[1]["delivery_id"] == "dlv_1");
  BOOST_TEST(recs[0]["seq"].get<int>() + 1 == recs[1]["seq"].get<int>());
}

BOOST_AUTO_TEST_CASE_TEMPLATE(events_read_at_once_come_in_the_order_asked_for,
                              B, backends) {
  // Neighbours, gaps, ids before, between and after the stored ones,
  // prefixes of stored ones, repeats; written in two commits with the
  // store reopened between them.
  B b;
  auto body = [](int i) { return "{\"n\":" + std::to_string(i) + "}"; };
  auto id = [](int i) {
    char s[16];
    std::snprintf(s, sizeof s, "evt_%03d", i);
    return std::string{s};
  };
  for (int half : {0, 1}) {
    std::unique_ptr<store> log = b.open();
    changes ws;
    for (int i = half; i < 200; i += 2)
      ws.event_accepted(event_record{id(i), body(i), 1000, {}});
    BOOST_REQUIRE(log->commit(ws, durability::synced).ok());
  }
  std::unique_ptr<store> log = b.open();
  std::vector<std::string> ask{"evt_150", "evt_000", "evt_001", "evt_",
                               "evt_199", "evt_2",   "evt_040", "evt_150",
                               "evt_077", "evt_078", "evt_999", "evt_100"};
  for (int i = 120; i < 140; ++i)
    ask.push_back(id(i));
  auto got = log->get_events(ask);
  BOOST_REQUIRE(got);
  BOOST_REQUIRE(got->size() == ask.size());
  for (std::size_t i = 0; i < ask.size(); ++i) {
    auto one = log->get_event(ask[i]);
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
  BOOST_REQUIRE((*got)[0]);
  BOOST_TEST((*got)[0]->body == body(150));
}

BOOST_AUTO_TEST_CASE_TEMPLATE(state_changes_move_deliveries_between_indexes, B,
                              backends) {
  B b;
  std::unique_ptr<store> log = b.open();
  auto a = make_delivery("dlv_a", "evt_1");
  auto d = make_delivery("dlv_b", "evt_1");
  changes ws;
  ws.delivery_changed(a, record_kind::delivery_created);
  ws.delivery_changed(d, record_kind::delivery_created);
  BOOST_REQUIRE(log->commit(ws, durability::buffered).ok());

  a.state = delivery_state::delivered;
  d.state = delivery_state::dead_lettered;
  d.reason = "attempts_exhausted";
  d.attempts.push_back(attempt{1, 1000, 1100, 503, 12.5, "busy", "", ""});
  ws.clear();
  ws.delivery_changed(a, record_kind::delivery_delivered);
  ws.delivery_changed(d, record_kind::delivery_dead_lettered);
  BOOST_REQUIRE(log->commit(ws, durability::buffered).ok());

  BOOST_TEST(pending_ids(*log).empty());
  auto dead_letters = log->list_dead_letters("", 10);
  BOOST_REQUIRE(dead_letters);
  BOOST_REQUIRE(dead_letters->size() == 1u);
  BOOST_TEST((*dead_letters)[0].id == "dlv_b");
  BOOST_TEST((*dead_letters)[0].reason == "attempts_exhausted");
  BOOST_REQUIRE((*dead_letters)[0].attempts.size() == 1u);
  BOOST_TEST((*dead_letters)[0].attempts[0].status == 503);
  BOOST_TEST((*dead_letters)[0].attempts[0].response == "busy");

  // Back to pending (a replay): out of the dead letters again.
  d.state = delivery_state::pending;
  ws.clear();
  ws.delivery_changed(d, record_kind::delivery_replayed);
  BOOST_REQUIRE(log->commit(ws, durability::buffered).ok());
  BOOST_TEST(log->list_dead_letters("", 10)->empty());
  BOOST_TEST(pending_ids(*log) == std::vector<std::string>{"dlv_b"});
}

BOOST_AUTO_TEST_CASE_TEMPLATE(attempts_keep_the_node_that_made_them, B,
                              backends) {
  B b;
  std::unique_ptr<store> log = b.open();
  auto d = make_delivery("dlv_a", "evt_1");
  d.attempts.push_back(attempt{1, 1000, 1100, 503, 12.5, "busy", "", ""});
  d.attempts.push_back(attempt{2, 1200, 1300, 503, 10, "busy", "", "node-b"});
  changes ws;
  ws.delivery_changed(d, record_kind::attempt_finished);
  BOOST_REQUIRE(log->commit(ws, durability::synced).ok());
  auto got = log->get_delivery("dlv_a");
  BOOST_REQUIRE(got);
  BOOST_REQUIRE(*got);
  BOOST_REQUIRE((*got)->attempts.size() == 2u);
  BOOST_TEST((*got)->attempts[0].node.empty());
  BOOST_TEST((*got)->attempts[1].node == "node-b");
  auto recs = records(*log);
  BOOST_REQUIRE(recs.size() == 1u);
  BOOST_TEST(recs[0]["attempt"]["node"] == "node-b");
}

BOOST_AUTO_TEST_CASE_TEMPLATE(dead_letters_page_in_id_order, B, backends) {
  B b;
  std::unique_ptr<store> log = b.open();
  changes ws;
  for (auto id : {"dlv_3", "dlv_1", "dlv_2"}) {
    auto d = make_delivery(id, "evt");
    d.state = delivery_state::dead_lettered;
    ws.delivery_changed(d, record_kind::delivery_dead_lettered);
  }
  BOOST_REQUIRE(log->commit(ws, durability::buffered).ok());
  auto first = log->list_dead_letters("", 2);
  BOOST_REQUIRE(first);
  BOOST_REQUIRE(first->size() == 2u);
  BOOST_TEST((*first)[0].id == "dlv_1");
  BOOST_TEST((*first)[1].id == "dlv_2");
  auto rest = log->list_dead_letters("dlv_2", 2);
  BOOST_REQUIRE(rest);
  BOOST_REQUIRE(rest->size() == 1u);
  BOOST_TEST((*rest)[0].id == "dlv_3");
}

BOOST_AUTO_TEST_CASE_TEMPLATE(survives_reopen_and_continues_the_sequence, B,
                              backends) {
  B b;
  {
    std::unique_ptr<store> log = b.open();
    changes ws;
    ws.delivery_changed(make_delivery("dlv_1", "evt_1"),
                        record_kind::delivery_created);
    ws.noted(record_kind::endpoint_flagged, R"({"endpoint_id":"ep"})");
    BOOST_REQUIRE(log->commit(ws, durability::synced).ok());
  }
  std::unique_ptr<store> log = b.open();
  BOOST_TEST(log->last_sequence() == 2u);
  changes ws;
  ws.noted(record_kind::endpoint_flagged, R"({"endpoint_id":"ep2"})");
  BOOST_REQUIRE(log->commit(ws, durability::synced).ok());
  auto recs = records(*log);
  BOOST_REQUIRE(recs.size() == 3u);
  BOOST_TEST(recs[2]["seq"] == 3);
  BOOST_TEST(recs[2]["endpoint_id"] == "ep2");
  BOOST_TEST(pending_ids(*log).size() == 1u);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(folding_the_log_gives_the_stored_state, B,
                              backends) {
  B b;
  std::unique_ptr<store> log = b.open();
  auto commit = [&](auto&& fill) {
    changes ws;
    fill(ws);
    BOOST_REQUIRE(log->commit(ws, durability::buffered).ok());
  };
  auto a = make_delivery("dlv_a", "evt_1");
  auto d = make_delivery("dlv_b", "evt_1");
  commit([&](changes& ws) {
    ws.delivery_created(a);
    ws.delivery_created(d);
  });
  for (int n = 1; n <= 2; ++n) {
    a.attempts.push_back(attempt{n, 1000, 0, 0, 0, "", "", ""});
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
  d.attempts.push_back(attempt{1, 1000, 1100, 400, 1, "no", "", ""});
  d.state = delivery_state::dead_lettered;
  d.reason = "rejected_http_400";
  commit([&](changes& ws) {
    ws.delivery_changed(d, record_kind::attempt_finished, pending_at_1000);
  });

  auto folded = fold_log(*log);
  BOOST_REQUIRE(folded);
  BOOST_REQUIRE(folded->size() == 2u);
  BOOST_TEST((folded->at("dlv_a").state == delivery_state::delivered));
  BOOST_TEST(folded->at("dlv_a").attempts == 2);
  BOOST_TEST((folded->at("dlv_b").state == delivery_state::dead_lettered));
  BOOST_TEST(folded->at("dlv_b").reason == "rejected_http_400");
  // And the stored state followed the transitions.
  BOOST_TEST(pending_ids(*log).empty());
  BOOST_TEST(log->list_dead_letters("", 10)->size() == 1u);
  auto stored = log->get_delivery("dlv_a");
  BOOST_REQUIRE(stored);
  BOOST_REQUIRE(*stored);
  BOOST_TEST(((*stored)->state == delivery_state::delivered));
  BOOST_TEST((*stored)->attempts.size() == 2u);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(
    endpoint_definitions_are_logged_and_survive_reopening, B, backends) {
  B b;
  {
    std::unique_ptr<store> log = b.open();
    changes ws;
    ws.endpoint_put("b", R"({"id":"b","v":1})", record_kind::endpoint_created);
    ws.endpoint_put("a", R"({"id":"a","v":1})", record_kind::endpoint_created);
    BOOST_REQUIRE(log->commit(ws, durability::synced).ok());
    changes change;
    change.endpoint_put("a", R"({"id":"a","v":2})",
                        record_kind::endpoint_updated);
    change.endpoint_deleted("b");
    BOOST_REQUIRE(log->commit(change, durability::synced).ok());
  }
  std::unique_ptr<store> log = b.open();
  auto all = log->list_endpoints();
  BOOST_REQUIRE(all);
  BOOST_REQUIRE(all->size() == 1u);
  BOOST_TEST((*all)[0].first == "a");
  BOOST_TEST((*all)[0].second == R"({"id":"a","v":2})");
  auto a = log->get_endpoint("a");
  BOOST_REQUIRE(a);
  BOOST_REQUIRE(*a);
  BOOST_TEST(**a == R"({"id":"a","v":2})");
  auto gone = log->get_endpoint("b");
  BOOST_REQUIRE(gone);
  BOOST_TEST(!*gone);
  // Every change is in the log, with the definition it stored.
  auto recs = records(*log);
  BOOST_REQUIRE(recs.size() == 4u);
  BOOST_TEST(recs[2]["kind"] == "endpoint.updated");
  BOOST_TEST(recs[2]["endpoint_id"] == "a");
  BOOST_TEST(recs[2]["endpoint"]["v"] == 2);
  BOOST_TEST(recs[3]["kind"] == "endpoint.deleted");
  BOOST_TEST(recs[3]["endpoint_id"] == "b");
}

BOOST_AUTO_TEST_CASE_TEMPLATE(sequence_numbers_follow_commit_order_without_gaps,
                              B, backends) {
  // Four writers commit at once while a reader tails the log by sequence:
  // whenever it asks how far the log goes, every record up to there is
  // already readable, in order, each once.
  B b;
  std::unique_ptr<store> opened = b.open();
  auto& log = *opened;
  constexpr int writers = 4, commits = 300;
  std::atomic<int> running{writers};
  std::atomic<bool> broken{false};
  std::atomic<int> failed_commits{0};
  std::string why;
  std::thread reader([&] {
    std::uint64_t seen = 0;
    for (;;) {
      bool last_round = running == 0;
      auto upto = log.last_sequence();
      auto st =
          log.read_log(seen + 1, [&](std::uint64_t seq, std::string_view) {
            if (seq > upto)
              return false;
            if (seq != seen + 1) {
              broken = true;
              why = "after " + std::to_string(seen) + " came " +
                    std::to_string(seq);
              return false;
            }
            seen = seq;
            return true;
          });
      if (!st.ok()) {
        broken = true;
        why = "read_log failed: " + st.error().message;
        return;
      }
      if (broken)
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
          ws.noted(record_kind::endpoint_flagged, R"({"endpoint_id":"ep"})");
        if (!log.commit(ws, i % 10 == 0 ? durability::synced
                                        : durability::buffered)) {
          ++failed_commits; // no assertion off the test's thread
          break;
        }
      }
      --running;
    });
  for (auto& t : threads)
    t.join();
  reader.join();
  BOOST_TEST(failed_commits.load() == 0);
  BOOST_TEST(!broken, why);
  auto expected = writers * (commits + (commits + 2) / 3);
  BOOST_TEST(log.last_sequence() == static_cast<std::uint64_t>(expected));
  BOOST_TEST(records(log).size() == static_cast<std::size_t>(expected));
}

BOOST_AUTO_TEST_CASE_TEMPLATE(
    concurrent_committers_and_a_tailing_reader_see_every_record_once, B,
    backends) {
  // Two threads commit sets of several records each, synced, while a third
  // tails the log with read_log from the last sequence number it saw (not
  // asking last_sequence() how far to read): it sees every record exactly
  // once, numbered one after the other with no gap, and each commit's
  // records together, in the set's order (never a part of a commit in one
  // read and the rest in the next); what a record it read says was created
  // is stored; each commit returned the number of its own last record; and
  // last_sequence() ends at the count.
  B b;
  std::unique_ptr<store> opened = b.open();
  auto& log = *opened;
  constexpr int writers = 2, commits = 100;
  // Commit c of writer w: event "evt_<w>_<c>" with 1 + c % 10 deliveries
  // "dlv_<w>_<c>_<j>", their creation, and a note naming w and c.
  auto deliveries_of = [](int c) { return 1 + c % 10; };
  auto records_of = [&](int c) { return 2 + deliveries_of(c); };
  std::atomic<int> running{writers};
  std::vector<std::vector<std::uint64_t>> returned(
      writers, std::vector<std::uint64_t>(commits, 0));
  std::vector<std::string> writer_failed(writers);
  std::vector<std::thread> threads;

  // The reader's view; read after it is joined.
  std::uint64_t seen = 0;
  std::size_t passes = 0;
  std::string broken;
  std::map<std::pair<int, int>, std::uint64_t> last_seq_of; // of (w, c)
  std::vector<std::string> created_read;
  std::thread reader([&] {
    std::vector<int> next_commit(writers, 0); // per writer, in its order
    int w = -1, c = -1, part = 0; // the commit being read, its next part
    std::vector<std::string> ids_this_pass;
    auto fail = [&](std::uint64_t seq, std::string why) {
      broken = "record " + std::to_string(seq) + ": " + why;
      return false;
    };
    // (writer, commit, part) of a record, from what it names.
    auto place_of = [&](const nlohmann::json& r) {
      std::string kind = r.value("kind", "");
      auto numbers = [](const std::string& id, std::size_t skip) {
        std::vector<int> out;
        std::size_t at = skip;
        while (at < id.size()) {
          auto end = id.find('_', at);
          out.push_back(std::stoi(id.substr(at, end - at)));
          at = end == std::string::npos ? id.size() : end + 1;
        }
        return out;
      };
      if (kind == "event.accepted") {
        auto n = numbers(r.at("event_id").get<std::string>(), 4);
        return std::tuple{n.at(0), n.at(1), 0};
      }
      if (kind == "delivery.created") {
        auto n = numbers(r.at("delivery_id").get<std::string>(), 4);
        return std::tuple{n.at(0), n.at(1), 1 + n.at(2)};
      }
      if (kind == "endpoint.flagged")
        return std::tuple{r.at("writer").get<int>(), r.at("commit").get<int>(),
                          records_of(r.at("commit").get<int>()) - 1};
      throw std::runtime_error{"a record of kind " + kind};
    };
    for (;;) {
      bool last_round = running == 0;
      ids_this_pass.clear();
      auto st = log.read_log(seen + 1, [&](std::uint64_t seq,
                                           std::string_view text) {
        if (seq != seen + 1)
          return fail(seq, "came after " + std::to_string(seen));
        seen = seq;
        try {
          auto r = nlohmann::json::parse(text);
          if (r.value("seq", std::uint64_t{0}) != seq)
            return fail(seq,
                        "says it is " + (r.contains("seq") ? r["seq"].dump()
                                                           : "no record"));
          auto [rw, rc, rpart] = place_of(r);
          if (w < 0) { // a commit starts
            if (rw < 0 || rw >= writers || rpart != 0 ||
                rc != next_commit[static_cast<std::size_t>(rw)])
              return fail(seq, "does not start writer " + std::to_string(rw) +
                                   "'s next commit");
            w = rw;
            c = rc;
          } else if (rw != w || rc != c || rpart != part) {
            return fail(seq, "within commit " + std::to_string(w) + "/" +
                                 std::to_string(c) + " comes one of " +
                                 std::to_string(rw) + "/" + std::to_string(rc));
          }
          if (r.value("kind", "") == "delivery.created")
            ids_this_pass.push_back(r.at("delivery_id").get<std::string>());
          if (++part == records_of(c)) { // the commit ends
            last_seq_of[{w, c}] = seq;
            ++next_commit[static_cast<std::size_t>(w)];
            w = c = -1;
            part = 0;
          }
        } catch (const std::exception& e) {
          return fail(seq, std::string{"unreadable: "} + e.what());
        }
        return true;
      });
      ++passes;
      if (!st.ok())
        broken = "read_log failed: " + st.error().message;
      else if (broken.empty() && w >= 0)
        broken = "a read ended within commit " + std::to_string(w) + "/" +
                 std::to_string(c) + " at record " + std::to_string(seen) +
                 ": its records became readable apart";
      // The deliveries whose creation it read are stored (read after the
      // pass: read_log's callback calls nothing of the store).
      for (auto& id : ids_this_pass) {
        auto d = log.get_delivery(id);
        if (!d || !*d) {
          broken = "delivery.created of " + id + " read, but " +
                   (d ? std::string{"the delivery is not stored"}
                      : d.error().message);
          break;
        }
        created_read.push_back(id);
      }
      if (!broken.empty() || last_round)
        return;
      std::this_thread::yield();
    }
  });
  for (int w = 0; w < writers; ++w)
    threads.emplace_back([&, w] {
      auto tag = [&](int c) {
        return std::to_string(w) + "_" + std::to_string(c);
      };
      for (int c = 0; c < commits; ++c) {
        event_record e{
            "evt_" + tag(c), R"({"id":"evt_)" + tag(c) + R"("})", 1000, {}};
        for (int j = 0; j < deliveries_of(c); ++j)
          e.delivery_ids.push_back("dlv_" + tag(c) + "_" + std::to_string(j));
        changes ws;
        ws.event_accepted(e);
        for (auto& id : e.delivery_ids)
          ws.delivery_created(make_delivery(id, e.id));
        ws.noted(
            record_kind::endpoint_flagged,
            nlohmann::json{{"endpoint_id", "ep"}, {"writer", w}, {"commit", c}}
                .dump());
        auto seq = log.commit(ws, durability::synced);
        if (!seq) { // no assertion off the test's thread
          writer_failed[static_cast<std::size_t>(w)] = seq.error().message;
          break;
        }
        returned[static_cast<std::size_t>(w)][static_cast<std::size_t>(c)] =
            *seq;
      }
      --running;
    });
  for (auto& t : threads)
    t.join();
  reader.join();

  for (int w = 0; w < writers; ++w)
    BOOST_TEST(writer_failed[static_cast<std::size_t>(w)].empty(),
               "writer " << w << ": "
                         << writer_failed[static_cast<std::size_t>(w)]);
  BOOST_TEST_REQUIRE(broken.empty(), broken);
  std::uint64_t total = 0;
  std::size_t created = 0;
  for (int c = 0; c < commits; ++c) {
    total += static_cast<std::uint64_t>(writers * records_of(c));
    created += static_cast<std::size_t>(writers * deliveries_of(c));
  }
  BOOST_TEST(seen == total);
  BOOST_TEST(log.last_sequence() == total);
  BOOST_TEST(last_seq_of.size() == std::size_t{writers * commits});
  for (int w = 0; w < writers; ++w)
    for (int c = 0; c < commits; ++c) {
      auto it = last_seq_of.find({w, c});
      if (it != last_seq_of.end())
        BOOST_TEST(returned[static_cast<std::size_t>(w)]
                           [static_cast<std::size_t>(c)] == it->second,
                   "commit " << w << "/" << c << " returned");
    }
  std::set<std::string> distinct(created_read.begin(), created_read.end());
  BOOST_TEST(distinct.size() == created_read.size());
  BOOST_TEST(created_read.size() == created);
  BOOST_TEST_MESSAGE("the reader read the log in " << passes << " passes");
}

BOOST_AUTO_TEST_CASE_TEMPLATE(dead_letters_are_indexed_per_endpoint_by_time, B,
                              backends) {
  B b;
  std::unique_ptr<store> opened = b.open();
  auto& log = *opened;
  auto dead_letter = [](std::string id, std::string ep, unix_ms at) {
    auto d = make_delivery(std::move(id), "evt");
    d.endpoint_id = std::move(ep);
    d.state = delivery_state::dead_lettered;
    d.finished_at = at;
    return d;
  };
  changes ws;
  ws.delivery_changed(dead_letter("dlv_1", "a", 3000),
                      record_kind::delivery_dead_lettered);
  ws.delivery_changed(dead_letter("dlv_2", "b", 1000),
                      record_kind::delivery_dead_lettered);
  ws.delivery_changed(dead_letter("dlv_3", "a", 1000),
                      record_kind::delivery_dead_lettered);
  ws.delivery_changed(dead_letter("dlv_4", "a", 2000),
                      record_kind::delivery_dead_lettered);
  ws.delivery_changed(dead_letter("dlv_5", "ab", 500),
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
  // A replay takes it out of both listings.
  auto back = dead_letter("dlv_4", "a", 2000);
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

BOOST_AUTO_TEST_CASE_TEMPLATE(
    pending_deliveries_page_per_endpoint_in_their_places, B, backends) {
  B b;
  std::unique_ptr<store> opened = b.open();
  auto& log = *opened;
  // Endpoint "a" (and "ab", whose id starts with a's) with dues out of id
  // order.
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
  BOOST_REQUIRE(page->deliveries.size() == 2u);
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
  // ones leave the line.
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
  ws.delivery_changed(a[3],
                      record_kind::attempt_finished); // read from the store
  BOOST_REQUIRE(log.commit(ws, durability::buffered).ok());
  BOOST_TEST(pending_ids(log, "a") == (v{"dlv_1", "dlv_2"}),
             boost::test_tools::per_element());
  page = log.line_of("a", {}, 10, {});
  BOOST_REQUIRE(page);
  BOOST_TEST(page->places == (std::vector<unix_ms>{5000, 9000}),
             boost::test_tools::per_element());
  BOOST_REQUIRE(!page->deliveries.empty());
  BOOST_TEST(page->deliveries[0].next_attempt_at == 20000);
  BOOST_TEST(page->as_of == log.last_sequence());
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

BOOST_AUTO_TEST_CASE_TEMPLATE(
    backlog_counts_pending_deliveries_and_dead_letters, B, backends) {
  // Per endpoint ("ab", whose id starts with a's, apart), through
  // creation, retries that move a delivery in its line, delivery,
  // dead-lettering, a replay and a reopening. `oldest_pending` is when the
  // oldest pending delivery was created (ids are made at that time).
  B b;
  constexpr unix_ms t0 = 1'800'000'000'000;
  auto made = [](std::string ep, unix_ms created) {
    delivery d;
    d.id = id_floor("dlv", created);
    d.event_id = "evt_1";
    d.endpoint_id = std::move(ep);
    d.created_at = created;
    d.next_attempt_at = created;
    return d;
  };
  auto backlog = [](store& log, std::string_view ep) {
    auto got = log.backlog_of(ep);
    BOOST_REQUIRE(got);
    return std::tuple{got->pending, got->oldest_pending, got->dead_letters};
  };
  using counts = std::tuple<std::size_t, unix_ms, std::size_t>;
  auto a1 = made("a", t0 + 1000), a2 = made("a", t0 + 2000),
       a3 = made("a", t0 + 3000), a4 = made("a", t0 + 500),
       ab = made("ab", t0 + 100), ab_dead = made("ab", t0 + 50);
  {
    std::unique_ptr<store> log = b.open();
    BOOST_TEST((backlog(*log, "a") == counts{0, 0, 0}));
    changes ws;
    for (auto* d : {&a3, &a1, &a2, &ab})
      ws.delivery_created(*d);
    a4.state = delivery_state::dead_lettered;
    a4.finished_at = t0 + 600;
    ws.delivery_created(a4);
    ab_dead.state = delivery_state::dead_lettered;
    ab_dead.finished_at = t0 + 60;
    ws.delivery_created(ab_dead);
    BOOST_REQUIRE(log->commit(ws, durability::synced).ok());
    BOOST_TEST((backlog(*log, "a") == counts{3, t0 + 1000, 1}));
    BOOST_TEST((backlog(*log, "ab") == counts{1, t0 + 100, 1}));
    BOOST_TEST((backlog(*log, "nobody") == counts{0, 0, 0}));

    // Retried twice, later each time: still one pending delivery.
    for (unix_ms due : {t0 + 10'000, t0 + 20'000}) {
      auto was = standing_of(a1);
      a1.next_attempt_at = due;
      ws.clear();
      ws.delivery_changed(a1, record_kind::delivery_retry_scheduled, was);
      BOOST_REQUIRE(log->commit(ws, durability::buffered).ok());
    }
    BOOST_TEST((backlog(*log, "a") == counts{3, t0 + 1000, 1}));
    // The oldest delivered, another dead-lettered (where it stood looked
    // up by the store).
    auto was = standing_of(a1);
    a1.state = delivery_state::delivered;
    a1.finished_at = t0 + 30'000;
    a2.state = delivery_state::dead_lettered;
    a2.finished_at = t0 + 30'000;
    ws.clear();
    ws.delivery_changed(a1, record_kind::attempt_finished, was);
    ws.delivery_changed(a2, record_kind::delivery_dead_lettered);
    BOOST_REQUIRE(log->commit(ws, durability::buffered).ok());
    BOOST_TEST((backlog(*log, "a") == counts{1, t0 + 3000, 2}));
    BOOST_TEST((backlog(*log, "ab") == counts{1, t0 + 100, 1}));
    // A dead letter replayed: pending again, the oldest now.
    a4.state = delivery_state::pending;
    a4.finished_at = 0;
    a4.next_attempt_at = t0 + 40'000;
    ws.clear();
    ws.delivery_changed(a4, record_kind::delivery_replayed,
                        standing{delivery_state::dead_lettered, 0});
    BOOST_REQUIRE(log->commit(ws, durability::buffered).ok());
    BOOST_TEST((backlog(*log, "a") == counts{2, t0 + 500, 1}));
  }
  std::unique_ptr<store> log = b.open();
  BOOST_TEST((backlog(*log, "a") == counts{2, t0 + 500, 1}));
  BOOST_TEST((backlog(*log, "ab") == counts{1, t0 + 100, 1}));
}

BOOST_AUTO_TEST_CASE_TEMPLATE(idempotency_keys_read_back_as_recorded, B,
                              backends) {
  // Keys as clients send them (any printable text), the ids in their
  // order, when, and the digest; a key recorded again says the newest.
  B b;
  const std::string odd = R"(key "with" quotes, \ and ü / ' ;--)";
  const std::string longest(255, 'k');
  {
    std::unique_ptr<store> log = b.open();
    auto none = log->get_idempotency_key("k1");
    BOOST_REQUIRE(none);
    BOOST_TEST(!*none);
    changes ws;
    ws.idempotency_key_used("k1", {{"evt_2", "evt_1"}, 1234, "ab12"});
    ws.idempotency_key_used(odd, {{"evt_3"}, 5678, ""});
    ws.idempotency_key_used(longest, {{}, 9, "ff"});
    BOOST_REQUIRE(log->commit(ws, durability::synced).ok());
    ws.clear();
    ws.idempotency_key_used("k2", {{"evt_4"}, 1, "00"});
    BOOST_REQUIRE(log->commit(ws, durability::synced).ok());
    ws.clear();
    ws.idempotency_key_used("k2", {{"evt_5", "evt_6"}, 2, "01"});
    BOOST_REQUIRE(log->commit(ws, durability::synced).ok());
  }
  std::unique_ptr<store> log = b.open();
  auto read = [&](const std::string& key) {
    auto got = log->get_idempotency_key(key);
    BOOST_REQUIRE(got);
    BOOST_REQUIRE_MESSAGE(got->has_value(), "key " << key);
    return **got;
  };
  using v = std::vector<std::string>;
  auto k1 = read("k1");
  BOOST_TEST(k1.ids == (v{"evt_2", "evt_1"}), boost::test_tools::per_element());
  BOOST_TEST(k1.at == 1234);
  BOOST_TEST(k1.digest == "ab12");
  auto k_odd = read(odd);
  BOOST_TEST(k_odd.ids == (v{"evt_3"}), boost::test_tools::per_element());
  BOOST_TEST(k_odd.at == 5678);
  BOOST_TEST(k_odd.digest.empty());
  auto k_long = read(longest);
  BOOST_TEST(k_long.ids.empty());
  BOOST_TEST(k_long.at == 9);
  BOOST_TEST(k_long.digest == "ff");
  auto k2 = read("k2");
  BOOST_TEST(k2.ids == (v{"evt_5", "evt_6"}), boost::test_tools::per_element());
  BOOST_TEST(k2.at == 2);
  BOOST_TEST(k2.digest == "01");
  // Only the whole key finds it.
  for (std::string other : {"k", "k10", "K1", ""}) {
    auto got = log->get_idempotency_key(other);
    BOOST_REQUIRE(got);
    BOOST_TEST(!*got, "key " << other);
  }
}

BOOST_AUTO_TEST_SUITE_END() // log_and_state

// ---- Retention
// ----------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(retention)

BOOST_AUTO_TEST_CASE_TEMPLATE(
    retention_removes_events_once_all_their_deliveries_finished_before_the_cutoff,
    B, backends) {
  B b;
  std::unique_ptr<store> log = b.open();
  auto& l = *log;
  commit_event(l, "evt_1", {{"dlv_1", delivered, 1000}, {"dlv_2", dead, 2000}});
  commit_event(l, "evt_2", {{"dlv_3", delivered, 1500}, {"dlv_4", pending, 0}});
  commit_event(l, "evt_3", {{"dlv_5", delivered, 5000}});
  commit_event(l, "evt_4", {{"dlv_6", dead, 2500}});
  BOOST_TEST(l.expired_before() == 0);
  // evt_3 was an escalation derived from evt_1 and evt_2.
  changes links;
  links.escalation_linked("evt_1", "evt_3");
  links.escalation_linked("evt_2", "evt_3");
  BOOST_REQUIRE(l.commit(links, durability::buffered));
  BOOST_TEST(*l.escalations_of("evt_1") == std::vector<std::string>{"evt_3"});
  // evt_4, an escalation as escalation_recorded records one: its members
  // (real ids, packed) and its group's record go with it.
  auto a = new_id("evt"), c = new_id("evt");
  changes rec;
  rec.counted_in_group(a, "r", "g");
  rec.counted_in_group(c, "r", "g");
  rec.escalation_recorded("evt_4", "r", "g", now_ms(), a + "\n" + c + "\n");
  BOOST_REQUIRE(l.commit(rec, durability::buffered));
  BOOST_TEST(*l.members_of("evt_4") == (std::vector<std::string>{a, c}));
  BOOST_TEST(*l.escalations_of(c) == std::vector<std::string>{"evt_4"});

  // One delivery looked at per call: the pass comes back (`more`) until
  // done.
  int calls = 0;
  auto x = expire_all(l, 3000, 1, &calls);
  BOOST_TEST(calls > 1);
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
  BOOST_TEST(l.escalations_of(c)->empty());
  // Dead letters go from both listings.
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

BOOST_AUTO_TEST_CASE_TEMPLATE(
    a_replayed_dead_letter_is_kept_until_it_finishes_again, B, backends) {
  B b;
  std::unique_ptr<store> log = b.open();
  auto& l = *log;
  commit_event(l, "evt_1", {{"dlv_1", dead, 1000}});
  // Replayed: pending again.
  auto d = make_delivery("dlv_1", "evt_1");
  changes ws;
  ws.delivery_changed(d, record_kind::delivery_replayed, standing{dead, 0});
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

BOOST_AUTO_TEST_CASE_TEMPLATE(
    retention_expires_idempotency_keys_and_old_log_records, B, backends) {
  B b;
  {
    std::unique_ptr<store> log = b.open();
    auto& l = *log;
    changes ws;
    ws.idempotency_key_used("old", {{"evt_1"}, 1000, "d1"});
    ws.idempotency_key_used("new", {{"evt_2"}, 5000, "d2"});
    BOOST_REQUIRE(l.commit(ws, durability::buffered));
    commit_event(l, "evt_3", {{"dlv_1", pending, 0}});
    auto seq = l.last_sequence();
    BOOST_TEST(seq == 4u);

    // Log records go by when they were written (now): a cutoff in the
    // future takes them (a backend may keep the newest, to carry the
    // sequence on).
    auto x = expire_all(l, now_ms() + 60000, 100);
    BOOST_TEST(x.idempotency_keys == 2u);
    BOOST_TEST(!l.get_idempotency_key("old")->has_value());
    BOOST_TEST(!l.get_idempotency_key("new")->has_value());
    auto recs = records(l);
    BOOST_TEST(x.log_records + recs.size() == seq);
    BOOST_TEST(recs.size() <= 1u);
    if (!recs.empty())
      BOOST_TEST(recs[0]["seq"] == seq);
    // The pending delivery is not retention's to remove.
    BOOST_TEST(has_delivery(l, "dlv_1"));
    BOOST_TEST(l.last_sequence() == seq);
  }
  // The sequence goes on from where it was, not from what is left.
  std::unique_ptr<store> log = b.open();
  BOOST_TEST(log->last_sequence() == 4u);
  commit_event(*log, "evt_4", {{"dlv_2", pending, 0}});
  BOOST_TEST(log->last_sequence() == 6u);
  auto recs = records(*log);
  BOOST_REQUIRE(recs.size() >= 2u);
  BOOST_TEST(recs[recs.size() - 2]["seq"] == 5);
  BOOST_TEST(recs.back()["seq"] == 6);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(a_cutoff_in_the_past_keeps_newer_keys_and_records,
                              B, backends) {
  B b;
  std::unique_ptr<store> log = b.open();
  auto& l = *log;
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

BOOST_AUTO_TEST_SUITE_END() // retention

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

/// The listing's events, committed in two halves with the store reopened
/// between them (RocksDB: the first half in a table file, the second in
/// the memtable); the store.
template <class Backend>
std::unique_ptr<storage::store> open_with_listing_events(Backend& b) {
  for (int half : {0, 1}) {
    std::unique_ptr<store> log = b.open();
    changes ws;
    for (int i = half * listing_count / 2; i < (half + 1) * listing_count / 2;
         ++i)
      ws.event_accepted(listing_event(i));
    BOOST_REQUIRE(log->commit(ws, durability::synced).ok());
    if (half == 1)
      return log;
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

BOOST_AUTO_TEST_CASE_TEMPLATE(events_are_listed_newest_first_with_their_fields,
                              B, backends) {
  B b;
  std::unique_ptr<store> log = open_with_listing_events(b);
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

BOOST_AUTO_TEST_CASE_TEMPLATE(each_filter_keeps_only_what_it_names, B,
                              backends) {
  B b;
  std::unique_ptr<store> log = open_with_listing_events(b);
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

BOOST_AUTO_TEST_CASE_TEMPLATE(since_and_until_bound_the_acceptance_time, B,
                              backends) {
  B b;
  std::unique_ptr<store> log = open_with_listing_events(b);
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

BOOST_AUTO_TEST_CASE_TEMPLATE(pages_cover_every_event_exactly_once, B,
                              backends) {
  B b;
  std::unique_ptr<store> log = open_with_listing_events(b);
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

BOOST_AUTO_TEST_CASE_TEMPLATE(the_scan_budget_returns_what_matched_and_a_cursor,
                              B, backends) {
  B b;
  std::unique_ptr<store> log = open_with_listing_events(b);
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

BOOST_AUTO_TEST_CASE_TEMPLATE(events_since_a_time_are_visited_in_id_order, B,
                              backends) {
  // for_each_event_since: every event whose id was made at or after the
  // time, in id order, until the callback says stop.
  B b;
  std::unique_ptr<store> log = open_with_listing_events(b);
  auto visited = [&](unix_ms since, std::size_t stop_after) {
    std::vector<std::string> out;
    auto st = log->for_each_event_since(since, [&](const event_record& e) {
      out.push_back(e.id);
      return out.size() < stop_after;
    });
    BOOST_REQUIRE(st.ok());
    return out;
  };
  auto oldest_first = [](const std::function<bool(int)>& keep) {
    auto ids = expected_ids(keep);
    std::reverse(ids.begin(), ids.end());
    return ids;
  };
  BOOST_TEST(visited(0, 1000) == oldest_first([](int) { return true; }),
             boost::test_tools::per_element());
  BOOST_TEST(visited(listing_t0 + 10 * 1000, 1000) ==
                 oldest_first([](int i) { return i >= 10; }),
             boost::test_tools::per_element());
  // One millisecond after an event was made: from the next one on.
  BOOST_TEST(visited(listing_t0 + 10 * 1000 + 1, 1000) ==
                 oldest_first([](int i) { return i >= 11; }),
             boost::test_tools::per_element());
  BOOST_TEST(visited(listing_t0 + 20 * 1000, 3) ==
                 oldest_first([](int i) { return i >= 20 && i < 23; }),
             boost::test_tools::per_element());
  BOOST_TEST(visited(listing_t0 + listing_count * 1000, 1000).empty());
  // The events as stored, answers and all.
  std::optional<event_record> e40;
  BOOST_REQUIRE(log->for_each_event_since(listing_t0 + 40 * 1000,
                                          [&](const event_record& e) {
                                            e40 = e;
                                            return false;
                                          })
                    .ok());
  BOOST_REQUIRE(e40);
  BOOST_TEST(e40->body == listing_event(40).body);
  BOOST_TEST((e40->state() == event_state::resolved));
  BOOST_TEST(e40->accepted_at == listing_event(40).accepted_at);
}

BOOST_AUTO_TEST_SUITE_END() // event_listing

BOOST_AUTO_TEST_SUITE_END() // store_contract
