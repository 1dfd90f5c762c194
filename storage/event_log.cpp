#include "storage/event_log.hpp"

#include "common/json_parse.hpp"

#include <algorithm>
#include <atomic>

#include <nlohmann/json.hpp>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

namespace tocsin::storage {

// -- write_set ----------------------------------------------------------------

void write_set::add_event(const event_record& e) {
  json_writer fields;
  fields.begin_object().field("event_id", e.id).key("deliveries").begin_array();
  for (auto& id : e.delivery_ids)
    fields.value(id);
  fields.end_array().end_object();
  ops_.push_back(op{op::type::event, "event.accepted", e.id, encode(e),
                    delivery_state::pending, fields.take()});
}

void write_set::add_delivery(const delivery& d) {
  put_delivery(d, "delivery.created");
  ops_.back().index_update = op::indexes::created;
}

void write_set::put_delivery(const delivery& d, std::string_view kind,
                             std::optional<delivery_state> was) {
  json_writer fields;
  fields.begin_object()
      .field("delivery_id", d.id)
      .field("event_id", d.event_id)
      .field("endpoint_id", d.endpoint_id)
      .field("state", to_string(d.state));
  if (kind.rfind("attempt.", 0) == 0 && !d.attempts.empty())
    write_json(fields.key("attempt"), d.attempts.back());
  if (d.state == delivery_state::pending)
    fields.field("next_attempt_at", d.next_attempt_at);
  if (!d.reason.empty())
    fields.field("reason", d.reason);
  fields.end_object();
  ops_.push_back(op{op::type::delivery, std::string{kind}, d.id, encode(d),
                    d.state, fields.take(),
                    was == d.state ? op::indexes::none : op::indexes::all});
}

void write_set::put_idempotency_key(std::string_view key,
                                    const idempotency_record& rec) {
  auto write = [&](json_writer& w) {
    w.field("at", rec.at).field("digest", rec.digest).key("ids").begin_array();
    for (auto& id : rec.ids)
      w.value(id);
    w.end_array().end_object();
  };
  json_writer value, fields;
  value.begin_object();
  write(value);
  fields.begin_object().field("idempotency_key", key);
  write(fields);
  ops_.push_back(op{op::type::idempotency, "idempotency.recorded",
                    std::string{key}, value.take(), delivery_state::pending,
                    fields.take()});
}

void write_set::put_endpoint(std::string_view id, std::string definition,
                             std::string_view kind) {
  auto fields = json_writer{}
                    .begin_object()
                    .field("endpoint_id", id)
                    .key("endpoint")
                    .raw(definition) // already JSON
                    .end_object()
                    .take();
  ops_.push_back(op{op::type::endpoint_put, std::string{kind}, std::string{id},
                    std::move(definition), delivery_state::pending,
                    std::move(fields)});
}

void write_set::delete_endpoint(std::string_view id) {
  ops_.push_back(op{op::type::endpoint_delete,
                    "endpoint.deleted",
                    std::string{id},
                    {},
                    delivery_state::pending,
                    json_writer{}
                        .begin_object()
                        .field("endpoint_id", id)
                        .end_object()
                        .take()});
}

void write_set::add_record(std::string_view kind, std::string json_fields) {
  ops_.push_back(op{op::type::record,
                    std::string{kind},
                    {},
                    {},
                    delivery_state::pending,
                    std::move(json_fields)});
}

void write_set::append(write_set&& other) {
  if (ops_.empty()) {
    ops_ = std::move(other.ops_);
  } else {
    ops_.reserve(ops_.size() + other.ops_.size());
    std::move(other.ops_.begin(), other.ops_.end(), std::back_inserter(ops_));
  }
  other.ops_.clear();
}

// -- RocksDB implementation ---------------------------------------------------

namespace {

// Column families, in the order they are opened.
enum cf : std::size_t {
  cf_default,
  cf_log,
  cf_events,
  cf_deliveries,
  cf_pending,
  cf_dead,
  cf_idempotency,
  cf_endpoints,
  cf_count
};
const char* const cf_names[cf_count] = {
    "default", "log",          "events",      "deliveries",
    "pending", "dead_letters", "idempotency", "endpoints"};

std::string seq_key(std::uint64_t seq) {
  std::string k(8, '\0');
  for (int i = 7; i >= 0; --i) {
    k[static_cast<std::size_t>(i)] = static_cast<char>(seq & 0xff);
    seq >>= 8;
  }
  return k;
}

std::uint64_t seq_from_key(const rocksdb::Slice& k) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < k.size() && i < 8; ++i)
    v = (v << 8) | static_cast<unsigned char>(k[i]);
  return v;
}

