// RocksDB tuned for the store: the database's and the column families'
// options, the insert hints' slice transforms, RocksDB's messages sent to
// the daemon's log, and the file system that fails syncs for tests.
#include "storage/rocksdb/tuning.hpp"

#include "common/log.hpp"

#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <utility>

#include <rocksdb/cache.h>
#include <rocksdb/file_system.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/table_properties_collectors.h>

namespace tocsin::storage::rocksdb_backend {

namespace {

/// Where a key of an index by endpoint goes in a memtable follows from the
/// last key inserted with the same endpoint: RocksDB keeps the last insert
/// position per prefix (memtable_insert_with_hint_prefix_extractor) and
/// starts the next insert there instead of descending the skiplist from the
/// top. The prefix is the key up to its first NUL (the endpoint id).
class endpoint_prefix final : public rocksdb::SliceTransform {
public:
  const char* Name() const override { return "tocsin.endpoint_prefix"; }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    auto* nul =
        static_cast<const char*>(std::memchr(key.data(), '\0', key.size()));
    return {key.data(), static_cast<std::size_t>(nul - key.data())};
  }
  bool InDomain(const rocksdb::Slice& key) const override {
    return std::memchr(key.data(), '\0', key.size()) != nullptr;
  }
};

/// The log's keys (be64 sequence numbers, in increasing order) share one
/// insert hint; nothing else is in its domain. RocksDB 7.8 uses a column
/// family's insert hints for its range deletions too, whose table they do
/// not belong to (an assertion in InlineSkipList::Insert; later releases
/// leave range deletions out): retention's range deletions in the log start
/// with a key of another length, which takes no hint.
class sequence_keys final : public rocksdb::SliceTransform {
public:
  const char* Name() const override { return "tocsin.sequence_keys"; }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    return {key.data(), 0};
  }
  bool InDomain(const rocksdb::Slice& key) const override {
    return key.size() == 8;
  }
};

/// store_options::fail_log_sync: the write-ahead log's files fail to
/// sync while the hook says so (tests of a disk that fails).
class failing_sync_fs final : public rocksdb::FileSystemWrapper {
public:
  failing_sync_fs(std::shared_ptr<rocksdb::FileSystem> target,
                  std::function<bool()> fail)
      : FileSystemWrapper(std::move(target)), fail_(std::move(fail)) {}
  const char* Name() const override { return "tocsin.failing_sync_fs"; }
  rocksdb::IOStatus
  NewWritableFile(const std::string& name, const rocksdb::FileOptions& opts,
                  std::unique_ptr<rocksdb::FSWritableFile>* file,
                  rocksdb::IODebugContext* dbg) override {
    auto st = target()->NewWritableFile(name, opts, file, dbg);
    if (st.ok() && name.ends_with(".log"))
      *file = std::make_unique<wal_file>(std::move(*file), fail_);
    return st;
  }

private:
  class wal_file final : public rocksdb::FSWritableFileOwnerWrapper {
  public:
    wal_file(std::unique_ptr<rocksdb::FSWritableFile> file,
             std::function<bool()> fail)
        : FSWritableFileOwnerWrapper(std::move(file)), fail_(std::move(fail)) {}
    rocksdb::IOStatus Sync(const rocksdb::IOOptions& opts,
                           rocksdb::IODebugContext* dbg) override {
      if (fail_())
        return rocksdb::IOStatus::IOError("sync failed (injected)");
      return FSWritableFileOwnerWrapper::Sync(opts, dbg);
    }
    rocksdb::IOStatus Fsync(const rocksdb::IOOptions& opts,
                            rocksdb::IODebugContext* dbg) override {
      if (fail_())
        return rocksdb::IOStatus::IOError("sync failed (injected)");
      return FSWritableFileOwnerWrapper::Fsync(opts, dbg);
    }

  private:
    std::function<bool()> fail_;
  };

  std::function<bool()> fail_;
};

/// RocksDB's own messages go to the daemon's log (warnings and worse), not
/// to a LOG file in the data directory: that file would fill the disk too,
/// and RocksDB 7.8 aborts when it writes to it again after a failed write.
class store_logger final : public rocksdb::Logger {
public:
  store_logger() : rocksdb::Logger(rocksdb::InfoLogLevel::WARN_LEVEL) {}

  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap);
  }
  void Logv(const rocksdb::InfoLogLevel lvl, const char* format,
            va_list ap) override {
    if (lvl < GetInfoLogLevel() || lvl == rocksdb::InfoLogLevel::HEADER_LEVEL)
      return;
    char text[1024];
    std::vsnprintf(text, sizeof text, format, ap);
    log::write(lvl >= rocksdb::InfoLogLevel::ERROR_LEVEL ? log::level::error
                                                         : log::level::warn,
               "store", {{"rocksdb", text}});
  }
};

