// Changes written to a batch: the records, their log records, and the
// indexes kept with them (due, finished, dead letters, escalations).
#include "storage/rocksdb/store_impl.hpp"

#include "storage/rocksdb/keys.hpp"

#include "common/time.hpp"

#include <optional>

namespace tocsin::storage::rocksdb_backend {

/// Adds the changes to `batch`, their log records numbered from `seq`
/// (advanced past them).
status rocksdb_store::add_to_batch(rocksdb::WriteBatch& batch,
                                   const changes& set, std::uint64_t& seq) {
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

rocksdb::Status rocksdb_store::put_delivery(rocksdb::WriteBatch& batch,
                                            const change& c) {
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
    st = batch.Put(cfs_[cf_due], due_index_key(c.endpoint_id, now.place, c.id),
                   {});
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
rocksdb::Status rocksdb_store::forget_escalation(rocksdb::WriteBatch& batch,
                                                 const std::string& id) {
  std::string value;
  auto st = db_->Get(rocksdb::ReadOptions{}, cfs_[cf_escalations], id, &value);
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
rocksdb::Status rocksdb_store::forget_dead_letter(rocksdb::WriteBatch& batch,
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

} // namespace tocsin::storage::rocksdb_backend
