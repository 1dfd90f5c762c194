// Opening the RocksDB store: its column families (those of newer versions
// too), the migrations an older store needs, and closing it.
#include "storage/rocksdb/rocksdb_store.hpp"

#include "storage/rocksdb/keys.hpp"
#include "storage/rocksdb/store_impl.hpp"
#include "storage/rocksdb/tuning.hpp"

#include "common/log.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iterator>
#include <system_error>

namespace tocsin::storage::rocksdb_backend {

namespace {

/// A file in the store's directory: the write-ahead log holds no range
/// deletion in the log that starts inside sequence_keys' domain (those of
/// tocsin before 2026-11-28 did), so the log may take insert hints.
constexpr std::string_view log_hints_marker = "TOCSIN-LOG-HINTS";

} // namespace

rocksdb_store::rocksdb_store(std::unique_ptr<rocksdb::Env> env,
                             std::unique_ptr<rocksdb::DB> db,
                             std::vector<rocksdb::ColumnFamilyHandle*> handles)
    : env_(std::move(env)), db_(std::move(db)), cfs_(std::move(handles)) {
  std::unique_ptr<rocksdb::Iterator> it{
      db_->NewIterator(rocksdb::ReadOptions{}, cfs_[cf_log])};
  it->SeekToLast();
  last_seq_ = it->Valid() ? from_be64(it->key()) : 0;
}

rocksdb_store::~rocksdb_store() {
  for (auto* h : cfs_) {
    // Closing: nothing useful to do with an error here.
    [[maybe_unused]] auto st = db_->DestroyColumnFamilyHandle(h);
  }
  [[maybe_unused]] auto st = db_->Close();
}

/// Flushes the log's memtable, so that no write-ahead log written before
/// is replayed into it, and then leaves the marker file that lets the log
/// take insert hints from the next opening on (see log_hints_marker).
/// Without it the store works as well, only without those hints.
void rocksdb_store::mark_log_hints_safe(const std::filesystem::path& marker) {
  rocksdb::FlushOptions fo;
  fo.wait = true;
  if (auto st = db_->Flush(fo, cfs_[cf_log]); !st.ok()) {
    log::warn("store: flushing the log failed; its inserts stay unhinted",
              {{"error", st.ToString()}});
    return;
  }
  std::FILE* f = std::fopen(marker.c_str(), "w");
  if (f)
    std::fclose(f);
}

} // namespace tocsin::storage::rocksdb_backend

namespace tocsin::storage {

result<std::unique_ptr<store>> open_rocksdb_store(const store_options& opts) {
  using namespace rocksdb_backend;
  std::unique_ptr<rocksdb::Env> env;
  rocksdb::DBOptions db_opts = db_options(opts, env);
  rocksdb::ColumnFamilyOptions cf_opts = cf_options();
  // Column families this version does not know (a newer tocsin wrote them)
  // must still be listed to open the database.
  std::vector<std::string> existing;
  // A store that does not exist yet is not an error worth logging: RocksDB
  // logs one when the directory it is to create a database in is missing.
  std::error_code ec;
  if (opts.create_if_missing)
    std::filesystem::create_directories(opts.dir, ec); // Open says if it failed
  bool fresh =
      !rocksdb::DB::ListColumnFamilies(db_opts, opts.dir, &existing).ok();
  // A store of an older version may replay a range deletion into the log's
  // memtable that its hints must not meet (see sequence_keys): it opens
  // without them once, and its log is flushed before the marker says so.
  auto marker = std::filesystem::path{opts.dir} / log_hints_marker;
  bool log_hints = fresh || std::filesystem::exists(marker, ec);
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (std::size_t c = 0; c < cf_count; ++c) {
    auto opts_of_cf = cf_opts;
    if (c != cf_log || log_hints)
      opts_of_cf.memtable_insert_with_hint_prefix_extractor =
          insert_hint_of(static_cast<cf>(c));
    if (c == cf_log || c == cf_events)
      compact_in_key_order(opts_of_cf);
    descriptors.emplace_back(cf_names[c], opts_of_cf);
  }
  for (auto& name : existing)
    if (std::find(std::begin(cf_names), std::end(cf_names), name) ==
        std::end(cf_names))
      descriptors.emplace_back(name, cf_opts);
  bool needs_dead_index =
      !fresh && std::find(existing.begin(), existing.end(),
                          cf_names[cf_dead_by_endpoint]) == existing.end();
  bool needs_time_indexes =
      !fresh && std::find(existing.begin(), existing.end(),
                          cf_names[cf_finished]) == existing.end();
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  auto st = rocksdb::DB::Open(db_opts, opts.dir, descriptors, &handles, &raw);
  if (!st.ok()) {
    if (st.IsIOError() && st.ToString().find("lock") != std::string::npos)
      return error{"store_locked",
                   "the store in " + opts.dir +
                       " is locked by another process: " + st.ToString()};
    return error{"store_open_failed",
                 "cannot open the store in " + opts.dir + ": " + st.ToString()};
  }
  std::unique_ptr<rocksdb::DB> db{raw};
  auto log = std::make_unique<rocksdb_store>(std::move(env), std::move(db),
                                             std::move(handles));
  log->on_failure(opts.on_failure);
  if (needs_dead_index)
    if (auto s = log->backfill_dead_index(); !s)
      return s.error();
  if (auto s = log->migrate_pending_index(); !s)
    return s.error();
  if (needs_time_indexes)
    if (auto s = log->backfill_time_indexes(); !s)
      return s.error();
  if (!std::filesystem::exists(marker, ec))
    log->mark_log_hints_safe(marker);
  return std::unique_ptr<store>{std::move(log)};
}

} // namespace tocsin::storage
