// Reads: records by id, each endpoint's line of pending deliveries and its
// dead letters, escalations, events by time, and the log.
#include "storage/rocksdb/store_impl.hpp"

#include "storage/rocksdb/keys.hpp"

#include "common/ids.hpp"

#include <algorithm>
#include <numeric>

namespace tocsin::storage::rocksdb_backend {

result<std::optional<event_record>>
rocksdb_store::get_event(std::string_view id) {
  std::string value;
  auto st = db_->Get(rocksdb::ReadOptions{}, cfs_[cf_events], id, &value);
  if (st.IsNotFound())
    return std::optional<event_record>{};
  if (!st.ok())
    return store_error(st);
  auto e = decode_event(value);
  if (!e)
    return error{"store_corrupt", "unreadable event record " + std::string{id}};
  return e;
}

result<std::vector<std::optional<event_record>>>
rocksdb_store::get_events(const std::vector<std::string>& ids) {
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
rocksdb_store::read_in_key_order(cf c, const rocksdb::ReadOptions& ro,
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
rocksdb_store::get_idempotency_key(std::string_view key) {
  std::string value;
  auto st = db_->Get(rocksdb::ReadOptions{}, cfs_[cf_idempotency], key, &value);
  if (st.IsNotFound())
    return std::optional<idempotency_record>{};
  if (!st.ok())
    return store_error(st);
  auto rec = decode_idempotency(value);
  if (!rec)
    return error{"store_corrupt", "unreadable idempotency record"};
  return rec;
}

result<std::optional<delivery>>
rocksdb_store::get_delivery(std::string_view id) {
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
rocksdb_store::line_of(std::string_view endpoint_id, const line_position& from,
                       std::size_t limit,
                       const std::function<bool(std::string_view id)>& held) {
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
      return error{"store_corrupt", "unreadable delivery record " + keys[i].id};
    // Only entries of pending deliveries count (a stale one is left
    // behind by nothing this code writes, but reading is the safe side).
    if (d->state != delivery_state::pending)
      continue;
    page.deliveries.push_back(std::move(*d));
    page.places.push_back(keys[i].place);
  }
  return page;
}

result<std::vector<std::string>> rocksdb_store::endpoints_with_pending() {
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

result<std::vector<delivery>>
rocksdb_store::list_dead_letters(std::string_view after, std::size_t limit) {
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
rocksdb_store::list_dead_letters_of(std::string_view endpoint_id, unix_ms since,
                                    std::size_t limit) {
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
rocksdb_store::list_endpoints() {
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
rocksdb_store::get_endpoint(std::string_view id) {
  std::string value;
  auto st = db_->Get(rocksdb::ReadOptions{}, cfs_[cf_endpoints], id, &value);
  if (st.IsNotFound())
    return std::optional<std::string>{};
  if (!st.ok())
    return store_error(st);
  return std::optional<std::string>{std::move(value)};
}

result<endpoint_backlog>
rocksdb_store::backlog_of(std::string_view endpoint_id) {
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

std::uint64_t rocksdb_store::approximate_bytes() {
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
rocksdb_store::escalations_of(std::string_view event_id) {
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
      auto got = db_->Get(rocksdb::ReadOptions{}, cfs_[cf_escalations],
                          rocksdb::Slice{escalation.data(), escalation.size()},
                          &value);
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
rocksdb_store::members_of(std::string_view escalation_id) {
  std::string value;
  auto st = db_->Get(rocksdb::ReadOptions{}, cfs_[cf_escalations],
                     rocksdb::Slice{escalation_id.data(), escalation_id.size()},
                     &value);
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

status rocksdb_store::for_each_event_since(
    unix_ms since, const std::function<bool(const event_record&)>& fn) {
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

result<event_page> rocksdb_store::list_events(const event_query& q) {
  // Bounds of ids leave everything outside the range unread (tombstones of
  // expired events included); stepping back from the upper one gives the
  // newest first.
  auto range = id_range_of(q);
  const auto& lower = range.lower;
  const auto& upper = range.upper;
  event_page page;
  if (range.empty())
    return page;
  rocksdb::Slice lo{lower}, hi{upper};
  rocksdb::ReadOptions ro;
  ro.iterate_lower_bound = &lo;
  ro.iterate_upper_bound = &hi;
  std::unique_ptr<rocksdb::Iterator> it{db_->NewIterator(ro, cfs_[cf_events])};
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
    if (!matches(q, *e))
      continue;
    page.events.push_back(std::move(*e));
  }
  if (!it->status().ok())
    return store_error(it->status());
  return page;
}

status rocksdb_store::read_log(
    std::uint64_t from,
    const std::function<bool(std::uint64_t, std::string_view)>& fn) {
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

} // namespace tocsin::storage::rocksdb_backend
