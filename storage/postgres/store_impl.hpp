// The PostgreSQL store's parts: the connections (one writer that commits
// for everyone, a few readers, one that listens for news), the group
// commit, the reads, retention and the cluster's heartbeats. Private to
// storage/postgres/.
#pragma once

#include "storage/store.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <vector>

namespace tocsin::storage::postgres {

/// What a failure of the database means to a caller: "store_unavailable"
/// for a connection lost or refused (it passes by itself), "store_error"
/// for the rest.
error store_failure(const std::exception& e);

/// Prepares the statements a commit runs on the writer's connection `c`.
void prepare_writes(pqxx::connection_base& c);

/// Connections to one database, made on demand: a few readers shared by
/// the threads that read (each takes one for one read), replaced when one
/// breaks.
class reader_pool {
public:
  explicit reader_pool(std::string url, std::size_t max_open)
      : url_(std::move(url)), max_open_(max_open) {}
  ~reader_pool();

  /// Runs `fn` on a connection of the pool. A broken connection is dropped
  /// and `fn` tried once more on a new one (the database may have come back
  /// since it was opened). Failures as store_failure says.
  status with(const std::function<status(pqxx::connection&)>& fn);

private:
  /// An idle connection, or a new one while fewer than max_open are open
  /// (nothing: the caller opens one), else waits for one.
  std::unique_ptr<pqxx::connection> take(bool& open_new);
  void give_back(std::unique_ptr<pqxx::connection> c);
  void forget(); ///< one taken is gone (broken, or never opened)

  std::string url_;
  std::size_t max_open_;
  std::mutex mtx_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<pqxx::connection>> idle_;
  std::size_t open_ = 0;
};

class news_listener;

class postgres_store final : public store, public cluster_store {
public:
  postgres_store(std::string url, std::uint64_t last_seq);
  ~postgres_store() override;

  result<std::uint64_t> commit(const changes& set, durability d) override;
  status writable() override;
  std::uint64_t last_sequence() const override {
    return last_seq_.load(std::memory_order_acquire);
  }
  result<expiry> expire(unix_ms cutoff, unix_ms keys_cutoff,
                        std::size_t limit) override;
  unix_ms expired_before() override;

  result<std::optional<event_record>> get_event(std::string_view id) override;
  result<std::vector<std::optional<event_record>>>
  get_events(const std::vector<std::string>& ids) override;
  result<std::optional<delivery>> get_delivery(std::string_view id) override;
  result<std::vector<std::optional<delivery>>>
  get_deliveries(const std::vector<std::string>& ids) override;
  result<std::optional<idempotency_record>>
  get_idempotency_key(std::string_view key) override;
  result<line_page>
  line_of(std::string_view endpoint_id, const line_position& from,
          std::size_t limit,
          const std::function<bool(std::string_view id)>& held) override;
  result<std::vector<std::string>> endpoints_with_pending() override;
  result<std::vector<delivery>> list_dead_letters(std::string_view after,
                                                  std::size_t limit) override;
  result<std::vector<delivery>>
  list_dead_letters_of(std::string_view endpoint_id, unix_ms since,
                       std::size_t limit) override;
  result<std::vector<std::pair<std::string, std::string>>>
  list_endpoints() override;
  result<std::optional<std::string>> get_endpoint(std::string_view id) override;
  result<endpoint_backlog> backlog_of(std::string_view endpoint_id) override;
  std::uint64_t approximate_bytes() override;
  result<std::vector<std::string>>
  escalations_of(std::string_view event_id) override;
  result<std::vector<std::string>>
  members_of(std::string_view escalation_id) override;
  status for_each_event_since(
      unix_ms since,
      const std::function<bool(const event_record&)>& fn) override;
  result<event_page> list_events(const event_query& q) override;
  status read_log(
      std::uint64_t from,
      const std::function<bool(std::uint64_t, std::string_view)>& fn) override;
  cluster_store* cluster() override { return this; }

