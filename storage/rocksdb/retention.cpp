// Retention: what finished before a cutoff goes, a chunk at a time while no
// commit writes, and the log's tables of expired records are dropped.
#include "storage/rocksdb/store_impl.hpp"

#include "storage/rocksdb/keys.hpp"

#include "common/log.hpp"

#include <limits>
#include <unordered_set>

#include <rocksdb/convenience.h>

namespace tocsin::storage::rocksdb_backend {

result<expiry> rocksdb_store::expire(unix_ms cutoff, unix_ms keys_cutoff,
                                     std::size_t limit) {
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

unix_ms rocksdb_store::expired_before() {
  std::string v;
  auto st = db_->Get(rocksdb::ReadOptions{}, cfs_[cf_default],
                     expired_before_key, &v);
  return st.ok() ? static_cast<unix_ms>(from_be64(v)) : 0;
}

/// One chunk of retention (see store::expire); runs exclusively.
result<expiry> rocksdb_store::expire_chunk(unix_ms cutoff, unix_ms keys_cutoff,
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

/// Removes the log's tables that hold only records of `range`, deleted
/// already: their space comes back now, not when a compaction gets to
/// them. (Tables of L0 and those being compacted stay.)
void rocksdb_store::drop_log_tables(const key_range& range) {
  rocksdb::Slice from{range.from}, to{range.to};
  auto st = rocksdb::DeleteFilesInRange(db_.get(), cfs_[cf_log], &from, &to,
                                        /*include_end=*/false);
  if (!st.ok()) // the deletion holds; compactions reclaim the space
    log::warn("cannot drop tables of expired log records",
              {{"error", st.ToString()}});
}

/// Idempotency keys recorded before `cutoff` (up to `limit`).
rocksdb::Status rocksdb_store::expire_keys(rocksdb::WriteBatch& batch,
                                           unix_ms cutoff, std::size_t limit,
                                           expiry& out) {
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
rocksdb::Status rocksdb_store::expire_log(rocksdb::WriteBatch& batch,
                                          unix_ms cutoff, expiry& out,
                                          std::optional<key_range>& range) {
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

} // namespace tocsin::storage::rocksdb_backend