/// The block cache all column families share: data blocks and the pieces
/// of the tables' indexes.
constexpr std::size_t store_cache_bytes = 32 << 20;

} // namespace

rocksdb::DBOptions db_options(const store_options& opts,
                              std::unique_ptr<rocksdb::Env>& env) {
  rocksdb::DBOptions db_opts;
  db_opts.create_if_missing = opts.create_if_missing;
  db_opts.create_missing_column_families = true;
  // Many small writers (endpoint actors) and one syncing group committer.
  db_opts.enable_pipelined_write = true;
  db_opts.max_background_jobs = 2;
  // A producer's 202 waits for the write-ahead log's fdatasync, and on ext4
  // that waits for a journal commit, which writes out the dirty pages of
  // the table files being flushed or compacted too: written out a MiB at a
  // time as they are made, they do not pile up in front of it (fdatasync
  // seen taking up to 325 ms without this, strace, on the development VM).
  db_opts.bytes_per_sync = 1 << 20;
  db_opts.info_log = std::make_shared<store_logger>();
  if (opts.fail_log_sync) {
    env = rocksdb::NewCompositeEnv(std::make_shared<failing_sync_fs>(
        rocksdb::FileSystem::Default(), opts.fail_log_sync));
    db_opts.env = env.get();
  }
  // Memory is bounded by configuration, not by the backlog: all column
  // families share one budget for memtables (each would otherwise take up
  // to 2 x 64 MiB).
  db_opts.db_write_buffer_size = 64 << 20;
  return db_opts;
}

rocksdb::ColumnFamilyOptions cf_options() {
  rocksdb::ColumnFamilyOptions cf_opts;
  cf_opts.write_buffer_size = 16 << 20;
  // Nor do the tables' indexes grow memory with the store: they are
  // partitioned (4 KiB pieces, found through a small top-level index that
  // stays pinned) and the pieces live in one block cache of fixed size with
  // the data blocks. A whole-file index in the cache would be read and
  // parsed again on every miss; without the cache, every table's index
  // stays in memory (272 MiB with 10 M deliveries pending).
  rocksdb::BlockBasedTableOptions table;
  table.index_type = rocksdb::BlockBasedTableOptions::kTwoLevelIndexSearch;
  table.metadata_block_size = 4096;
  table.cache_index_and_filter_blocks = true;
  table.cache_index_and_filter_blocks_with_high_priority = true;
  table.pin_top_level_index_and_filter = true;
  table.pin_l0_filter_and_index_blocks_in_cache = true;
  table.block_cache = rocksdb::NewLRUCache(store_cache_bytes, -1, false, 0.5);
  cf_opts.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  // Indexes and state are deleted from all the time (a delivery leaves the
  // pending index when it finishes; retention removes what finished): files
  // dense with deletions are compacted early, so that seeks do not step over
  // long runs of tombstones.
  cf_opts.table_properties_collector_factories.push_back(
      rocksdb::NewCompactOnDeletionCollectorFactory(16384, 8192));
  return cf_opts;
}

void compact_in_key_order(rocksdb::ColumnFamilyOptions& opts) {
  opts.compaction_style = rocksdb::kCompactionStyleUniversal;
  opts.compaction_options_universal.allow_trivial_move = true;
}

std::shared_ptr<const rocksdb::SliceTransform> insert_hint_of(cf c) {
  static const std::shared_ptr<const rocksdb::SliceTransform> in_order{
      rocksdb::NewFixedPrefixTransform(0)};
  static const std::shared_ptr<const rocksdb::SliceTransform> per_endpoint{
      std::make_shared<endpoint_prefix>()};
  static const std::shared_ptr<const rocksdb::SliceTransform> log_order{
      std::make_shared<sequence_keys>()};
  switch (c) {
  case cf_log:
    return log_order;
  case cf_events:
  case cf_deliveries:
  case cf_finished:
  case cf_idempotency_at:
    return in_order;
  case cf_due:
  case cf_dead_by_endpoint:
    return per_endpoint;
  default:
    return nullptr;
  }
}

} // namespace tocsin::storage::rocksdb_backend
