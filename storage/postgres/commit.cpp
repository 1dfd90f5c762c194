// Commits to PostgreSQL: one connection writes for every caller, the first
// in line committing for all queued behind it in one transaction (group
// commit), so that a flush of many requests costs one commit. The log's
// numbers come from the head row, locked to the commit (log_table.hpp):
// the commits of every node sharing the database take turns there. A set
// made under a lease carries its epoch (changes::fence) and is left out,
// refused as "fenced", once the lease has moved on.
#include "common/log.hpp"
#include "storage/postgres/arrays.hpp"
#include "storage/postgres/log_table.hpp"
#include "storage/postgres/store_impl.hpp"

#include <pqxx/pqxx>

#include <algorithm>

#include <thread>
#include <unordered_map>

namespace tocsin::storage::postgres {

namespace {

/// The statements of a commit, prepared on the writer's connection once.
constexpr std::pair<const char*, const char*> write_statements[] = {
    {"tocsin_upsert_events",
     "INSERT INTO tocsin_events (id, record) SELECT * FROM "
     "unnest($1::text[], $2::bytea[]) ON CONFLICT (id) DO UPDATE SET "
     "record = excluded.record"},
    {"tocsin_upsert_deliveries",
     "INSERT INTO tocsin_deliveries (id, endpoint_id, state, place, "
     "finished_at, record) SELECT * FROM unnest($1::text[], $2::text[], "
     "$3::smallint[], $4::bigint[], $5::bigint[], $6::bytea[]) "
     "ON CONFLICT (id) DO UPDATE SET endpoint_id = excluded.endpoint_id, "
     "state = excluded.state, place = excluded.place, finished_at = "
     "excluded.finished_at, record = excluded.record"},
    {"tocsin_upsert_keys",
     "INSERT INTO tocsin_idempotency_keys (key, at, record) SELECT * "
     "FROM unnest($1::bytea[], $2::bigint[], $3::bytea[]) ON CONFLICT "
     "(key) DO UPDATE SET at = excluded.at, record = excluded.record"},
    {"tocsin_delete_endpoints",
     "DELETE FROM tocsin_endpoints WHERE id = ANY($1)"},
    {"tocsin_upsert_endpoints",
     "INSERT INTO tocsin_endpoints (id, definition) SELECT * FROM "
     "unnest($1::text[], $2::bytea[]) ON CONFLICT (id) DO UPDATE SET "
     "definition = excluded.definition"},
    {"tocsin_insert_links",
     "INSERT INTO tocsin_escalation_links SELECT * FROM "
     "unnest($1::text[], $2::text[]) ON CONFLICT DO NOTHING"},
    {"tocsin_insert_counts",
     "INSERT INTO tocsin_escalation_counts SELECT * FROM "
     "unnest($1::text[], $2::bytea[], $3::bytea[]) ON "
     "CONFLICT DO NOTHING"},
    {"tocsin_upsert_escalations",
     "INSERT INTO tocsin_escalations (id, rule, grp, at, members) "
     "SELECT * FROM unnest($1::text[], $2::bytea[], $3::bytea[], "
     "$4::bigint[], $5::text[]) ON CONFLICT (id) DO UPDATE SET "
     "rule = excluded.rule, grp = excluded.grp, at = excluded.at, "
     "members = excluded.members"},
};

/// The rows one transaction writes, one statement per table: what many
/// change sets come to, a row changed twice taking its last state.
class rows {
public:
  void add(const change& c, unix_ms at, std::uint64_t seq) {
    switch (c.what) {
    case change::type::event_accepted:
    case change::type::event_changed:
      put(events_, c.id, c);
      break;
    case change::type::delivery_created:
    case change::type::delivery_changed:
      put(deliveries_, c.id, c);
      break;
    case change::type::idempotency_key:
      put(keys_, c.id, c);
      break;
    case change::type::endpoint_put:
    case change::type::endpoint_deleted:
      put(endpoints_, c.id, c);
      break;
    case change::type::escalation_linked:
      links_.push_back(&c);
      break;
    case change::type::counted_in_group:
      counts_.push_back(&c);
      break;
    case change::type::escalation_recorded:
      escalations_.push_back(&c);
      break;
    case change::type::noted:
      break;
    }
    if (c.logged)
      log_.push_back(
          {at, static_cast<int>(c.kind),
           stored_log_record(seq, at, c.kind, c.form, c.log_fields)});
  }

