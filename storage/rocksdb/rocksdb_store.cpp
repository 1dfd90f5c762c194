#include "storage/store.hpp"

#include "common/ids.hpp"

#include "common/json_parse.hpp"
#include "common/log.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <limits>
#include <mutex>
#include <numeric>
#include <unordered_set>

#include <nlohmann/json.hpp>
#include <rocksdb/cache.h>
#include <rocksdb/convenience.h>
#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/file_system.h>
#include <rocksdb/options.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/table_properties_collectors.h>
#include <rocksdb/write_batch.h>

namespace tocsin::storage {

namespace {

/// Escalation keys (cf_escalations), besides escalation_linked's
/// "<event id>\0<escalation id>":
/// - "<event id>\0#<group key>": the event was counted in the group;
/// - "#<group key><be64(at)><escalation id>": the group's escalations, by
///   when they were accepted;
/// - "<escalation id>": its members (escalation_members_value).
/// A group key is "<rule>\0<be16(group size)><group>": groups are any
/// string, NULs included.
std::string escalation_group_key(std::string_view rule,
                                 std::string_view group) {
  std::string key{rule};
  key += '\0';
  key += static_cast<char>((group.size() >> 8) & 0xff);
  key += static_cast<char>(group.size() & 0xff);
  key += group;
  return key;
}

std::string be64_of(std::uint64_t v) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i, v >>= 8)
    out[static_cast<std::size_t>(i)] = static_cast<char>(v & 0xff);
  return out;
}

/// "<event id>\0<escalation id>": an escalation_linked change.
std::string link_key(std::string_view event_id,
                     std::string_view escalation_id) {
  std::string key{event_id};
  key += '\0';
  key += escalation_id;
  return key;
}

/// "<event id>\0#<group key>": a counted_in_group change.
std::string counted_key(std::string_view event_id, std::string_view rule,
                        std::string_view group) {
  std::string key{event_id};
  key += '\0';
  key += '#';
  key += escalation_group_key(rule, group);
  return key;
}

/// "#<group key><be64(at)><escalation id>": an escalation's place in its
/// group's index.
std::string group_index_key(std::string_view rule, std::string_view group,
                            unix_ms at, std::string_view escalation_id) {
  auto key = '#' + escalation_group_key(rule, group) +
             be64_of(static_cast<std::uint64_t>(at));
  key += escalation_id;
  return key;
}

constexpr std::string_view crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
constexpr std::size_t packed_id_bytes = 17; ///< 26 characters of 5 bits
/// Each character's value in `crockford`, -1 for the others (upper case
/// only, as ids are made).
constexpr auto base32_value = [] {
  std::array<signed char, 256> t{};
  t.fill(-1);
  for (std::size_t i = 0; i < crockford.size(); ++i)
    t[static_cast<unsigned char>(crockford[i])] = static_cast<signed char>(i);
  return t;
}();

/// be16(size of the group index key), the group index key, then the
/// members: 'b' and 17 bytes per id (the 26 base32 characters after "evt_",
/// 5 bits each) when all are event ids, as they are; else 't' and the ids,
/// each followed by '\n'. 1,000 members take 17 kB.
std::string escalation_members_value(std::string_view index_key,
                                     std::string_view members) {
  std::string v;
  v.reserve(3 + index_key.size() + members.size());
  v += static_cast<char>((index_key.size() >> 8) & 0xff);
  v += static_cast<char>(index_key.size() & 0xff);
  v += index_key;
  auto header = v.size();
  v += 'b';
  for (std::size_t at = 0; at < members.size();) {
    auto end = members.find('\n', at);
    if (end == std::string_view::npos)
      end = members.size();
    auto id = members.substr(at, end - at);
    at = end + 1;
    bool packable = id.size() == 30 && id.starts_with("evt_");
    for (std::size_t i = 4; packable && i < id.size(); ++i)
      packable = base32_value[static_cast<unsigned char>(id[i])] >= 0;
    if (!packable) {
      v.resize(header);
      v += 't';
      v += members;
      return v;
    }
    unsigned acc = 0;
    int bits = 0;
    for (char c : id.substr(4)) {
      acc = (acc << 5) |
            static_cast<unsigned>(base32_value[static_cast<unsigned char>(c)]);
      bits += 5;
      if (bits >= 8) {
        bits -= 8;
        v += static_cast<char>((acc >> bits) & 0xff);
      }
    }
    v += static_cast<char>((acc << (8 - bits)) & 0xff); // 130 = 16 * 8 + 2
  }
  return v;
}

/// The group index key of an escalation_members_value, and calls
/// `fn(id)` for each member in order until it returns false.
template <class F>
std::string_view for_each_member(std::string_view v, F&& fn) {
  if (v.size() < 2)
    return {};
  auto n = (static_cast<std::size_t>(static_cast<unsigned char>(v[0])) << 8) |
           static_cast<unsigned char>(v[1]);
  if (v.size() < 3 + n)
    return {};
  auto index_key = v.substr(2, n);
  auto form = v[2 + n];
  auto rest = v.substr(3 + n);
  if (form == 't') {
    for (std::size_t at = 0; at < rest.size();) {
      auto end = rest.find('\n', at);
      if (end == std::string_view::npos)
        end = rest.size();
      if (end > at && !fn(rest.substr(at, end - at)))
        break;
      at = end + 1;
    }
  } else if (form == 'b') {
    std::string id = "evt_";
    for (std::size_t at = 0; at + packed_id_bytes <= rest.size();
         at += packed_id_bytes) {
      id.resize(4);
      unsigned acc = 0;
      int bits = 0;
      for (std::size_t i = 0; i < packed_id_bytes && id.size() < 30; ++i) {
        acc = (acc << 8) | static_cast<unsigned char>(rest[at + i]);
        bits += 8;
        while (bits >= 5 && id.size() < 30) {
          bits -= 5;
          id += crockford[(acc >> bits) & 31];
        }
        acc &= (1u << bits) - 1;
      }
      if (!fn(std::string_view{id}))
        break;
    }
  }
  return index_key;
}

/// The group index key of an escalation_members_value.
std::string_view index_key_of(std::string_view v) {
  return for_each_member(v, [](std::string_view) { return false; });
}

} // namespace

// -- RocksDB implementation ---------------------------------------------------