  // -- the cluster (cluster.cpp, news.cpp) --
  result<membership> heartbeat(const heartbeat_request& r) override;
  status leave(std::string_view node) override;
  result<std::vector<node_record>>
  nodes(std::chrono::milliseconds ttl) override;
  void listen(std::function<void(cluster_news, std::uint64_t)> fn) override;

  /// Fails at once, without trying, while the database is known to be out
  /// of reach and the next attempt is not due: a read must not wait for a
  /// connection attempt to a host that does not answer each time.
  status reachable_now();
  /// Opens the writing connection.
  status start();
  /// The commits and exclusive turns queued, the one writing among them
  /// (for tests that need sets grouped in one transaction).
  std::size_t queued() {
    std::lock_guard lock{mtx_};
    return queue_.size();
  }
  reader_pool& readers() { return readers_; }

private:
  // -- the writer's turn (commit.cpp) --
  /// One caller of commit() (or an exclusive turn: retention), queued.
  struct writer {
    const changes* set = nullptr; ///< nothing: an exclusive turn
    durability d = durability::synced;
    bool taken = false; ///< a leader writes it (in its group)
    std::function<status(pqxx::connection&)> exclusive = {};
    status result = {};
    /// Its refusal by a fence (a lease taken since): its changes were left
    /// out of the group's transaction.
    std::optional<error> fenced = {};
    std::uint64_t last = 0; ///< the number of its last log record
    bool done = false;
    std::condition_variable cv = {};
  };
  /// Waits for its turn in the queue; the first in line commits for all
  /// queued behind it, in one transaction (group commit).
  result<std::uint64_t> write_in_turn(writer& w);
  /// Writes `group` in one transaction and sets each member's `result`:
  /// its refusal when a fence stops it, else how the transaction went
  /// (returned). Each written member's `last` set.
  status write_group(const std::vector<writer*>& group);
  status commit_group(const std::vector<writer*>& group);
  /// Marks the members of `group` whose fences name a lease that has moved
  /// on; the number of log records they would have written.
  std::size_t check_fences(pqxx::transaction_base& t,
                           const std::vector<writer*>& group);
  /// The writer connection, opened again when lost (at most once a second
  /// while the database cannot be reached).
  status connect_writer();
  /// A commit's connection broke while it committed: waits until the
  /// database says whether transaction `xid` committed (over a new
  /// connection, reconnecting as long as it takes). true: it committed.
  bool committed_after_all(std::int64_t xid);
  void lost_writer(const std::exception& e);
  /// Raises last_sequence() to `seq`: numbers only grow, and news of
  /// another node's commit may come before or after our own later one.
  void advance_to(std::uint64_t seq);

  // -- retention (retention.cpp) --
  status expire_chunk(pqxx::connection& c, unix_ms cutoff, unix_ms keys_cutoff,
                      std::size_t limit, expiry& out);

  std::string url_;
  reader_pool readers_;
  std::atomic<std::uint64_t> last_seq_;

  std::mutex mtx_;
  std::deque<writer*> queue_; ///< guarded by mtx_
  /// A commit's outcome is being asked after (committed_after_all): the
  /// writers queued behind it are refused at once. Guarded by mtx_.
  bool in_doubt_ = false;
  /// Used by the writer at the head of the queue only.
  std::unique_ptr<pqxx::connection> conn_;
  /// The writing session's application_name: "tocsin <host> <pid> <token>",
  /// the token this store's own (random): no other store, in this process
  /// or on another node, has the same.
  std::string session_name_;

  std::mutex health_mtx_;
  std::string down_; ///< why the database is out of reach; empty: it is not
  std::chrono::steady_clock::time_point next_connect_{};

  /// Where retention's walk over finished deliveries goes on: the place
  /// (finished_at, id) after the last one it looked at. Guarded by the
  /// writer's turn.
  unix_ms expire_from_at_ = 0;
  std::string expire_from_id_;

  /// Listens for news once listen() was called; stopped before the rest
  /// of the store goes.
  std::mutex listen_mtx_;
  std::unique_ptr<news_listener> listener_;
};

} // namespace tocsin::storage::postgres