  void write(pqxx::transaction_base& t, std::uint64_t first_seq, unix_ms at) {
    if (!events_.list.empty()) {
      array_literal ids, records;
      for (auto* c : events_.list) {
        ids.add_text(c->id);
        records.add_bytes(c->body);
      }
      t.exec_prepared0("tocsin_upsert_events", ids.take(), records.take());
    }
    if (!deliveries_.list.empty()) {
      array_literal ids, endpoints, states, places, finished, records;
      for (auto* c : deliveries_.list) {
        ids.add_text(c->id);
        endpoints.add_text(c->endpoint_id);
        states.add(static_cast<int>(c->now.state));
        places.add(c->now.state == delivery_state::pending ? c->now.place
                                                           : line_place{0});
        finished.add(c->at);
        records.add_bytes(c->body);
      }
      t.exec_prepared0("tocsin_upsert_deliveries", ids.take(), endpoints.take(),
                       states.take(), places.take(), finished.take(),
                       records.take());
    }
    if (!keys_.list.empty()) {
      array_literal keys, ats, records;
      for (auto* c : keys_.list) {
        keys.add_bytes(c->id);
        ats.add(c->at);
        records.add_bytes(c->body);
      }
      t.exec_prepared0("tocsin_upsert_keys", keys.take(), ats.take(),
                       records.take());
    }
    if (!endpoints_.list.empty()) {
      array_literal put_ids, definitions, deleted;
      for (auto* c : endpoints_.list) {
        if (c->what == change::type::endpoint_deleted) {
          deleted.add_text(c->id);
        } else {
          put_ids.add_text(c->id);
          definitions.add_bytes(c->body);
        }
      }
      if (deleted.size() > 0)
        t.exec_prepared0("tocsin_delete_endpoints", deleted.take());
      if (put_ids.size() > 0)
        t.exec_prepared0("tocsin_upsert_endpoints", put_ids.take(),
                         definitions.take());
    }
    if (!links_.empty()) {
      array_literal events, escalations;
      for (auto* c : links_) {
        events.add_text(c->id);
        escalations.add_text(c->other);
      }
      t.exec_prepared0("tocsin_insert_links", events.take(),
                       escalations.take());
    }
    if (!counts_.empty()) {
      array_literal events, rules, groups;
      for (auto* c : counts_) {
        events.add_text(c->id);
        rules.add_bytes(c->rule);
        groups.add_bytes(c->group);
      }
      t.exec_prepared0("tocsin_insert_counts", events.take(), rules.take(),
                       groups.take());
    }
    if (!escalations_.empty()) {
      array_literal ids, rules, groups, ats, members;
      for (auto* c : escalations_) {
        ids.add_text(c->id);
        rules.add_bytes(c->rule);
        groups.add_bytes(c->group);
        ats.add(c->at);
        members.add_text(c->body);
      }
      t.exec_prepared0("tocsin_upsert_escalations", ids.take(), rules.take(),
                       groups.take(), ats.take(), members.take());
    }
    insert_log(t, first_seq, at, log_);
  }

private:
  /// Rows keyed by id in first-seen order; a later change replaces the
  /// earlier one (an upsert may not touch a row twice in one statement).
  struct latest {
    std::unordered_map<std::string_view, std::size_t> at;
    std::vector<const change*> list;
  };
  static void put(latest& l, std::string_view id, const change& c) {
    auto [it, fresh] = l.at.emplace(id, l.list.size());
    if (fresh)
      l.list.push_back(&c);
    else
      l.list[it->second] = &c;
  }

