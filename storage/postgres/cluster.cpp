// The nodes sharing one database and their leases (storage/cluster.hpp):
// heartbeats, leaving, the listing, and the news. Every time is the
// database's now(); a node's clock decides nothing.
//
// Locks: a heartbeat locks the lease rows it may change in name order, in
// one statement, after making sure every lease it wants to take has a row
// (so that nothing it touches later is locked out of order); a commit
// locks the lease rows it is fenced by FOR SHARE, in name order too, after
// the log head. So heartbeats do not deadlock with each other or with
// commits, and a take waits for the commits made under the epoch it ends.
#include "storage/postgres/arrays.hpp"
#include "storage/postgres/news.hpp"
#include "storage/postgres/store_impl.hpp"

#include <pqxx/pqxx>

#include <algorithm>
#include <set>

namespace tocsin::storage::postgres {

namespace {

/// What a lease lasts: `now() + ttl` in SQL, with the ttl as a parameter.
constexpr const char* until_sql = "now() + $1::double precision * interval "
                                  "'1 millisecond'";

std::string text_array(const std::vector<std::string>& names) {
  array_literal out;
  for (auto& n : names)
    out.add_text(n);
  return out.take();
}

error bad_ttl() {
  return error{"bad_config", "a cluster's ttl must be above 0 ms"};
}

/// Every node with its unexpired leases, as of `t`'s now(), and the
/// leases (with their epochs) of node `me`.
membership read_membership(pqxx::transaction_base& t,
                           std::chrono::milliseconds ttl, std::string_view me) {
  auto r = t.exec_params(
      "SELECT n.id, n.listen, (extract(epoch FROM n.heartbeat_at) * "
      "1000)::bigint, n.heartbeat_at > now() - $1::double precision * "
      "interval '1 millisecond', l.name, l.epoch FROM tocsin_nodes n LEFT "
      "JOIN tocsin_leases l ON l.node_id = n.id AND l.expires_at > now() "
      "ORDER BY n.id, l.name",
      static_cast<double>(ttl.count()));
  membership out;
  out.now = t.exec1("SELECT (extract(epoch FROM now()) * 1000)::bigint")[0]
                .as<long long>();
  for (auto row : r) {
    auto id = row[0].as<std::string>();
    if (out.nodes.empty() || out.nodes.back().id != id) {
      node_record n;
      n.id = id;
      n.listen = row[1].as<std::string>();
      n.heartbeat_at = row[2].as<long long>();
      n.alive = row[3].as<bool>();
      out.nodes.push_back(std::move(n));
    }
    if (row[4].is_null())
      continue;
    auto name = row[4].as<std::string>();
    if (id == me)
      out.held.push_back({name, row[5].as<std::uint64_t>()});
    out.nodes.back().leases.push_back(std::move(name));
  }
  return out;
}

/// What a heartbeat does to the lease rows it locked.
struct lease_plan {
  std::vector<std::string> release, renew, take;
};

/// Sorts the locked rows (name, holder, unexpired) into what `r` asks:
/// its own released (then, when asked, taken again) or renewed, the rest
/// of r.take taken when free, released or expired.
lease_plan plan_leases(const pqxx::result& locked, const heartbeat_request& r) {
  std::set<std::string_view> give_up(r.release.begin(), r.release.end());
  std::set<std::string_view> want(r.take.begin(), r.take.end());
  lease_plan plan;
  for (auto row : locked) {
    auto name = row[0].as<std::string>();
    bool mine = !row[1].is_null() && row[1].as<std::string>() == r.node;
    bool live = !row[2].is_null() && row[2].as<bool>();
    if (mine && give_up.count(name)) {
      plan.release.push_back(name);
      mine = live = false;
    }
    if (mine)
      plan.renew.push_back(name);
    else if (want.count(name) && (row[1].is_null() || !live))
      plan.take.push_back(name);
  }
  return plan;
}

} // namespace

result<membership> postgres_store::heartbeat(const heartbeat_request& r) {
  if (r.ttl.count() <= 0)
    return bad_ttl();
  if (r.node.empty())
    return error{"bad_config", "a cluster node's id is empty"};
  TOCSIN_TRY(reachable_now());
  auto ttl = static_cast<double>(r.ttl.count());
  membership out;
  auto st = readers_.with([&](pqxx::connection& c) -> status {
    pqxx::work t{c};
    // Cut off mid-heartbeat, the session would hold lease rows that
    // commits wait for: the server ends it.
    t.exec0("SET LOCAL idle_in_transaction_session_timeout = '10s'");
    t.exec_params0(
        "INSERT INTO tocsin_nodes (id, listen, heartbeat_at, started_at) "
        "VALUES ($1, $2, now(), now()) ON CONFLICT (id) DO UPDATE SET "
        "listen = excluded.listen, heartbeat_at = excluded.heartbeat_at",
        r.node, r.listen);
    // A row for every lease to take (never held: free, at epoch 0), in
    // name order, so that the lock below covers every row this heartbeat
    // changes.
    std::vector<std::string> wanted = r.take;
    std::sort(wanted.begin(), wanted.end());
    wanted.erase(std::unique(wanted.begin(), wanted.end()), wanted.end());
    auto wanted_array = text_array(wanted);
    if (!wanted.empty())
      t.exec_params0("INSERT INTO tocsin_leases (name, epoch) SELECT n, 0 "
                     "FROM unnest($1::text[]) AS n ORDER BY n COLLATE \"C\" "
                     "ON CONFLICT (name) DO NOTHING",
                     wanted_array);
    // READ COMMITTED: a row another transaction changes is read as it is
    // once that one has committed (its lock waited for), so what a holder
    // or a taker did meanwhile is seen here.
    auto locked = t.exec_params(
        "SELECT name, node_id, expires_at > now() FROM tocsin_leases WHERE "
        "node_id = $1 OR name = ANY($2::text[]) ORDER BY name FOR UPDATE",
        r.node, wanted_array);
    auto plan = plan_leases(locked, r);
    if (!plan.release.empty()) {
      t.exec_params0("UPDATE tocsin_leases SET node_id = NULL, expires_at = "
                     "NULL WHERE name = ANY($1::text[])",
                     text_array(plan.release));
      t.exec0("NOTIFY tocsin_cluster");
    }
    if (!plan.renew.empty())
      t.exec_params0(std::string{"UPDATE tocsin_leases SET expires_at = "} +
                         until_sql + " WHERE name = ANY($2::text[])",
                     ttl, text_array(plan.renew));
    if (!plan.take.empty())
      t.exec_params0(std::string{"UPDATE tocsin_leases SET node_id = $3, "
                                 "epoch = epoch + 1, expires_at = "} +
                         until_sql + " WHERE name = ANY($2::text[])",
                     ttl, text_array(plan.take), r.node);
    out = read_membership(t, r.ttl, r.node);
    t.commit();
    return {};
  });
  if (!st)
    return st.error();
  return out;
}

status postgres_store::leave(std::string_view node) {
  TOCSIN_TRY(reachable_now());
  return readers_.with([&](pqxx::connection& c) -> status {
    pqxx::work t{c};
    t.exec0("SET LOCAL idle_in_transaction_session_timeout = '10s'");
    // Locked in name order, as a heartbeat does.
    auto held = t.exec_params("SELECT name FROM tocsin_leases WHERE node_id "
                              "= $1 ORDER BY name FOR UPDATE",
                              std::string{node});
    if (!held.empty())
      t.exec_params0("UPDATE tocsin_leases SET node_id = NULL, expires_at = "
                     "NULL WHERE node_id = $1",
                     std::string{node});
    t.exec_params0("DELETE FROM tocsin_nodes WHERE id = $1", std::string{node});
    t.exec0("NOTIFY tocsin_cluster");
    t.commit();
    return {};
  });
}

result<std::vector<node_record>>
postgres_store::nodes(std::chrono::milliseconds ttl) {
  if (ttl.count() <= 0)
    return bad_ttl();
  TOCSIN_TRY(reachable_now());
  std::vector<node_record> out;
  auto st = readers_.with([&](pqxx::connection& c) -> status {
    pqxx::read_transaction t{c};
    out = read_membership(t, ttl, {}).nodes;
    return {};
  });
  if (!st)
    return st.error();
  return out;
}

void postgres_store::listen(
    std::function<void(cluster_news, std::uint64_t)> fn) {
  std::lock_guard lock{listen_mtx_};
  if (listener_)
    return; // set once
  listener_ = std::make_unique<news_listener>(
      url_, session_name_ + " news",
      [this, fn = std::move(fn)](cluster_news news, std::uint64_t seq) {
        // last_sequence() follows every node's commits.
        if (news != cluster_news::leases_released)
          advance_to(seq);
        fn(news, seq);
      });
}

} // namespace tocsin::storage::postgres
