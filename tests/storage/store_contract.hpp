// What the store's tests use, in the terms of storage::store alone: the
// contract suite (store_contract.cpp, every case against each backend) and
// the RocksDB store's own cases (rocksdb_store_test.cpp).
#pragma once

#include "storage/store.hpp"

#include <boost/test/unit_test.hpp>

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace tocsin::test::store_helpers {

using namespace tocsin::storage;

/// A pending delivery of endpoint "ep", created and due at 1000.
inline delivery make_delivery(std::string id, std::string event_id) {
  delivery d;
  d.id = std::move(id);
  d.event_id = std::move(event_id);
  d.endpoint_id = "ep";
  d.created_at = 1000;
  d.next_attempt_at = 1000;
  return d;
}

/// Every log record, parsed.
inline std::vector<nlohmann::json> records(store& log) {
  std::vector<nlohmann::json> out;
  auto st = log.read_log(0, [&](std::uint64_t, std::string_view r) {
    out.push_back(nlohmann::json::parse(r));
    return true;
  });
  BOOST_REQUIRE(st.ok());
  return out;
}

/// Every pending delivery of `endpoint` in line order, read a page of
/// `limit` at a time.
inline std::vector<std::string>
pending_ids(store& log, std::string endpoint = "ep", std::size_t limit = 2) {
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

constexpr standing pending_at_1000{delivery_state::pending, 1000};

constexpr auto delivered = delivery_state::delivered;
constexpr auto dead = delivery_state::dead_lettered;
constexpr auto pending = delivery_state::pending;

/// Commits an event with one delivery per (id, state, finished_at).
inline void commit_event(
    store& log, const std::string& event_id,
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

inline bool has_event(store& log, const std::string& id) {
  auto e = log.get_event(id);
  BOOST_REQUIRE(e);
  return e->has_value();
}

inline bool has_delivery(store& log, const std::string& id) {
  auto d = log.get_delivery(id);
  BOOST_REQUIRE(d);
  return d->has_value();
}

/// expire() until it has nothing more; what it removed in all. `calls`:
/// how many calls that took.
inline expiry expire_all(store& log, unix_ms cutoff, std::size_t limit,
                         int* calls_made = nullptr) {
  expiry sum;
  for (int calls = 1;; ++calls) {
    BOOST_REQUIRE(calls < 1000);
    auto x = log.expire(cutoff, cutoff, limit);
    BOOST_REQUIRE(x);
    sum.events += x->events;
    sum.deliveries += x->deliveries;
    sum.idempotency_keys += x->idempotency_keys;
    sum.log_records += x->log_records;
    if (!x->more) {
      if (calls_made)
        *calls_made = calls;
      return sum;
    }
  }
}

} // namespace tocsin::test::store_helpers
