// The RocksDB backend's own header: its column families and the class that
// implements storage::store over them. Its methods are defined in the .cpp
// files of this folder, one per concern, as named in the class.
#pragma once

#include "storage/store.hpp"

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/options.h>
#include <rocksdb/status.h>
#include <rocksdb/write_batch.h>

namespace tocsin::storage::rocksdb_backend {

// Column families, in the order they are opened.
enum cf : std::size_t {
  cf_default,
  cf_log,
  cf_events,
  cf_deliveries,
  cf_pending, ///< empty: an index of earlier versions (see layout_version)
  cf_dead,
  cf_idempotency,
  cf_endpoints,
  cf_dead_by_endpoint,
  cf_due, ///< endpoint id, NUL, be64(place), delivery id: pending, in order
  cf_finished, ///< be64(finished_at), delivery id: delivered or dead, by time
  cf_idempotency_at, ///< be64(at), key: idempotency keys by when recorded
  cf_escalations,    ///< event id, NUL, escalation id: derived from it (and
                     ///< see escalation_group_key)
  cf_count
};
inline const char* const cf_names[cf_count] = {
    "default",          "log",          "events",      "deliveries",
    "pending",          "dead_letters", "idempotency", "endpoints",
    "dead_by_endpoint", "due",          "finished",    "idempotency_at",
    "escalations"};

inline error store_error(const rocksdb::Status& st) {
  return error{"store_error", st.ToString()};
}

class rocksdb_store final : public store {
public:
  // open.cpp: opening, closing, and the log's insert hints.
  rocksdb_store(std::unique_ptr<rocksdb::Env> env,
                std::unique_ptr<rocksdb::DB> db,
                std::vector<rocksdb::ColumnFamilyHandle*> handles);
  ~rocksdb_store() override;
  void mark_log_hints_safe(const std::filesystem::path& marker);

  // migrations.cpp: what a store of an older version needs, once, at open.
  status backfill_dead_index();
  status migrate_pending_index();
  status backfill_time_indexes();

  // commit.cpp: group commit, syncing, refusing and resuming writes.
  result<std::uint64_t> commit(const changes& set, durability d) override;
  status sync_through(std::uint64_t seq);
  status writable() override;
  status write(rocksdb::WriteBatch& batch);
  void refuse_writes(const rocksdb::Status& st);
  void fail(const std::string& reason);
  std::optional<std::string> failed() override;
  std::uint64_t last_sequence() const override;
  void on_failure(std::function<void(const std::string&)> fn) {
    on_failure_ = std::move(fn);
  }

  // retention.cpp: what retention deletes, and when it last did.
  result<expiry> expire(unix_ms cutoff, unix_ms keys_cutoff,
                        std::size_t limit) override;
  unix_ms expired_before() override;

  // reads.cpp: the records, the indexes and the log as the store reads them.
  result<std::optional<event_record>> get_event(std::string_view id) override;
  result<std::vector<std::optional<event_record>>>
  get_events(const std::vector<std::string>& ids) override;
  rocksdb::Status
  read_in_key_order(cf c, const rocksdb::ReadOptions& ro,
                    const std::vector<std::string_view>& ids,
                    std::vector<std::optional<std::string>>& out);
  result<std::optional<idempotency_record>>
  get_idempotency_key(std::string_view key) override;
  result<std::optional<delivery>> get_delivery(std::string_view id) override;
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

private:
  struct writer {
    const changes* set; ///< nothing: an exclusive turn (see exclusive)
    status result = {};
    std::uint64_t last = 0; ///< sequence number of its last record
    bool done = false;
    std::condition_variable cv = {};
  };

  struct key_range {
    std::string from, to; ///< [from, to)
  };

  // commit.cpp
  void exclusively(const std::function<void()>& fn);
  result<std::uint64_t> write_in_turn(writer& w);

  // changes.cpp: each change written to a batch, and the indexes kept with it.
  status add_to_batch(rocksdb::WriteBatch& batch, const changes& set,
                      std::uint64_t& seq);
  rocksdb::Status put_delivery(rocksdb::WriteBatch& batch, const change& c);
  rocksdb::Status forget_escalation(rocksdb::WriteBatch& batch,
                                    const std::string& id);
  rocksdb::Status forget_dead_letter(rocksdb::WriteBatch& batch,
                                     std::string_view id);

  // retention.cpp
  result<expiry> expire_chunk(unix_ms cutoff, unix_ms keys_cutoff,
                              std::size_t limit);
  void drop_log_tables(const key_range& range);
  rocksdb::Status expire_keys(rocksdb::WriteBatch& batch, unix_ms cutoff,
                              std::size_t limit, expiry& out);
  rocksdb::Status expire_log(rocksdb::WriteBatch& batch, unix_ms cutoff,
                             expiry& out, std::optional<key_range>& range);

  std::unique_ptr<rocksdb::Env> env_; ///< nothing: the default; outlives db_
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> cfs_;
  mutable std::mutex mtx_;
  std::deque<writer*> queue_;  ///< guarded by mtx_
  std::uint64_t last_seq_ = 0; ///< guarded by mtx_
  // The sync stage (sync_through), guarded by sync_mtx_.
  std::mutex sync_mtx_;
  std::condition_variable sync_cv_;
  bool syncing_ = false;
  std::uint64_t synced_through_ = 0; ///< every record up to it is synced
  std::uint64_t failed_through_ = 0; ///< a failed sync covered up to it
  std::string sync_error_;
  // Where retention's last chunk stopped in each time index (everything
  // before is deleted). Only touched exclusively.
  std::string finished_from_;
  std::string keys_from_;
  std::mutex health_mtx_;
  std::string refused_; ///< why writes fail; empty: they do not
  std::string failed_;  ///< why the store cannot go on; empty: it can
  std::function<void(const std::string&)> on_failure_; ///< set at open
  std::chrono::steady_clock::time_point next_resume_{};
};

} // namespace tocsin::storage::rocksdb_backend