namespace {

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
const char* const cf_names[cf_count] = {
    "default",          "log",          "events",      "deliveries",
    "pending",          "dead_letters", "idempotency", "endpoints",
    "dead_by_endpoint", "due",          "finished",    "idempotency_at",
    "escalations"};

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

/// A file in the store's directory: the write-ahead log holds no range
/// deletion in the log that starts inside sequence_keys' domain (those of
/// tocsin before 2026-11-28 did), so the log may take insert hints.
constexpr std::string_view log_hints_marker = "TOCSIN-LOG-HINTS";

/// For column families written (nearly) in key order — the log by sequence
/// number, events by their time-ordered ids: a flushed table's keys follow
/// those of the tables before it, so that universal compaction can move
/// tables down by their metadata instead of rewriting them, as leveled
/// compaction does from L0 to L1 (e2e_bench, batched: leveled compaction
/// rewrote each of their records once, about 2.5 us of CPU per delivered
/// event; alternated in one run, the daemon took 49.7 us per event with it
/// and 43.0 us with this). Retention's deletions still meet what they
/// delete: a table with tombstones overlaps older ones, is merged with them,
/// and one dense with them is compacted early (CompactOnDeletionCollector);
/// the log's tables of expired records are dropped besides
/// (drop_log_tables). A store of an older version, compacted by level, opens
/// as it is: each of its levels is one sorted run to universal compaction.
void compact_in_key_order(rocksdb::ColumnFamilyOptions& opts) {
  opts.compaction_style = rocksdb::kCompactionStyleUniversal;
  opts.compaction_options_universal.allow_trivial_move = true;
}

/// Memtable insert hints per column family (see endpoint_prefix). Keys made
/// in increasing order (time-ordered ids, time keys) share one hint: each
/// insert lands right after the previous one. Column families keyed by
/// arbitrary ids take none, and neither do the escalations, which retention
/// removes ranges from (see sequence_keys).
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

/// The block cache all column families share: data blocks and the pieces
/// of the tables' indexes.
constexpr std::size_t store_cache_bytes = 32 << 20;

/// In the default column family: the newest cutoff expire() has applied.
constexpr std::string_view expired_before_key = "expired_before";

/// In the default column family: the layout of the indexes ("3": one index
/// of pending deliveries per endpoint, in `due`). Stores without it index
/// pending deliveries by id alone, and those of layout "2" in acceptance
/// order as well (in `pending`); both are migrated at open.
constexpr std::string_view layout_key = "index_layout";
constexpr std::string_view layout_version = "3";

std::string be64(std::uint64_t v) {
  std::string k(8, '\0');
  for (int i = 7; i >= 0; --i) {
    k[static_cast<std::size_t>(i)] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  return k;
}

std::uint64_t from_be64(const rocksdb::Slice& k) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < k.size() && i < 8; ++i)
    v = (v << 8) | static_cast<unsigned char>(k[i]);
  return v;
}

/// The per-endpoint dead-letter index: endpoint id, NUL (ids never hold
/// one), when it died (big-endian, so keys sort by time), delivery id.
std::string dead_index_key(std::string_view endpoint_id, unix_ms finished_at,
                           std::string_view delivery_id) {
  std::string k{endpoint_id};
  k += '\0';
  k += be64(static_cast<std::uint64_t>(std::max<unix_ms>(0, finished_at)));
  k += delivery_id;
  return k;
}

std::string due_index_key(std::string_view endpoint_id, unix_ms due,
                          std::string_view delivery_id) {
  std::string k{endpoint_id};
  k += '\0';
  k += be64(static_cast<std::uint64_t>(std::max<unix_ms>(0, due)));
  k += delivery_id;
  return k;
}

/// A key of a time index: when (big-endian, so keys sort by time), then id.
std::string time_key(unix_ms at, std::string_view id) {
  std::string k = be64(static_cast<std::uint64_t>(std::max<unix_ms>(0, at)));
  k += id;
  return k;
}

error store_error(const rocksdb::Status& st) {
  return error{"store_error", st.ToString()};
}

class rocksdb_store final : public store {
public:
  rocksdb_store(std::unique_ptr<rocksdb::Env> env,
                    std::unique_ptr<rocksdb::DB> db,
                    std::vector<rocksdb::ColumnFamilyHandle*> handles)
      : env_(std::move(env)), db_(std::move(db)), cfs_(std::move(handles)) {
    std::unique_ptr<rocksdb::Iterator> it{
        db_->NewIterator(rocksdb::ReadOptions{}, cfs_[cf_log])};
    it->SeekToLast();
    last_seq_ = it->Valid() ? from_be64(it->key()) : 0;
  }

  ~rocksdb_store() override {
    for (auto* h : cfs_) {
      // Closing: nothing useful to do with an error here.
      [[maybe_unused]] auto st = db_->DestroyColumnFamilyHandle(h);
    }
    [[maybe_unused]] auto st = db_->Close();
  }