error store_error(const rocksdb::Status& st) {
  return error{"store_error", st.ToString()};
}

class rocksdb_event_log final : public event_log {
public:
  rocksdb_event_log(std::unique_ptr<rocksdb::DB> db,
                    std::vector<rocksdb::ColumnFamilyHandle*> handles)
      : db_(std::move(db)), cfs_(std::move(handles)) {
    std::unique_ptr<rocksdb::Iterator> it{
        db_->NewIterator(rocksdb::ReadOptions{}, cfs_[cf_log])};
    it->SeekToLast();
    next_seq_ = it->Valid() ? seq_from_key(it->key()) + 1 : 1;
  }

  ~rocksdb_event_log() override {
    for (auto* h : cfs_) {
      // Closing: nothing useful to do with an error here.
      [[maybe_unused]] auto st = db_->DestroyColumnFamilyHandle(h);
    }
    [[maybe_unused]] auto st = db_->Close();
  }

  status commit(const write_set& changes, durability d) override {
    if (changes.empty())
      return {};
    rocksdb::WriteBatch batch;
    auto seq = next_seq_.fetch_add(changes.size());
    auto at = now_ms();
    for (auto& op : changes.ops()) {
      rocksdb::Status st;
      switch (op.what) {
      case write_set::op::type::event:
        st = batch.Put(cfs_[cf_events], op.key, op.value);
        break;
      case write_set::op::type::delivery:
        st = put_delivery(batch, op);
        break;
      case write_set::op::type::idempotency:
        st = batch.Put(cfs_[cf_idempotency], op.key, op.value);
        break;
      case write_set::op::type::endpoint_put:
        st = batch.Put(cfs_[cf_endpoints], op.key, op.value);
        break;
      case write_set::op::type::endpoint_delete:
        st = batch.Delete(cfs_[cf_endpoints], op.key);
        break;
      case write_set::op::type::record:
        break;
      }
      if (!st.ok())
        return store_error(st);
      st = batch.Put(cfs_[cf_log], seq_key(seq), log_record(seq, at, op));
      ++seq;
      if (!st.ok())
        return store_error(st);
    }
    rocksdb::WriteOptions wo;
    wo.sync = d == durability::synced;
    auto st = db_->Write(wo, &batch);
    if (!st.ok())
      return store_error(st);
    return {};
  }

  result<std::optional<event_record>> get_event(std::string_view id) override {
    std::string value;
    auto st = db_->Get(rocksdb::ReadOptions{}, cfs_[cf_events], id, &value);
    if (st.IsNotFound())
      return std::optional<event_record>{};
    if (!st.ok())
      return store_error(st);
    auto e = event_from_json(value);
    if (!e)
      return error{"store_corrupt",
                   "unreadable event record " + std::string{id}};
    return e;
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
    nlohmann::json j;
    idempotency_record rec;
    if (!parse_json(value, j, nullptr, stored_json_limits) || !j.is_object())
      return error{"store_corrupt", "unreadable idempotency record"};
    try {
      rec.ids = j.at("ids").get<std::vector<std::string>>();
      rec.at = j.at("at").get<unix_ms>();
      rec.digest = j.value("digest", "");
    } catch (const nlohmann::json::exception&) {
      return error{"store_corrupt", "unreadable idempotency record"};
    }
    return std::optional<idempotency_record>{std::move(rec)};
  }

