// Retention in PostgreSQL: what finished before the cutoff goes, a chunk at
// a time, each chunk one transaction in the writer's turn (as a commit)
// holding the log head's lock (as every node's commit does), so that a
// delivery replayed meanwhile, here or on another node, is never removed
// under it.
#include "storage/postgres/arrays.hpp"
#include "storage/postgres/store_impl.hpp"

#include <pqxx/pqxx>

#include <unordered_map>
#include <unordered_set>

namespace tocsin::storage::postgres {

result<expiry> postgres_store::expire(unix_ms cutoff, unix_ms keys_cutoff,
                                      std::size_t limit) {
  expiry out;
  writer w;
  w.exclusive = [&](pqxx::connection& c) -> status {
    auto from_at = expire_from_at_;
    auto from_id = expire_from_id_;
    out = {};
    auto st = expire_chunk(c, cutoff, keys_cutoff, limit, out);
    if (!st) { // nothing was deleted: start there again
      expire_from_at_ = from_at;
      expire_from_id_ = std::move(from_id);
    }
    return st;
  };
  auto st = write_in_turn(w);
  if (!st)
    return st.error();
  return out;
}

status postgres_store::expire_chunk(pqxx::connection& c, unix_ms cutoff,
                                    unix_ms keys_cutoff, std::size_t limit,
                                    expiry& out) {
  pqxx::work t{c};
  // Commits of other nodes sharing the database wait until this chunk is
  // done, and it reads what the ones before it committed.
  t.exec("SELECT seq FROM tocsin_log_head FOR UPDATE");
  // Finished deliveries in the order they finished, from where the last
  // chunk stopped.
  auto finished = t.exec_params(
      "SELECT id, finished_at, record FROM tocsin_deliveries WHERE state <> 0 "
      "AND finished_at < $1 AND (finished_at, id) > ($2, $3) ORDER BY "
      "finished_at, id LIMIT $4",
      static_cast<long long>(cutoff), static_cast<long long>(expire_from_at_),
      expire_from_id_, static_cast<long long>(limit + 1));
  std::vector<delivery> looked;
  for (auto row : finished) {
    if (looked.size() == limit) {
      out.more = true;
      break;
    }
    auto d = decode_delivery(pqxx::binarystring{row[2]}.str());
    if (!d)
      return error{"store_corrupt",
                   "unreadable delivery record " + row[0].as<std::string>()};
    expire_from_at_ = row[1].as<long long>();
    expire_from_id_ = d->id;
    looked.push_back(std::move(*d));
  }
  // Their events, and every delivery of those events: an event goes when
  // all of its deliveries finished before the cutoff (its last delivery's
  // own turn brings it back otherwise).
  array_literal event_ids;
  std::unordered_set<std::string> asked;
  for (auto& d : looked)
    if (asked.insert(d.event_id).second)
      event_ids.add_text(d.event_id);
  std::unordered_map<std::string, event_record> events;
  if (!asked.empty())
    for (auto row : t.exec_params("SELECT id, record FROM tocsin_events "
                                  "WHERE id = ANY($1::text[])",
                                  event_ids.take()))
      if (auto e = decode_event(pqxx::binarystring{row[1]}.str()))
        events.emplace(row[0].as<std::string>(), std::move(*e));
  array_literal sibling_ids;
  for (auto& [id, e] : events)
    for (auto& did : e.delivery_ids)
      sibling_ids.add_text(did);
  struct standing_row {
    int state;
    unix_ms finished_at;
  };
  std::unordered_map<std::string, standing_row> siblings;
  if (!events.empty())
    for (auto row : t.exec_params("SELECT id, state, finished_at FROM "
                                  "tocsin_deliveries WHERE id = "
                                  "ANY($1::text[])",
                                  sibling_ids.take()))
      siblings.emplace(row[0].as<std::string>(),
                       standing_row{row[1].as<int>(), row[2].as<long long>()});
  array_literal gone_events, gone_deliveries;
  std::unordered_set<std::string> removed;
  for (auto& d : looked) {
    if (removed.count(d.event_id))
      continue;
    auto e = events.find(d.event_id);
    std::vector<std::string> all;
    bool done = true;
    for (auto& did :
         e != events.end() ? e->second.delivery_ids : std::vector{d.id}) {
      auto s = siblings.find(did);
      if (did == d.id && s == siblings.end())
        s = siblings
                .emplace(did,
                         standing_row{static_cast<int>(d.state), d.finished_at})
                .first;
      if (s == siblings.end())
        continue;
      done = done && s->second.state != 0 && s->second.finished_at < cutoff;
      all.push_back(did);
    }
    if (!done)
      continue;
    removed.insert(d.event_id);
    ++out.events;
    gone_events.add_text(d.event_id);
    for (auto& id : all) {
      ++out.deliveries;
      gone_deliveries.add_text(id);
    }
  }
  if (!removed.empty()) {
    auto events_literal = gone_events.take();
    t.exec_params0("DELETE FROM tocsin_events WHERE id = ANY($1::text[])",
                   events_literal);
    t.exec_params0("DELETE FROM tocsin_escalation_counts WHERE event_id = "
                   "ANY($1::text[])",
                   events_literal);
    t.exec_params0("DELETE FROM tocsin_escalation_links WHERE event_id = "
                   "ANY($1::text[])",
                   events_literal);
    t.exec_params0("DELETE FROM tocsin_escalations WHERE id = ANY($1::text[])",
                   events_literal);
    t.exec_params0("DELETE FROM tocsin_deliveries WHERE id = ANY($1::text[])",
                   gone_deliveries.take());
  }
  if (!out.more) {
    auto keys = t.exec_params(
        "DELETE FROM tocsin_idempotency_keys WHERE key IN (SELECT key FROM "
        "tocsin_idempotency_keys WHERE at < $1 ORDER BY at LIMIT $2)",
        static_cast<long long>(keys_cutoff), static_cast<long long>(limit));
    out.idempotency_keys = static_cast<std::size_t>(keys.affected_rows());
    out.more = out.idempotency_keys == limit;
  }
  if (!out.more) {
    // A commit's records are one batch. (The head row carries the sequence
    // on: no record needs to stay for it.)
    auto batches = t.exec_params(
        "DELETE FROM tocsin_log WHERE first_seq IN (SELECT first_seq FROM "
        "tocsin_log WHERE at < $1 ORDER BY first_seq LIMIT $2) RETURNING "
        "last_seq - first_seq + 1",
        static_cast<long long>(cutoff), static_cast<long long>(limit));
    for (auto row : batches)
      out.log_records += row[0].as<std::uint64_t>();
    out.more = batches.size() == limit;
  }
  if (!out.more)
    t.exec_params0("INSERT INTO tocsin_settings VALUES ('expired_before', $1) "
                   "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                   std::to_string(cutoff));
  t.commit();
  return {};
}

unix_ms postgres_store::expired_before() {
  unix_ms out = 0;
  auto st = readers_.with([&](pqxx::connection& c) -> status {
    pqxx::read_transaction t{c};
    auto r = t.exec("SELECT value FROM tocsin_settings WHERE key = "
                    "'expired_before'");
    if (!r.empty())
      out = r[0][0].as<long long>();
    return {};
  });
  return st ? out : 0;
}

} // namespace tocsin::storage::postgres
