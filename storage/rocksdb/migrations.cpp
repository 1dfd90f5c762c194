// Migrations run at open: indexes that a store of an older version lacks
// are built, and the pending index is brought to this version's layout.
#include "storage/rocksdb/store_impl.hpp"

#include "storage/rocksdb/keys.hpp"

#include "common/log.hpp"

#include <optional>
#include <string>
#include <utility>

#include <rocksdb/convenience.h>

namespace tocsin::storage::rocksdb_backend {

/// Builds the per-endpoint dead-letter index for a store written before it
/// existed (once, at open).
status rocksdb_store::backfill_dead_index() {
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
status rocksdb_store::migrate_pending_index() {
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
        if (auto st = batch.Put(cfs_[cf_due],
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
status rocksdb_store::backfill_time_indexes() {
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
  TOCSIN_TRY(build(cf_idempotency, cf_idempotency_at,
                   [this](rocksdb::Iterator* it) -> std::optional<std::string> {
                     auto key = it->key().ToStringView();
                     auto rec = get_idempotency_key(key);
                     if (!rec || !*rec)
                       return std::nullopt;
                     return time_key((*rec)->at, key);
                   }));
  return flush();
}

} // namespace tocsin::storage::rocksdb_backend