  result<std::optional<delivery>> get_delivery(std::string_view id) override {
    std::string value;
    auto st = db_->Get(rocksdb::ReadOptions{}, cfs_[cf_deliveries], id, &value);
    if (st.IsNotFound())
      return std::optional<delivery>{};
    if (!st.ok())
      return store_error(st);
    auto d = delivery_from_json(value);
    if (!d)
      return error{"store_corrupt",
                   "unreadable delivery record " + std::string{id}};
    return d;
  }

  status for_each_pending(const std::function<void(delivery&&)>& fn) override {
    std::unique_ptr<rocksdb::Iterator> it{
        db_->NewIterator(rocksdb::ReadOptions{}, cfs_[cf_pending])};
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      auto d = get_delivery(it->key().ToStringView());
      if (!d)
        return d.error();
      if (*d)
        fn(std::move(**d));
    }
    if (!it->status().ok())
      return store_error(it->status());
    return {};
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

  status for_each_record(
      std::uint64_t from,
      const std::function<bool(std::uint64_t, std::string_view)>& fn) override {
    std::unique_ptr<rocksdb::Iterator> it{
        db_->NewIterator(rocksdb::ReadOptions{}, cfs_[cf_log])};
    for (it->Seek(seq_key(from)); it->Valid(); it->Next())
      if (!fn(seq_from_key(it->key()), it->value().ToStringView()))
        break;
    if (!it->status().ok())
      return store_error(it->status());
    return {};
  }

private:
  rocksdb::Status put_delivery(rocksdb::WriteBatch& batch,
                               const write_set::op& op) {
    auto st = batch.Put(cfs_[cf_deliveries], op.key, op.value);
    if (!st.ok() || op.index_update == write_set::op::indexes::none)
      return st;
    if (op.index_update == write_set::op::indexes::created)
      return batch.Put(cfs_[cf_pending], op.key, {});
    switch (op.state) {
    case delivery_state::pending:
      st = batch.Put(cfs_[cf_pending], op.key, {});
      if (st.ok())
        st = batch.Delete(cfs_[cf_dead], op.key);
      return st;
    case delivery_state::delivered:
      return batch.Delete(cfs_[cf_pending], op.key);
    case delivery_state::dead_lettered:
      st = batch.Delete(cfs_[cf_pending], op.key);
      if (st.ok())
        st = batch.Put(cfs_[cf_dead], op.key, {});
      return st;
    }
    return st;
  }

  static std::string log_record(std::uint64_t seq, unix_ms at,
                                const write_set::op& op) {
    // {"seq":..,"at":..,"kind":..., <fields>}: built as text so that the
    // fields, already JSON, are not parsed again.
    std::string r = "{\"seq\":" + std::to_string(seq) +
                    ",\"at\":" + std::to_string(at) + ",\"kind\":\"" + op.kind +
                    "\"";
    if (op.log_fields.size() > 2) {
      r += ',';
      r.append(op.log_fields, 1, std::string::npos);
    } else {
      r += '}';
    }
    return r;
  }

  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> cfs_;
  std::atomic<std::uint64_t> next_seq_{1};
};

} // namespace

result<std::unique_ptr<event_log>>
open_event_log(const event_log_options& opts) {
  rocksdb::DBOptions db_opts;
  db_opts.create_if_missing = opts.create_if_missing;
  db_opts.create_missing_column_families = true;
  // Many small writers (endpoint actors) and one syncing group committer.
  db_opts.enable_pipelined_write = true;
  db_opts.max_background_jobs = 2;
  rocksdb::ColumnFamilyOptions cf_opts;
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (auto* name : cf_names)
    descriptors.emplace_back(name, cf_opts);
  // Column families this version does not know (a newer tocsin wrote them)
  // must still be listed to open the database.
  std::vector<std::string> existing;
  if (rocksdb::DB::ListColumnFamilies(db_opts, opts.dir, &existing).ok())
    for (auto& name : existing)
      if (std::find(std::begin(cf_names), std::end(cf_names), name) ==
          std::end(cf_names))
        descriptors.emplace_back(name, cf_opts);
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
  return std::unique_ptr<event_log>{
      std::make_unique<rocksdb_event_log>(std::move(db), std::move(handles))};
}

} // namespace tocsin::storage