  latest events_, deliveries_, keys_, endpoints_;
  std::vector<const change*> links_, counts_, escalations_;
  std::vector<log_entry> log_;
};

std::size_t logged_count(const changes& set) {
  std::size_t n = 0;
  for (auto& c : set.list())
    n += c.logged ? 1 : 0;
  return n;
}

} // namespace

void prepare_writes(pqxx::connection_base& c) {
  for (auto [name, sql] : write_statements)
    c.prepare(name, sql);
  c.prepare("tocsin_take_numbers",
            "UPDATE tocsin_log_head SET seq = seq + $1 RETURNING seq, "
            "txid_current()");
  c.prepare("tocsin_give_back", "UPDATE tocsin_log_head SET seq = seq - $1");
  // In name order, as a heartbeat locks them (no deadlock between the two).
  c.prepare("tocsin_fences",
            "SELECT name, epoch FROM tocsin_leases WHERE name = "
            "ANY($1::text[]) ORDER BY name FOR SHARE");
  prepare_log(c);
}

result<std::uint64_t> postgres_store::commit(const changes& set, durability d) {
  if (set.empty()) {
    // Nothing to write, but a synced commit vouches for what it answers
    // from the store (an idempotency key's replay): not while it is out of
    // reach.
    if (d == durability::synced)
      TOCSIN_TRY(writable());
    return last_sequence();
  }
  writer w;
  w.set = &set;
  w.d = d;
  return write_in_turn(w);
}

result<std::uint64_t> postgres_store::write_in_turn(writer& w) {
  std::unique_lock lock{mtx_};
  // While a lost commit's outcome is asked after, which may take as long
  // as the database is away, the rest wait for nothing: refused at once,
  // as when the database is known to be out of reach.
  auto doubt = [] {
    return error{"store_unavailable",
                 "PostgreSQL was lost while committing; waiting for it to "
                 "say whether that commit took"};
  };
  if (in_doubt_)
    return doubt();
  queue_.push_back(&w);
  w.cv.wait(lock, [&] {
    return w.done || queue_.front() == &w || (in_doubt_ && !w.taken);
  });
  if (w.done)
    return w.result ? result<std::uint64_t>{w.last} : w.result.error();
  if (queue_.front() != &w) {
    queue_.erase(std::find(queue_.begin(), queue_.end(), &w));
    return doubt();
  }
  // Leader: everyone queued so far, up to an exclusive turn (or that turn
  // alone when it is first).
  std::vector<writer*> group;
  for (auto* m : queue_) {
    if (!m->set && !group.empty())
      break;
    group.push_back(m);
    m->taken = true;
    if (!m->set)
      break;
  }
  lock.unlock();
  if (!group.front()->set) {
    auto& turn = *group.front();
    turn.result = connect_writer();
    if (turn.result.ok()) {
      try {
        turn.result = turn.exclusive(*conn_);
      } catch (const std::exception& e) {
        if (!conn_->is_open())
          lost_writer(e);
        turn.result = store_failure(e);
      }
    }
  } else {
    auto st = write_group(group);
    // One set the database refuses (not a lost connection) must not fail
    // the others it was grouped with: each is tried alone (a fenced one has
    // its answer already).
    if (!st && st.error().code == "store_error" && group.size() > 1)
      for (auto* m : group)
        if (!m->fenced)
          (void)write_group({m});
  }
  lock.lock();
  for (auto* member : group) {
    queue_.pop_front();
    member->done = true;
    if (member != &w)
      member->cv.notify_one();
  }
  if (!queue_.empty())
    queue_.front()->cv.notify_one(); // the next leader
  if (!w.result)
    return w.result.error();
  return w.last;
}

status postgres_store::write_group(const std::vector<writer*>& group) {
  for (auto* m : group)
    m->fenced.reset();
  auto st = commit_group(group);
  for (auto* m : group)
    m->result = m->fenced ? status{*m->fenced} : st;
  return st;
}

std::size_t postgres_store::check_fences(pqxx::transaction_base& t,
                                         const std::vector<writer*>& group) {
  std::vector<std::string_view> names;
  for (auto* m : group)
    for (auto& f : m->set->fences())
      names.push_back(f.name);
  if (names.empty())
    return 0;
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  array_literal wanted;
  for (auto name : names)
    wanted.add_text(name);
  // FOR SHARE to the end of the commit: a node taking one of these leases
  // (an UPDATE of its row) waits until this commit is done, and a commit
  // after the take reads the new epoch. One query for the whole group.
  std::unordered_map<std::string, std::uint64_t> epochs;
  for (auto row : t.exec_prepared("tocsin_fences", wanted.take()))
    epochs.emplace(row[0].as<std::string>(), row[1].as<std::uint64_t>());
  std::size_t left_out = 0;
  for (auto* m : group) {
    for (auto& f : m->set->fences()) {
      auto now = epochs.find(f.name);
      if (now != epochs.end() && now->second == f.epoch)
        continue;
      m->fenced = error{
          "fenced",
          "lease " + f.name + " is at " +
              (now == epochs.end() ? std::string{"no epoch (never taken)"}
                                   : "epoch " + std::to_string(now->second)) +
              "; these changes were made at epoch " + std::to_string(f.epoch)};
      left_out += logged_count(*m->set);
      break;
    }
  }
  return left_out;
}

status postgres_store::commit_group(const std::vector<writer*>& group) {
  TOCSIN_TRY(connect_writer());
  std::size_t n = 0;
  bool synced = false;
  for (auto* m : group) {
    n += logged_count(*m->set);
    synced = synced || m->d == durability::synced;
  }
  std::int64_t xid = 0;
  std::uint64_t first = 0;
  try {
    pqxx::work t{*conn_};
    // Numbers for every record of the group, and the transaction's id to
    // ask after if the connection is lost while it commits. The head row's
    // lock comes first in every commit: commits (of every node) never wait
    // for each other in any other order.
    auto head =
        t.exec_prepared1("tocsin_take_numbers", static_cast<long long>(n));
    auto last = static_cast<std::uint64_t>(head[0].as<long long>());
    xid = head[1].as<std::int64_t>();
    // The numbers of fenced sets go back at once (the head is still ours:
    // nobody saw them).
    if (auto left_out = check_fences(t, group); left_out > 0) {
      t.exec_prepared0("tocsin_give_back", static_cast<long long>(left_out));
      last -= left_out;
      n -= left_out;
    }
    first = last - n + 1;
    if (!synced)
      t.exec0("SET LOCAL synchronous_commit = off");
    rows all;
    auto at = now_ms();
    auto seq = first;
    for (auto* m : group) {
      if (m->fenced)
        continue;
      for (auto& c : m->set->list())
        if (all.add(c, at, seq), c.logged)
          ++seq;
      m->last = seq - 1;
    }
    all.write(t, first, at);
    t.commit();
  } catch (const pqxx::in_doubt_error& e) {
    lost_writer(e);
    {
      std::lock_guard lock{mtx_};
      in_doubt_ = true;
      for (auto* m : queue_)
        if (!m->taken)
          m->cv.notify_one();
    }
    bool took = committed_after_all(xid);
    {
      std::lock_guard lock{mtx_};
      in_doubt_ = false;
    }
    if (!took)
      return error{"store_unavailable",
                   "PostgreSQL was lost while committing; the commit did "
                   "not take"};
  } catch (const std::exception& e) {
    if (!conn_->is_open())
      lost_writer(e);
    return store_failure(e);
  }
  // Numbers only grow: a reader (or the news) may have seen a later
  // commit's already (another node's).
  if (n > 0)
    advance_to(first + n - 1);
  return {};
}

void postgres_store::advance_to(std::uint64_t seq) {
  auto seen = last_seq_.load(std::memory_order_relaxed);
  while (seen < seq &&
         !last_seq_.compare_exchange_weak(seen, seq, std::memory_order_release,
                                          std::memory_order_relaxed))
    ;
}

bool postgres_store::committed_after_all(std::int64_t xid) {
  // A commit whose answer was lost may have taken or not; the callers
  // must know which (a 202 promises the event, and what is in memory must
  // follow the store), so this waits for the database to say, over new
  // connections, for as long as it takes — a failover included.
  auto started = std::chrono::steady_clock::now();
  auto next_note = started;
  for (;;) {
    try {
      auto c = std::make_unique<pqxx::connection>(url_);
      pqxx::nontransaction t{*c};
      if (!t.exec1("SELECT pg_is_in_recovery()")[0].as<bool>()) {
        auto r = t.exec_params1("SELECT txid_status($1)", xid);
        if (r[0].is_null() || r[0].as<std::string>() == "aborted") {
          log::warn("a commit cut short by the lost connection did not take",
                    {{"xid", std::to_string(xid)}});
          return false;
        }
        if (r[0].as<std::string>() == "committed") {
          log::warn("a commit cut short by the lost connection took",
                    {{"xid", std::to_string(xid)}});
          // The next commit connects at once.
          std::lock_guard lock{health_mtx_};
          next_connect_ = {};
          return true;
        }
        // "in progress": the old session still runs (a partition); ask
        // again.
      }
    } catch (const pqxx::sql_error& e) {
      // A transaction id past the server's: it never reached this server
      // (a standby promoted before the commit's record came to it).
      if (std::string{e.what()}.find("in the future") != std::string::npos)
        return false;
    } catch (const std::exception&) {
      // Not reachable yet: try again.
    }
    auto now = std::chrono::steady_clock::now();
    if (now >= next_note) {
      log::warn("waiting for PostgreSQL to say whether a commit took",
                {{"xid", std::to_string(xid)}});
      next_note = now + std::chrono::seconds{5};
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{200});
  }
}

} // namespace tocsin::storage::postgres
