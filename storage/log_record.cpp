#include "storage/log_record.hpp"

#include "common/encoding.hpp"
#include "common/json_writer.hpp"

namespace tocsin::storage {

// A binary record: a NUL byte (a JSON record starts with '{'), the form, when
// it was written (8 bytes, big-endian: retention reads it without decoding
// the rest), the kind's name and the fields, strings as a varint length and
// their bytes. The sequence number is the record's key.

namespace {

constexpr char binary_mark = '\0';
constexpr std::size_t at_offset = 2, header_size = 10;

void put_string(std::string& out, std::string_view s) {
  append_varint(out, s.size());
  out += s;
}

/// Reads what append_varint and put_string wrote; every read fails once one
/// did.
class reader {
public:
  explicit reader(std::string_view in) : in_(in) {}

  std::uint64_t varint() {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (in_.empty())
        break;
      auto byte = static_cast<unsigned char>(in_.front());
      in_.remove_prefix(1);
      v |= static_cast<std::uint64_t>(byte & 0x7f) << shift;
      if (byte < 0x80)
        return v;
    }
    ok_ = false;
    return 0;
  }

  std::string_view string() {
    auto n = varint();
    if (!ok_ || n > in_.size()) {
      ok_ = false;
      return {};
    }
    auto s = in_.substr(0, n);
    in_.remove_prefix(n);
    return s;
  }

  std::string_view rest() const { return in_; }
  bool ok() const { return ok_; }

private:
  std::string_view in_;
  bool ok_ = true;
};

/// The fields of a delivery's state change, as the log has always shown
/// them.
void write_delivery_fields(json_writer& w, const delivery& d) {
  w.begin_object()
      .field("delivery_id", d.id)
      .field("event_id", d.event_id)
      .field("endpoint_id", d.endpoint_id)
      .field("state", to_string(d.state));
  if (d.news.state != event_state::open)
    w.field("notice", to_string(d.news.state));
  if (!d.attempts.empty()) // only when the kind carries one (compacted so)
    write_json(w.key("attempt"), d.attempts.back());
  if (d.state == delivery_state::pending)
    w.field("next_attempt_at", d.next_attempt_at);
  if (!d.reason.empty())
    w.field("reason", d.reason);
  w.end_object();
}

/// Renders the fields of a binary record into `w` (an object); false when
/// they cannot be read.
bool write_fields(json_writer& w, log_form form, std::string_view fields) {
  switch (form) {
  case log_form::delivery_change: {
    auto d = decode_delivery(fields);
    if (!d)
      return false;
    write_delivery_fields(w, *d);
    return true;
  }
  case log_form::delivery_outcome: {
    reader r{fields};
    auto id = r.string(), event_id = r.string(), endpoint_id = r.string(),
         reason = r.string();
    if (!r.ok())
      return false;
    w.begin_object()
        .field("delivery_id", id)
        .field("event_id", event_id)
        .field("endpoint_id", endpoint_id);
    if (!reason.empty())
      w.field("reason", reason);
    w.end_object();
    return true;
  }
  case log_form::event_accepted: {
    reader r{fields};
    auto event_id = r.string();
    auto n = r.varint();
    if (!r.ok() || n > fields.size())
      return false;
    w.begin_object()
        .field("event_id", event_id)
        .key("deliveries")
        .begin_array();
    for (std::uint64_t i = 0; i < n; ++i) {
      auto id = r.string();
      if (!r.ok())
        return false;
      w.value(id);
    }
    w.end_array().end_object();
    return true;
  }
  case log_form::json:
    break;
  }
  return false;
}

/// {"seq":..,"at":..,"kind":..., <fields>} into `out`: built as text so that
/// the fields, already a JSON object, are not parsed again.
void write_json_record(std::string& out, std::uint64_t seq, unix_ms at,
                       std::string_view kind, std::string_view fields) {
  out.clear();
  out.reserve(fields.size() + kind.size() + 48);
  out += "{\"seq\":";
  out += std::to_string(seq);
  out += ",\"at\":";
  out += std::to_string(at);
  out += ",\"kind\":\"";
  out += kind;
  out += '"';
  if (fields.size() > 2) {
    out += ',';
    out += fields.substr(1);
  } else {
    out += '}';
  }
}

} // namespace

std::string compact_delivery_change(const delivery& d, record_kind kind) {
  delivery shown;
  shown.id = d.id;
  shown.event_id = d.event_id;
  shown.endpoint_id = d.endpoint_id;
  shown.state = d.state;
  shown.next_attempt_at = d.next_attempt_at;
  shown.reason = d.reason;
  shown.news.state = d.news.state;
  if (carries_attempt(kind) && !d.attempts.empty())
    shown.attempts.push_back(d.attempts.back());
  return encode(shown);
}

std::string compact_delivery_outcome(const delivery& d) {
  std::string out;
  out.reserve(d.id.size() + d.event_id.size() + d.endpoint_id.size() +
              d.reason.size() + 4);
  put_string(out, d.id);
  put_string(out, d.event_id);
  put_string(out, d.endpoint_id);
  put_string(out, d.reason);
  return out;
}

std::string compact_event_accepted(const event_record& e) {
  std::string out;
  out.reserve(e.id.size() + 2 + e.delivery_ids.size() * 32);
  put_string(out, e.id);
  append_varint(out, e.delivery_ids.size());
  for (auto& id : e.delivery_ids)
    put_string(out, id);
  return out;
}

std::string stored_log_record(std::uint64_t seq, unix_ms at, record_kind kind,
                              log_form form, std::string_view fields) {
  auto name = to_string(kind);
  std::string r;
  if (form == log_form::json) {
    write_json_record(r, seq, at, name, fields);
    return r;
  }
  r.reserve(header_size + 1 + name.size() + fields.size());
  r += binary_mark;
  r += static_cast<char>(form);
  auto t = static_cast<std::uint64_t>(at);
  for (int shift = 56; shift >= 0; shift -= 8)
    r += static_cast<char>((t >> shift) & 0xff);
  put_string(r, name);
  r += fields;
  return r;
}

std::optional<unix_ms> log_record_at(std::string_view stored) {
  if (stored.size() >= header_size && stored[0] == binary_mark) {
    std::uint64_t t = 0;
    for (std::size_t i = at_offset; i < header_size; ++i)
      t = (t << 8) | static_cast<unsigned char>(stored[i]);
    return static_cast<unix_ms>(t);
  }
  auto p = stored.find("\"at\":");
  if (p == std::string_view::npos)
    return std::nullopt;
  unix_ms at = 0;
  for (auto i = p + 5;
       i < stored.size() && stored[i] >= '0' && stored[i] <= '9'; ++i)
    at = at * 10 + (stored[i] - '0');
  return at;
}

std::optional<std::string_view> render_log_record(std::uint64_t seq,
                                                  std::string_view stored,
                                                  std::string& scratch) {
  if (stored.empty() || stored[0] != binary_mark)
    return stored; // JSON as written
  if (stored.size() < header_size)
    return std::nullopt;
  auto form = static_cast<log_form>(stored[1]);
  auto at = *log_record_at(stored);
  reader r{stored.substr(header_size)};
  auto name = r.string();
  if (!r.ok())
    return std::nullopt;
  json_writer fields;
  if (!write_fields(fields, form, r.rest()))
    return std::nullopt;
  write_json_record(scratch, seq, at, name, fields.take());
  return std::string_view{scratch};
}

} // namespace tocsin::storage