  /// Builds the per-endpoint dead-letter index for a store written before it
  /// existed (once, at open).
  status backfill_dead_index() {
    std::unique_ptr<rocksdb::Iterator> it{
        db_->NewIterator(rocksdb::ReadOptions{}, cfs_[cf_dead])};
    rocksdb::WriteBatch batch;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      auto d = get_delivery(it->key().ToStringView());
      if (!d)
        return d.error();
      if (!*d)
        continue;
      auto key = dead_index_key((*d)->endpoint_id, (*d)->finished_at, (*d)->id);
      if (auto st = batch.Put(cfs_[cf_dead], (*d)->id, key); !st.ok())
        return store_error(st);
      if (auto st = batch.Put(cfs_[cf_dead_by_endpoint], key, {}); !st.ok())
        return store_error(st);
    }
    if (!it->status().ok())
      return store_error(it->status());
    rocksdb::WriteOptions wo;
    wo.sync = true;
    if (auto st = db_->Write(wo, &batch); !st.ok())
      return store_error(st);
    return {};
  }

  /// Brings the pending index to this version's layout (once, at open;
  /// idempotent): a store that indexed pending deliveries by id alone gets
  /// them indexed per endpoint by due time (in batches, so that a large
  /// backlog does not need one huge write); a store that kept a second
  /// index in acceptance order drops it (one range deletion and its table
  /// files, not a write per delivery).
  status migrate_pending_index() {
    std::string layout;
    auto got =
        db_->Get(rocksdb::ReadOptions{}, cfs_[cf_default], layout_key, &layout);
    if (got.ok() && layout == layout_version)
      return {};
    if (!got.ok() && !got.IsNotFound())
      return store_error(got);
    std::unique_ptr<rocksdb::Iterator> it{
        db_->NewIterator(rocksdb::ReadOptions{}, cfs_[cf_pending])};
    rocksdb::WriteBatch batch;
    auto flush = [&]() -> status {
      if (auto st = db_->Write(rocksdb::WriteOptions{}, &batch); !st.ok())
        return store_error(st);
      batch.Clear();
      return {};
    };
    if (got.IsNotFound()) {
      for (it->SeekToFirst(); it->Valid(); it->Next()) {
        auto id = it->key().ToStringView();
        if (id.find('\0') != std::string_view::npos)
          continue; // indexed per endpoint already
        auto d = get_delivery(id);
        if (!d)
          return d.error();
        if (*d && (*d)->state == delivery_state::pending)
          if (auto st =
                  batch.Put(cfs_[cf_due],
                            due_index_key((*d)->endpoint_id,
                                          (*d)->next_attempt_at, (*d)->id),
                            {});
              !st.ok())
            return store_error(st);
        if (batch.Count() >= 30000)
          TOCSIN_TRY(flush());
      }
      if (!it->status().ok())
        return store_error(it->status());
    }
    std::optional<std::pair<std::string, std::string>> range;
    it->SeekToFirst();
    if (it->Valid()) {
      auto first = it->key().ToString();
      it->SeekToLast();
      if (it->Valid())
        range.emplace(std::move(first), it->key().ToString() + '\0');
    }
    if (!it->status().ok())
      return store_error(it->status());
    it.reset();
    if (range)
      if (auto st =
              batch.DeleteRange(cfs_[cf_pending], range->first, range->second);
          !st.ok())
        return store_error(st);
    if (auto st = batch.Put(cfs_[cf_default], layout_key, layout_version);
        !st.ok())
      return store_error(st);
    rocksdb::WriteOptions wo;
    wo.sync = true;
    if (auto st = db_->Write(wo, &batch); !st.ok())
      return store_error(st);
    if (range) {
      // Its tables go: those below level 0 at once, the few in level 0 (and
      // the memtable) by a compaction that finds them all deleted.
      rocksdb::Slice from{range->first}, to{range->second};
      auto st = rocksdb::DeleteFilesInRange(db_.get(), cfs_[cf_pending], &from,
                                            &to, /*include_end=*/false);
      if (st.ok())
        st = db_->CompactRange(rocksdb::CompactRangeOptions{}, cfs_[cf_pending],
                               nullptr, nullptr);
      if (!st.ok())
        log::warn("the old pending index stays on disk until compacted",
                  {{"error", st.ToString()}});
    }
    return {};
  }

  /// Indexes finished deliveries and idempotency keys by time in a store
  /// written before retention (once, at open; in batches).
  status backfill_time_indexes() {
    rocksdb::WriteBatch batch;
    auto flush = [&]() -> status {
      if (batch.Count() == 0)
        return {};
      rocksdb::WriteOptions wo;
      wo.sync = true;
      if (auto st = db_->Write(wo, &batch); !st.ok())
        return store_error(st);
      batch.Clear();
      return {};
    };
    // Every record of `from` that `index_key` gives a key for goes into
    // `index`.
    auto build = [&](std::size_t from, std::size_t index,
                     auto index_key) -> status {
      std::unique_ptr<rocksdb::Iterator> it{
          db_->NewIterator(rocksdb::ReadOptions{}, cfs_[from])};
      for (it->SeekToFirst(); it->Valid(); it->Next()) {
        std::optional<std::string> key = index_key(it.get());
        if (!key)
          continue;
        if (auto st = batch.Put(cfs_[index], *key, {}); !st.ok())
          return store_error(st);
        if (batch.Count() >= 30000)
          TOCSIN_TRY(flush());
      }
      if (!it->status().ok())
        return store_error(it->status());
      return {};
    };
    TOCSIN_TRY(build(cf_deliveries, cf_finished,
                     [](rocksdb::Iterator* it) -> std::optional<std::string> {
                       auto d = decode_delivery(it->value().ToStringView());
                       if (!d || d->state == delivery_state::pending)
                         return std::nullopt;
                       return time_key(d->finished_at, d->id);
                     }));
    TOCSIN_TRY(
        build(cf_idempotency, cf_idempotency_at,
              [this](rocksdb::Iterator* it) -> std::optional<std::string> {
                auto key = it->key().ToStringView();
                auto rec = get_idempotency_key(key);
                if (!rec || !*rec)
                  return std::nullopt;
                return time_key((*rec)->at, key);
              }));
    return flush();
  }

  // Writers queue up; the one at the front writes the whole queue as one
  // batch (sequence numbers assigned there, in queue order) while the next
  // ones gather behind it — RocksDB's own group commit, one level up, so that
  // sequence numbers follow commit order and a failed write takes none.
  // Writing does not wait for the disk: a commit that must be synced waits
  // afterwards for a sync of the log that covers it, one sync for all that
  // wait, while the commits behind it write on (a delivery's step does not
  // wait for an ingest's fsync).
  result<std::uint64_t> commit(const changes& set, durability d) override {
    if (set.empty()) {
      // Nothing to write, but a synced commit still vouches for what it
      // answers from the store (an idempotency key's replay): not while the
      // store cannot say that is on disk.
      if (d == durability::synced)
        TOCSIN_TRY(writable());
      return last_sequence();
    }
    writer w{&set};
    auto last = write_in_turn(w);
    if (last && d == durability::synced)
      TOCSIN_TRY(sync_through(*last));
    return last;
  }

  /// Returns once the write-ahead log is synced at least through sequence
  /// number `seq` (written already). One caller syncs for all that wait: a
  /// sync covers every record written before it began. Writes go on while
  /// the disk syncs.
  status sync_through(std::uint64_t seq) {
    std::unique_lock lock{sync_mtx_};
    while (synced_through_ < seq) {
      // What a failed sync covered may not have reached the disk (nor will
      // a later sync say otherwise): each writer it covered fails.
      if (seq <= failed_through_)
        return error{"store_error", "syncing the log failed: " + sync_error_};
      if (syncing_) {
        sync_cv_.wait(lock);
        continue;
      }
      syncing_ = true;
      auto target = last_sequence(); // every record up to it is written
      lock.unlock();
      auto st = db_->SyncWAL();
      lock.lock();
      syncing_ = false;
      sync_cv_.notify_all();
      if (st.ok()) {
        synced_through_ = std::max(synced_through_, target);
      } else {
        refuse_writes(st);
        failed_through_ = std::max(failed_through_, target);
        sync_error_ = st.ToString();
      }
    }
    return {};
  }

  status writable() override {
    std::lock_guard guard{health_mtx_};
    if (refused_.empty())
      return {};
    auto now = std::chrono::steady_clock::now();
    if (now < next_resume_)
      return error{"store_error", "the store refuses writes: " + refused_};
    next_resume_ = now + std::chrono::seconds{1};
    if (auto st = db_->Resume(); !st.ok())
      return error{"store_error", "the store refuses writes: " + st.ToString()};
    refused_.clear();
    log::warn("store takes writes again");
    return {};
  }

  /// Writes a batch, not synced (see sync_through). After a failed write (a
  /// full disk, say) RocksDB refuses every write until it is resumed:
  /// writable() tries that at most once a second, so that the store takes
  /// writes again by itself once the cause is gone.
  status write(rocksdb::WriteBatch& batch) {
    TOCSIN_TRY(writable());
    auto st = db_->Write(rocksdb::WriteOptions{}, &batch);
    if (st.ok())
      return {};
    if (st.IsIOError())
      refuse_writes(st);
    return store_error(st);
  }

  /// After a write or sync failed for want of space or I/O: every commit
  /// fails until writable() finds the store recovered. RocksDB 7.8 never
  /// resumes after a failed sync of its write-ahead log (the test
  /// a_failed_sync_fails_what_it_covered_and_stops_writes holds it to that):
  /// what such a sync covered sits in the memtables but is never answered
  /// as durable in this process.
  void refuse_writes(const rocksdb::Status& st) {
    std::lock_guard guard{health_mtx_};
    if (!refused_.empty())
      return;
    refused_ = st.ToString();
    next_resume_ = std::chrono::steady_clock::now() + std::chrono::seconds{1};
    log::error("store refuses writes; new events are refused with 503 "
               "until it takes them again",
               {{"error", refused_}});
  }

  std::uint64_t last_sequence() const override {
    std::lock_guard guard{mtx_};
    return last_seq_;
  }

  result<expiry> expire(unix_ms cutoff, unix_ms keys_cutoff,
                        std::size_t limit) override {
    result<expiry> out = expiry{};
    exclusively([&] {
      auto finished_from = finished_from_, keys_from = keys_from_;
      out = expire_chunk(cutoff, keys_cutoff, limit);
      if (!out) { // nothing was deleted: start there again
        finished_from_ = std::move(finished_from);
        keys_from_ = std::move(keys_from);
      }
    });
    return out;
  }

  unix_ms expired_before() override {
    std::string v;
    auto st = db_->Get(rocksdb::ReadOptions{}, cfs_[cf_default],
                       expired_before_key, &v);
    return st.ok() ? static_cast<unix_ms>(from_be64(v)) : 0;
  }

  result<std::optional<event_record>> get_event(std::string_view id) override {
    std::string value;
    auto st = db_->Get(rocksdb::ReadOptions{}, cfs_[cf_events], id, &value);
    if (st.IsNotFound())
      return std::optional<event_record>{};
    if (!st.ok())
      return store_error(st);
    auto e = decode_event(value);
    if (!e)
      return error{"store_corrupt",
                   "unreadable event record " + std::string{id}};
    return e;
  }

  result<std::vector<std::optional<event_record>>>
  get_events(const std::vector<std::string>& ids) override {
    std::vector<std::string_view> keys(ids.begin(), ids.end());
    std::vector<std::optional<std::string>> values;
    if (auto st = read_in_key_order(cf_events, {}, keys, values); !st.ok())
      return store_error(st);
    std::vector<std::optional<event_record>> out(ids.size());
    for (std::size_t i = 0; i < ids.size(); ++i) {
      if (!values[i])
        continue;
      out[i] = decode_event(*values[i]);
      if (!out[i])
        return error{"store_corrupt", "unreadable event record " + ids[i]};
    }
    return out;
  }

  /// Reads the records of `ids` in `c` as `ro` sees them into `out` (in
  /// the order asked for; nothing for one not found) in one pass of an
  /// iterator in key order: ids that lie close together in the store — a
  /// page of deliveries in due order, their events (ids are time-ordered)
  /// — cost a step each, not a lookup each; a gap costs one seek. (Against
  /// MultiGet, the drain of a backlog took 2-3 us less CPU per event.)
  rocksdb::Status
  read_in_key_order(cf c, const rocksdb::ReadOptions& ro,
                    const std::vector<std::string_view>& ids,
                    std::vector<std::optional<std::string>>& out) {
    constexpr int steps_before_a_seek = 8;
    out.assign(ids.size(), std::nullopt);
    if (ids.empty())
      return rocksdb::Status::OK();
    std::vector<std::size_t> order(ids.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::sort(order.begin(), order.end(),
              [&](std::size_t a, std::size_t b) { return ids[a] < ids[b]; });
    std::unique_ptr<rocksdb::Iterator> it{db_->NewIterator(ro, cfs_[c])};
    bool positioned = false;
    for (auto i : order) {
      rocksdb::Slice id{ids[i].data(), ids[i].size()};
      int steps = 0;
      while (positioned && it->Valid() && it->key().compare(id) < 0 &&
             steps++ < steps_before_a_seek)
        it->Next();
      if (!positioned || !it->Valid() || it->key().compare(id) < 0) {
        if (!it->status().ok())
          break;
        it->Seek(id);
        positioned = true;
      }
      if (it->Valid() && it->key() == id)
        out[i] = it->value().ToString();
    }
    return it->status();
  }

  result<std::optional<idempotency_record>>
  get_idempotency_key(std::string_view key) override {
    std::string value;
    auto st =
        db_->Get(rocksdb::ReadOptions{}, cfs_[cf_idempotency], key, &value);
    if (st.IsNotFound())
      return std::optional<idempotency_record>{};
    if (!st.ok())
      return store_error(st);
    auto rec = decode_idempotency(value);
    if (!rec)
      return error{"store_corrupt", "unreadable idempotency record"};
    return rec;
  }

  result<std::optional<delivery>> get_delivery(std::string_view id) override {
    std::string value;
    auto st = db_->Get(rocksdb::ReadOptions{}, cfs_[cf_deliveries], id, &value);
    if (st.IsNotFound())
      return std::optional<delivery>{};
    if (!st.ok())
      return store_error(st);
    auto d = decode_delivery(value);
    if (!d)
      return error{"store_corrupt",
                   "unreadable delivery record " + std::string{id}};
    return d;
  }

  result<line_page>
  line_of(std::string_view endpoint_id, const line_position& from,
          std::size_t limit,
          const std::function<bool(std::string_view id)>& held) override {
    // One snapshot for the index, the records and the log position.
    const rocksdb::Snapshot* snap = db_->GetSnapshot();
    rocksdb::ReadOptions ro;
    ro.snapshot = snap;
    auto release = [&] { db_->ReleaseSnapshot(snap); };
    line_page page;
    {
      std::unique_ptr<rocksdb::Iterator> log_it{
          db_->NewIterator(ro, cfs_[cf_log])};
      log_it->SeekToLast();
      page.as_of = log_it->Valid() ? from_be64(log_it->key()) : 0;
    }
    std::string prefix{endpoint_id};
    prefix += '\0';
    // Stop at the end of this endpoint's entries, not at the next live key
    // (past however many tombstones of finished deliveries lie between).
    std::string end{endpoint_id};
    end += '\x01';
    rocksdb::Slice upper{end};
    ro.iterate_upper_bound = &upper;
    std::unique_ptr<rocksdb::Iterator> it{db_->NewIterator(ro, cfs_[cf_due])};
    it->Seek(due_index_key(endpoint_id, from.place, from.id));
    // The index first, then the records in one pass in key order.
    std::vector<line_position> keys;
    for (; it->Valid() && it->key().starts_with(prefix); it->Next()) {
      auto rest = it->key().ToStringView().substr(prefix.size());
      if (rest.size() < 8)
        continue;
      line_position key;
      key.place = static_cast<unix_ms>(from_be64(rocksdb::Slice{rest.data(), 8}));
      rest.remove_prefix(8);
      key.id = std::string{rest};
      if (held && held(key.id))
        continue;
      if (keys.size() >= limit) {
        page.next = std::move(key);
        break;
      }
      keys.push_back(std::move(key));
    }
    auto st = it->status();
    std::vector<std::string_view> ids;
    ids.reserve(keys.size());
    for (auto& k : keys)
      ids.emplace_back(k.id);
    std::vector<std::optional<std::string>> values;
    ro.iterate_upper_bound = nullptr; // records are not kept per endpoint
    if (st.ok())
      st = read_in_key_order(cf_deliveries, ro, ids, values);
    release();
    if (!st.ok())
      return store_error(st);
    for (std::size_t i = 0; i < keys.size(); ++i) {
      if (!values[i])
        continue; // an index entry left behind: nothing to deliver
      auto d = decode_delivery(*values[i]);
      if (!d)
        return error{"store_corrupt",
                     "unreadable delivery record " + keys[i].id};
      // Only entries of pending deliveries count (a stale one is left
      // behind by nothing this code writes, but reading is the safe side).
      if (d->state != delivery_state::pending)
        continue;
      page.deliveries.push_back(std::move(*d));
      page.places.push_back(keys[i].place);
    }
    return page;
  }

  result<std::vector<std::string>> endpoints_with_pending() override {
    std::vector<std::string> out;
    std::unique_ptr<rocksdb::Iterator> it{
        db_->NewIterator(rocksdb::ReadOptions{}, cfs_[cf_due])};
    for (it->SeekToFirst(); it->Valid();) {
      auto key = it->key().ToStringView();
      auto endpoint = key.substr(0, key.find('\0'));
      out.emplace_back(endpoint);
      it->Seek(std::string{endpoint} + '\x01'); // past "endpoint\0..."
    }
    if (!it->status().ok())
      return store_error(it->status());
    return out;
  }

  result<std::vector<delivery>> list_dead_letters(std::string_view after,
                                                  std::size_t limit) override {
    std::vector<delivery> out;
    std::unique_ptr<rocksdb::Iterator> it{
        db_->NewIterator(rocksdb::ReadOptions{}, cfs_[cf_dead])};
    if (after.empty())
      it->SeekToFirst();
    else
      it->Seek(after);
    for (; it->Valid() && out.size() < limit; it->Next()) {
      if (!after.empty() && it->key().ToStringView() == after)
        continue;
      auto d = get_delivery(it->key().ToStringView());
      if (!d)
        return d.error();
      if (*d)
        out.push_back(std::move(**d));
    }
    if (!it->status().ok())
      return store_error(it->status());
    return out;
  }

  result<std::vector<delivery>>
  list_dead_letters_of(std::string_view endpoint_id, unix_ms since,
                       std::size_t limit) override {
    std::vector<delivery> out;
    std::string prefix{endpoint_id};
    prefix += '\0';
    std::unique_ptr<rocksdb::Iterator> it{
        db_->NewIterator(rocksdb::ReadOptions{}, cfs_[cf_dead_by_endpoint])};
    for (it->Seek(dead_index_key(endpoint_id, since, {}));
         it->Valid() && out.size() < limit && it->key().starts_with(prefix);
         it->Next()) {
      auto id = it->key().ToStringView().substr(prefix.size() + 8);
      auto d = get_delivery(id);
      if (!d)
        return d.error();
      if (*d && (*d)->state == delivery_state::dead_lettered)
        out.push_back(std::move(**d));
    }
    if (!it->status().ok())
      return store_error(it->status());
    return out;
  }

  result<std::vector<std::pair<std::string, std::string>>>
  list_endpoints() override {
    std::vector<std::pair<std::string, std::string>> out;
    std::unique_ptr<rocksdb::Iterator> it{
        db_->NewIterator(rocksdb::ReadOptions{}, cfs_[cf_endpoints])};
    for (it->SeekToFirst(); it->Valid(); it->Next())
      out.emplace_back(it->key().ToString(), it->value().ToString());
    if (!it->status().ok())
      return store_error(it->status());
    return out;
  }

  result<std::optional<std::string>>
  get_endpoint(std::string_view id) override {
    std::string value;
    auto st = db_->Get(rocksdb::ReadOptions{}, cfs_[cf_endpoints], id, &value);
    if (st.IsNotFound())
      return std::optional<std::string>{};
    if (!st.ok())
      return store_error(st);
    return std::optional<std::string>{std::move(value)};
  }

  result<endpoint_backlog> backlog_of(std::string_view endpoint_id) override {
    std::string prefix{endpoint_id};
    prefix += '\0';
    endpoint_backlog out;
    rocksdb::ReadOptions ro;
    ro.fill_cache = false; // a scan for a count: keep the cache for work
    std::unique_ptr<rocksdb::Iterator> it{db_->NewIterator(ro, cfs_[cf_due])};
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix);
         it->Next()) {
      ++out.pending;
      // Delivery ids are time-ordered: the smallest is the oldest.
      auto id = it->key().ToStringView().substr(
          std::min(prefix.size() + 8, it->key().size()));
      if (auto at = time_of_id(id, "dlv"))
        if (out.oldest_pending == 0 || *at < out.oldest_pending)
          out.oldest_pending = *at;
    }
    if (!it->status().ok())
      return store_error(it->status());
    it.reset(db_->NewIterator(ro, cfs_[cf_dead_by_endpoint]));
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix);
         it->Next())
      ++out.dead_letters;
    if (!it->status().ok())
      return store_error(it->status());
    return out;
  }

  std::uint64_t approximate_bytes() override {
    std::uint64_t total = 0;
    for (auto* cf : cfs_) {
      std::uint64_t v = 0;
      if (db_->GetIntProperty(cf, "rocksdb.live-sst-files-size", &v))
        total += v;
      if (db_->GetIntProperty(cf, "rocksdb.cur-size-all-mem-tables", &v))
        total += v;
    }
    return total;
  }

  result<std::vector<std::string>>
  escalations_of(std::string_view event_id) override {
    std::string prefix{event_id};
    prefix += '\0';
    std::vector<std::string> out;
    std::unique_ptr<rocksdb::Iterator> it{
        db_->NewIterator(rocksdb::ReadOptions{}, cfs_[cf_escalations])};
    std::vector<std::string> groups;
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix);
         it->Next()) {
      auto rest = it->key().ToStringView().substr(prefix.size());
      if (rest.starts_with('#'))
        groups.emplace_back(rest);
      else
        out.emplace_back(rest);
    }
    if (!it->status().ok())
      return store_error(it->status());
    // Counted in a group: the first escalation of the group accepted after
    // the event was (ids are time-ordered) that lists it. Events counted by
    // an escalation are never counted again, and one that lists none of
    // the events after the event's own was raised after the event's
    // episode: no later one holds it either.
    auto since = time_of_id(event_id, "evt").value_or(0);
    for (auto& g : groups) {
      auto from = g + be64(static_cast<std::uint64_t>(since));
      std::string value;
      int looked = 0;
      for (it->Seek(from); it->Valid() && it->key().starts_with(g) &&
                           it->key().size() >= g.size() + 8 && looked < 64;
           it->Next(), ++looked) {
        auto escalation = it->key().ToStringView().substr(g.size() + 8);
        auto got = db_->Get(
            rocksdb::ReadOptions{}, cfs_[cf_escalations],
            rocksdb::Slice{escalation.data(), escalation.size()}, &value);
        if (got.IsNotFound())
          continue;
        if (!got.ok())
          return store_error(got);
        bool listed = false, any = false, all_after = true;
        for_each_member(value, [&](std::string_view id) {
          any = true;
          listed = id == event_id;
          all_after = all_after && id > event_id;
          return !listed;
        });
        all_after = any && all_after;
        if (listed) {
          if (std::find(out.begin(), out.end(), escalation) == out.end())
            out.emplace_back(escalation);
          break;
        }
        if (all_after)
          break;
      }
      if (!it->status().ok())
        return store_error(it->status());
    }
    return out;
  }

  result<std::vector<std::string>>
  members_of(std::string_view escalation_id) override {
    std::string value;
    auto st = db_->Get(
        rocksdb::ReadOptions{}, cfs_[cf_escalations],
        rocksdb::Slice{escalation_id.data(), escalation_id.size()}, &value);
    std::vector<std::string> out;
    if (st.IsNotFound())
      return out;
    if (!st.ok())
      return store_error(st);
    for_each_member(value, [&](std::string_view id) {
      out.emplace_back(id);
      return true;
    });
    return out;
  }

  status for_each_event_since(
      unix_ms since,
      const std::function<bool(const event_record&)>& fn) override {
    std::unique_ptr<rocksdb::Iterator> it{
        db_->NewIterator(rocksdb::ReadOptions{}, cfs_[cf_events])};
    constexpr std::string_view prefix = "evt_";
    for (it->Seek(id_floor("evt", since));
         it->Valid() && it->key().starts_with(prefix); it->Next()) {
      auto e = decode_event(it->value().ToStringView());
      if (!e)
        return error{"store_corrupt",
                     "unreadable event record " + it->key().ToString()};
      if (!fn(*e))
        break;
    }
    if (!it->status().ok())
      return store_error(it->status());
    return {};
  }

  result<event_page> list_events(const event_query& q) override {
    // Event ids are "evt_" + a ULID: bounds made of ids at the range's
    // times leave everything outside it unread (tombstones of expired
    // events included), and stepping back from the upper bound gives the
    // newest first.
    std::string lower = q.since > 0 ? id_floor("evt", q.since) : "evt_";
    std::string upper = q.until ? id_floor("evt", *q.until) : "evt`"; // '_'+1
    if (!q.before.empty() && q.before < upper)
      upper = q.before; // exclusive: the page before ended with it
    event_page page;
    if (upper <= lower || q.limit == 0)
      return page;
    rocksdb::Slice lo{lower}, hi{upper};
    rocksdb::ReadOptions ro;
    ro.iterate_lower_bound = &lo;
    ro.iterate_upper_bound = &hi;
    std::unique_ptr<rocksdb::Iterator> it{
        db_->NewIterator(ro, cfs_[cf_events])};
    std::string last; // the last id read
    for (it->SeekToLast(); it->Valid(); it->Prev()) {
      // Another record in range that this call may not take: the next page
      // starts below the last one read.
      if (page.events.size() >= q.limit || page.examined >= q.max_examined) {
        page.next = std::move(last);
        break;
      }
      ++page.examined;
      last = it->key().ToString();
      auto e = decode_event(it->value().ToStringView());
      if (!e)
        return error{"store_corrupt", "unreadable event record " + last};
      if (q.state && e->state() != *q.state)
        continue;
      if (!q.type.empty() || !q.severity.empty() || !q.agent_id.empty()) {
        auto f = fields_of_event(*e);
        if ((!q.type.empty() && f.type != q.type) ||
            (!q.severity.empty() && f.severity != q.severity) ||
            (!q.agent_id.empty() && f.agent_id != q.agent_id))
          continue;
      }
      page.events.push_back(std::move(*e));
    }
    if (!it->status().ok())
      return store_error(it->status());
    return page;
  }

  status read_log(
      std::uint64_t from,
      const std::function<bool(std::uint64_t, std::string_view)>& fn) override {
    std::unique_ptr<rocksdb::Iterator> it{
        db_->NewIterator(rocksdb::ReadOptions{}, cfs_[cf_log])};
    std::string scratch;
    for (it->Seek(be64(from)); it->Valid(); it->Next()) {
      auto seq = from_be64(it->key());
      auto text = render_log_record(seq, it->value().ToStringView(), scratch);
      if (!text)
        return error{"store_corrupt",
                     "unreadable log record " + std::to_string(seq)};
      if (!fn(seq, *text))
        break;
    }
    if (!it->status().ok())
      return store_error(it->status());
    return {};
  }

  /// Flushes the log's memtable, so that no write-ahead log written before
  /// is replayed into it, and then leaves the marker file that lets the log
  /// take insert hints from the next opening on (see log_hints_marker).
  /// Without it the store works as well, only without those hints.
  void mark_log_hints_safe(const std::filesystem::path& marker) {
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

private:
  /// Runs `fn` while no commit writes: it reads and writes knowing that
  /// nothing changes under it (retention's check-then-delete). Commits queue
  /// behind it as behind any leader.
  void exclusively(const std::function<void()>& fn) {
    writer w{nullptr};
    std::unique_lock lock{mtx_};
    queue_.push_back(&w);
    w.cv.wait(lock, [&] { return queue_.front() == &w; });
    lock.unlock();
    fn();
    lock.lock();
    queue_.pop_front();
    if (!queue_.empty())
      queue_.front()->cv.notify_one();
  }

  /// One chunk of retention (see store::expire); runs exclusively.
  result<expiry> expire_chunk(unix_ms cutoff, unix_ms keys_cutoff,
                              std::size_t limit) {
    expiry out;
    rocksdb::WriteBatch batch;
    std::unordered_set<std::string> removed; // events in this batch
    auto end = time_key(cutoff, {});
    rocksdb::Slice upper{end};
    rocksdb::ReadOptions ro;
    ro.iterate_upper_bound = &upper;
    std::unique_ptr<rocksdb::Iterator> it{
        db_->NewIterator(ro, cfs_[cf_finished])};
    rocksdb::Status st;
    std::size_t examined = 0;
    // From where the last chunk stopped: what lies before is deleted, and
    // seeking from the start would step over every tombstone of it.
    for (it->Seek(finished_from_); st.ok() && it->Valid(); it->Next()) {
      if (examined++ == limit) {
        out.more = true;
        break;
      }
      auto key = it->key();
      finished_from_.assign(key.data(), key.size());
      // This entry goes in any case: the delivery is removed below, or left
      // for a later entry of its event (or of its own, after a replay).
      st = batch.Delete(cfs_[cf_finished], key);
      std::string id{key.data() + 8, key.size() - 8};
      auto d = get_delivery(id);
      if (!d)
        return d.error();
      if (!*d || removed.count((*d)->event_id))
        continue;
      auto e = get_event((*d)->event_id);
      if (!e)
        return e.error();
      std::vector<delivery> all;
      bool finished = true;
      for (auto& did : *e ? (*e)->delivery_ids : std::vector{id}) {
        auto other = get_delivery(did);
        if (!other)
          return other.error();
        if (!*other)
          continue;
        finished = finished && (*other)->state != delivery_state::pending &&
                   (*other)->finished_at < cutoff;
        all.push_back(std::move(**other));
      }
      if (!finished)
        continue; // its last delivery's own entry brings it back
      removed.insert((*d)->event_id);
      ++out.events;
      if (*e)
        st = batch.Delete(cfs_[cf_events], (*d)->event_id);
      if (st.ok()) {
        auto from = (*d)->event_id + '\0', to = (*d)->event_id + '\1';
        st = batch.DeleteRange(cfs_[cf_escalations], from, to);
      }
      if (st.ok())
        st = forget_escalation(batch, (*d)->event_id);
      for (auto& x : all) {
        ++out.deliveries;
        if (st.ok())
          st = batch.Delete(cfs_[cf_deliveries], x.id);
        if (st.ok() && x.id != id)
          st = batch.Delete(cfs_[cf_finished], time_key(x.finished_at, x.id));
        if (st.ok() && x.state == delivery_state::dead_lettered)
          st = forget_dead_letter(batch, x.id);
      }
    }
    if (st.ok())
      st = it->status();
    if (st.ok() && !out.more)
      st = expire_keys(batch, keys_cutoff, limit, out);
    std::optional<key_range> expired_log;
    if (st.ok() && !out.more)
      st = expire_log(batch, cutoff, out, expired_log);
    if (st.ok() && !out.more)
      st = batch.Put(cfs_[cf_default], expired_before_key,
                     be64(static_cast<std::uint64_t>(cutoff)));
    if (!st.ok())
      return store_error(st);
    if (batch.Count() > 0)
      TOCSIN_TRY(write(batch));
    if (expired_log)
      drop_log_tables(*expired_log);
    return out;
  }

  struct key_range {
    std::string from, to; ///< [from, to)
  };

  /// Removes the log's tables that hold only records of `range`, deleted
  /// already: their space comes back now, not when a compaction gets to
  /// them. (Tables of L0 and those being compacted stay.)
  void drop_log_tables(const key_range& range) {
    rocksdb::Slice from{range.from}, to{range.to};
    auto st = rocksdb::DeleteFilesInRange(db_.get(), cfs_[cf_log], &from, &to,
                                          /*include_end=*/false);
    if (!st.ok()) // the deletion holds; compactions reclaim the space
      log::warn("cannot drop tables of expired log records",
                {{"error", st.ToString()}});
  }

  /// Idempotency keys recorded before `cutoff` (up to `limit`).
  rocksdb::Status expire_keys(rocksdb::WriteBatch& batch, unix_ms cutoff,
                              std::size_t limit, expiry& out) {
    auto end = time_key(cutoff, {});
    rocksdb::Slice upper{end};
    rocksdb::ReadOptions ro;
    ro.iterate_upper_bound = &upper;
    std::unique_ptr<rocksdb::Iterator> it{
        db_->NewIterator(ro, cfs_[cf_idempotency_at])};
    rocksdb::Status st;
    for (it->Seek(keys_from_); st.ok() && it->Valid(); it->Next()) {
      if (out.idempotency_keys >= limit) {
        out.more = true;
        break;
      }
      keys_from_.assign(it->key().data(), it->key().size());
      st = batch.Delete(cfs_[cf_idempotency_at], it->key());
      if (st.ok())
        st = batch.Delete(
            cfs_[cf_idempotency],
            rocksdb::Slice{it->key().data() + 8, it->key().size() - 8});
      ++out.idempotency_keys;
    }
    return st.ok() ? it->status() : st;
  }

  /// Log records written before `cutoff` but the newest: one range delete,
  /// its end found by a binary search over sequence numbers (records carry
  /// their time, and time follows sequence).
  rocksdb::Status expire_log(rocksdb::WriteBatch& batch, unix_ms cutoff,
                             expiry& out, std::optional<key_range>& range) {
    std::unique_ptr<rocksdb::Iterator> it{
        db_->NewIterator(rocksdb::ReadOptions{}, cfs_[cf_log])};
    it->SeekToFirst();
    if (!it->Valid())
      return it->status();
    auto first = from_be64(it->key());
    auto at_of = [&](std::uint64_t seq, unix_ms& at) -> rocksdb::Status {
      it->Seek(be64(seq));
      at = std::numeric_limits<unix_ms>::max();
      if (!it->Valid())
        return it->status();
      if (auto t = log_record_at(it->value().ToStringView()))
        at = *t;
      return rocksdb::Status::OK();
    };
    // The first sequence number at or after which records are kept. The
    // newest is always kept: it carries the sequence on across a restart.
    std::uint64_t lo = first, hi = last_sequence();
    while (lo < hi) {
      auto mid = lo + (hi - lo) / 2;
      unix_ms at = 0;
      if (auto st = at_of(mid, at); !st.ok())
        return st;
      if (at < cutoff)
        lo = mid + 1;
      else
        hi = mid;
    }
    if (lo == first)
      return rocksdb::Status::OK();
    out.log_records += lo - first;
    // The range starts just before be64(first), with a key one byte longer
    // than a sequence number's: outside the domain of the log's insert
    // hints, which a range deletion must not take in RocksDB 7.8 (see
    // sequence_keys).
    range = key_range{first == 0 ? std::string{} : be64(first - 1) + '\xff',
                      be64(lo)};
    return batch.DeleteRange(cfs_[cf_log], range->from, range->to);
  }

  struct writer {
    const changes* set; ///< nothing: an exclusive turn (see exclusive)
    status result = {};
    std::uint64_t last = 0; ///< sequence number of its last record
    bool done = false;
    std::condition_variable cv = {};
  };

  /// Writes the changes of `w` to the store (to the operating system, not
  /// synced) in commit order, with those of the writers queued behind it:
  /// the first in the queue writes for all (group commit).
  result<std::uint64_t> write_in_turn(writer& w) {
    std::unique_lock lock{mtx_};
    queue_.push_back(&w);
    w.cv.wait(lock, [&] { return w.done || queue_.front() == &w; });
    if (w.done)
      return w.result ? result<std::uint64_t>{w.last} : w.result.error();
    // Leader: take everyone queued so far, up to an exclusive turn.
    std::vector<writer*> group;
    for (auto* m : queue_) {
      if (!m->set)
        break;
      group.push_back(m);
    }
    auto first_seq = last_seq_ + 1;
    lock.unlock();
    auto seq = first_seq;
    // Sized up front: a batch of a thousand events would otherwise be copied
    // a dozen times over as it grows.
    std::size_t bytes = 0;
    for (auto* member : group)
      for (auto& c : member->set->list())
        bytes += 4 * c.id.size() + c.body.size() + c.log_fields.size() +
                 c.endpoint_id.size() + 96;
    rocksdb::WriteBatch batch{bytes};
    status result;
    for (auto* member : group) {
      if (result.ok())
        if (auto st = add_to_batch(batch, *member->set, seq); !st)
          result = st;
      member->last = seq - 1;
    }
    // Not synced here: a commit that must be synced waits for that after
    // its write (sync_through), so that the writes behind it do not wait
    // for the disk as well.
    if (result.ok())
      result = write(batch);
    lock.lock();
    if (result.ok())
      last_seq_ = seq - 1;
    for (auto* member : group) {
      queue_.pop_front();
      member->result = result;
      member->done = true;
      if (member != &w)
        member->cv.notify_one();
    }
    if (!queue_.empty())
      queue_.front()->cv.notify_one(); // the next leader
    if (!result)
      return result.error();
    return w.last;
  }

  /// Adds the changes to `batch`, their log records numbered from `seq`
  /// (advanced past them).
  status add_to_batch(rocksdb::WriteBatch& batch, const changes& set,
                      std::uint64_t& seq) {
    auto at = now_ms();
    for (auto& c : set.list()) {
      rocksdb::Status st;
      switch (c.what) {
      case change::type::event_accepted:
      case change::type::event_changed:
        st = batch.Put(cfs_[cf_events], c.id, c.body);
        break;
      case change::type::delivery_created:
      case change::type::delivery_changed:
        st = put_delivery(batch, c);
        break;
      case change::type::idempotency_key:
        st = batch.Put(cfs_[cf_idempotency], c.id, c.body);
        if (st.ok())
          st = batch.Put(cfs_[cf_idempotency_at], time_key(c.at, c.id), {});
        break;
      case change::type::endpoint_put:
        st = batch.Put(cfs_[cf_endpoints], c.id, c.body);
        break;
      case change::type::endpoint_deleted:
        st = batch.Delete(cfs_[cf_endpoints], c.id);
        break;
      case change::type::escalation_linked:
        st = batch.Put(cfs_[cf_escalations], link_key(c.id, c.other), {});
        break;
      case change::type::counted_in_group:
        st = batch.Put(cfs_[cf_escalations], counted_key(c.id, c.rule, c.group),
                       {});
        break;
      case change::type::escalation_recorded: {
        auto index_key = group_index_key(c.rule, c.group, c.at, c.id);
        st = batch.Put(cfs_[cf_escalations], c.id,
                       escalation_members_value(index_key, c.body));
        if (st.ok())
          st = batch.Put(cfs_[cf_escalations], index_key, {});
        break;
      }
      case change::type::noted:
        break;
      }
      if (!st.ok())
        return store_error(st);
      if (!c.logged)
        continue;
      st = batch.Put(cfs_[cf_log], be64(seq),
                     stored_log_record(seq, at, c.kind, c.form, c.log_fields));
      ++seq;
      if (!st.ok())
        return store_error(st);
    }
    return {};
  }

  rocksdb::Status put_delivery(rocksdb::WriteBatch& batch, const change& c) {
    auto st = batch.Put(cfs_[cf_deliveries], c.id, c.body);
    if (!st.ok())
      return st;
    // Where it was: given, new, or as the store has it.
    std::optional<standing> was = c.was;
    if (!was && !c.created) {
      std::string value;
      auto got =
          db_->Get(rocksdb::ReadOptions{}, cfs_[cf_deliveries], c.id, &value);
      if (!got.ok() && !got.IsNotFound())
        return got;
      if (got.ok())
        if (auto d = decode_delivery(value))
          was = standing_of(*d);
    }
    auto& now = c.now;
    bool was_pending = was && was->state == delivery_state::pending;
    bool is_pending = now.state == delivery_state::pending;
    // Index entries are written once and deleted once, so that they go with
    // SingleDelete: an entry and its deletion that meet in a memtable (most
    // do: a delivery is seldom pending for long) vanish at the flush instead
    // of leaving a tombstone for flushes, compactions and seeks to carry.
    if (was_pending && (!is_pending || was->place != now.place))
      st = batch.SingleDelete(cfs_[cf_due],
                              due_index_key(c.endpoint_id, was->place, c.id));
    if (st.ok() && is_pending && (!was_pending || was->place != now.place))
      st = batch.Put(cfs_[cf_due],
                     due_index_key(c.endpoint_id, now.place, c.id), {});
    // Finished (delivered or dead) deliveries by when: what retention reads.
    // An entry left behind by a replay is dropped when retention meets it.
    bool was_finished = was && was->state != delivery_state::pending;
    if (st.ok() && !is_pending && !was_finished)
      st = batch.Put(cfs_[cf_finished], time_key(c.at, c.id), {});
    bool was_dead = was && was->state == delivery_state::dead_lettered;
    bool is_dead = now.state == delivery_state::dead_lettered;
    if (st.ok() && was_dead && !is_dead)
      st = forget_dead_letter(batch, c.id);
    if (st.ok() && is_dead && !was_dead) {
      auto key = dead_index_key(c.endpoint_id, c.at, c.id);
      // The dead-letter entry remembers its per-endpoint key, so that a
      // replay can take it out again.
      st = batch.Put(cfs_[cf_dead], c.id, key);
      if (st.ok())
        st = batch.Put(cfs_[cf_dead_by_endpoint], key, {});
    }
    return st;
  }

  /// Removes what escalation_recorded stored of `id`, if it is an escalation:
  /// its members and its place in its group's index.
  rocksdb::Status forget_escalation(rocksdb::WriteBatch& batch,
                                    const std::string& id) {
    std::string value;
    auto st =
        db_->Get(rocksdb::ReadOptions{}, cfs_[cf_escalations], id, &value);
    if (st.IsNotFound())
      return rocksdb::Status::OK();
    if (!st.ok())
      return st;
    st = batch.Delete(cfs_[cf_escalations], id);
    if (auto index_key = index_key_of(value); st.ok() && !index_key.empty())
      st = batch.Delete(cfs_[cf_escalations],
                        rocksdb::Slice{index_key.data(), index_key.size()});
    return st;
  }

  /// Takes a delivery out of both dead-letter indexes (a replay).
  rocksdb::Status forget_dead_letter(rocksdb::WriteBatch& batch,
                                     std::string_view id) {
    std::string key;
    auto st = db_->Get(rocksdb::ReadOptions{}, cfs_[cf_dead], id, &key);
    if (st.IsNotFound())
      return rocksdb::Status::OK();
    if (!st.ok())
      return st;
    st = batch.Delete(cfs_[cf_dead], id);
    if (st.ok() && !key.empty())
      st = batch.Delete(cfs_[cf_dead_by_endpoint], key);
    return st;
  }

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
  std::chrono::steady_clock::time_point next_resume_{};
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

} // namespace

result<std::unique_ptr<store>>
open_rocksdb_store(const store_options& opts) {
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
  std::unique_ptr<rocksdb::Env> env;
  if (opts.fail_log_sync) {
    env = rocksdb::NewCompositeEnv(std::make_shared<failing_sync_fs>(
        rocksdb::FileSystem::Default(), opts.fail_log_sync));
    db_opts.env = env.get();
  }
  // Memory is bounded by configuration, not by the backlog: all column
  // families share one budget for memtables (each would otherwise take up
  // to 2 x 64 MiB).
  db_opts.db_write_buffer_size = 64 << 20;
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
