#include "storage/records.hpp"

#include "common/encoding.hpp"
#include "common/event_types.hpp"
#include "common/json_parse.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>

namespace tocsin::storage {

using nlohmann::json;

std::string_view to_string(delivery_state s) {
  switch (s) {
  case delivery_state::pending:
    return "pending";
  case delivery_state::delivered:
    return "delivered";
  case delivery_state::dead_lettered:
    return "dead_lettered";
  }
  return "pending";
}

std::optional<delivery_state> delivery_state_from(std::string_view s) {
  for (auto st : {delivery_state::pending, delivery_state::delivered,
                  delivery_state::dead_lettered})
    if (to_string(st) == s)
      return st;
  return std::nullopt;
}

std::string_view to_string(event_state s) {
  switch (s) {
  case event_state::open:
    return "open";
  case event_state::acknowledged:
    return "acknowledged";
  case event_state::resolved:
    return "resolved";
  }
  return "open";
}

std::optional<event_state> event_state_from(std::string_view s) {
  for (auto st :
       {event_state::open, event_state::acknowledged, event_state::resolved})
    if (to_string(st) == s)
      return st;
  return std::nullopt;
}

event_fields fields_of_event(const event_record& e) {
  if (e.fields)
    return *e.fields;
  event_fields f;
  json body;
  if (!parse_json(e.body, body, nullptr, stored_json_limits) ||
      !body.is_object())
    return f;
  auto text = [&](const char* key) {
    auto it = body.find(key);
    return it != body.end() && it->is_string() ? it->get<std::string>()
                                               : std::string{};
  };
  f.type = text("type");
  f.severity = text("severity");
  if (f.severity.empty())
    f.severity = default_severity(f.type);
  f.agent_id = text("agent_id");
  f.summary = text("summary");
  f.timestamp = text("timestamp");
  return f;
}

void write_json(json_writer& w, const attempt& a) {
  w.begin_object()
      .field("number", a.number)
      .field("started_at", a.started_at)
      .field("finished_at", a.finished_at)
      .field("status", a.status)
      .field("latency_ms", a.latency_ms);
  if (!a.response.empty())
    w.field("response", a.response);
  if (!a.error.empty())
    w.field("error", a.error);
  if (!a.node.empty())
    w.field("node", a.node);
  w.end_object();
}

namespace {

// -- JSON: the stored form of versions before 0.10 (read, never written) ----

std::optional<delivery> delivery_from_json(std::string_view text) {
  json j;
  if (!parse_json(text, j, nullptr, stored_json_limits) || !j.is_object())
    return std::nullopt;
  try {
    delivery d;
    d.id = j.at("id").get<std::string>();
    d.event_id = j.at("event_id").get<std::string>();
    d.endpoint_id = j.at("endpoint_id").get<std::string>();
    auto st = delivery_state_from(j.at("state").get<std::string>());
    if (!st)
      return std::nullopt;
    d.state = *st;
    d.created_at = j.at("created_at").get<unix_ms>();
    d.window_start = j.at("window_start").get<unix_ms>();
    d.attempt_base = j.value("attempt_base", 0);
    d.next_attempt_at = j.at("next_attempt_at").get<unix_ms>();
    d.finished_at = j.at("finished_at").get<unix_ms>();
    d.reason = j.at("reason").get<std::string>();
    for (auto& ja : j.at("attempts")) {
      attempt a;
      a.number = ja.at("number").get<int>();
      a.started_at = ja.at("started_at").get<unix_ms>();
      a.finished_at = ja.at("finished_at").get<unix_ms>();
      a.status = ja.at("status").get<int>();
      a.latency_ms = ja.at("latency_ms").get<double>();
      a.response = ja.value("response", "");
      a.error = ja.value("error", "");
      d.attempts.push_back(std::move(a));
    }
    return d;
  } catch (const json::exception&) {
    return std::nullopt;
  }
}

std::optional<event_record> event_from_json(std::string_view text) {
  // Ordered, so that the body dumps back exactly as it was written.
  nlohmann::ordered_json j;
  if (!parse_json(text, j, nullptr, stored_json_limits) || !j.is_object())
    return std::nullopt;
  try {
    event_record e;
    e.id = j.at("id").get<std::string>();
    e.body = j.at("body").dump();
    e.accepted_at = j.at("accepted_at").get<unix_ms>();
    e.delivery_ids = j.at("delivery_ids").get<std::vector<std::string>>();
    return e;
  } catch (const json::exception&) {
    return std::nullopt;
  }
}

// -- The binary form ----------------------------------------------------------
//
// A format byte, then the fields in a fixed order: integers as LEB128
// varints (signed ones zigzagged), strings as a varint length and the bytes,
// doubles as their 8 bytes (little-endian). No field names, no escaping, no
// number formatting: a delivery's step costs a few hundred bytes of copying.
// JSON records start with '{', so the two forms never meet.

constexpr char format_v1 = '\x01';

class record_writer {
public:
  explicit record_writer(std::size_t reserve) {
    out_.reserve(reserve);
    out_ += format_v1;
  }
  record_writer& u64(std::uint64_t v) {
    append_varint(out_, v);
    return *this;
  }
  record_writer& i64(std::int64_t v) {
    return u64((static_cast<std::uint64_t>(v) << 1) ^
               static_cast<std::uint64_t>(v >> 63));
  }
  record_writer& str(std::string_view s) {
    u64(s.size());
    out_ += s;
    return *this;
  }
  record_writer& f64(double v) {
    std::uint64_t bits;
    std::memcpy(&bits, &v, sizeof bits);
    for (int i = 0; i < 8; ++i)
      out_ += static_cast<char>((bits >> (8 * i)) & 0xff);
    return *this;
  }
  std::string take() { return std::move(out_); }

private:
  std::string out_;
};

/// Reads what record_writer wrote. Any read past the end, or an overlong
/// varint, makes it fail (ok() false) and every later read return zero.
class record_reader {
public:
  explicit record_reader(std::string_view in) : in_(in) {
    ok_ = !in_.empty() && in_.front() == format_v1;
    if (ok_)
      in_.remove_prefix(1);
  }
  bool ok() const { return ok_; }
  /// Read without failing and nothing left over.
  bool finished() const { return ok_ && in_.empty(); }
  std::size_t left() const { return in_.size(); }

  std::uint64_t u64() {
    std::uint64_t v = 0;
    for (int shift = 0; ok_ && shift < 64; shift += 7) {
      if (in_.empty())
        break;
      auto byte = static_cast<unsigned char>(in_.front());
      in_.remove_prefix(1);
      v |= static_cast<std::uint64_t>(byte & 0x7f) << shift;
      if (!(byte & 0x80))
        return v;
    }
    ok_ = false;
    return 0;
  }
  std::int64_t i64() {
    auto z = u64();
    return static_cast<std::int64_t>((z >> 1) ^ (~(z & 1) + 1));
  }
  int i32() {
    auto v = i64();
    if (v < std::numeric_limits<int>::min() ||
        v > std::numeric_limits<int>::max())
      ok_ = false;
    return ok_ ? static_cast<int>(v) : 0;
  }
  std::string str() {
    auto n = u64();
    if (!ok_ || n > in_.size()) {
      ok_ = false;
      return {};
    }
    std::string s{in_.substr(0, n)};
    in_.remove_prefix(n);
    return s;
  }
  double f64() {
    if (!ok_ || in_.size() < 8) {
      ok_ = false;
      return 0;
    }
    std::uint64_t bits = 0;
    for (int i = 0; i < 8; ++i)
      bits |= static_cast<std::uint64_t>(static_cast<unsigned char>(in_[i]))
              << (8 * i);
    in_.remove_prefix(8);
    double v;
    std::memcpy(&v, &bits, sizeof v);
    return v;
  }

private:
  std::string_view in_;
  bool ok_ = true;
};

// Tags of the fields added after the first binary form (above the notice's
// states, 1 and 2, which share their place).
constexpr std::uint64_t tag_receipt = 16;
constexpr std::uint64_t tag_notice_receipt = 17;
constexpr std::uint64_t tag_notice_along = 18;
constexpr std::uint64_t tag_attempt_nodes = 19;
constexpr std::uint64_t tag_answers_via = 16;

bool is_json(std::string_view stored) {
  return !stored.empty() && stored.front() == '{';
}

} // namespace

std::string encode(const delivery& d) {
  std::size_t size = 64 + d.id.size() + d.event_id.size() +
                     d.endpoint_id.size() + d.reason.size();
  bool nodes = false;
  for (auto& a : d.attempts) {
    size += 48 + a.response.size() + a.error.size() + a.node.size();
    nodes = nodes || !a.node.empty();
  }
  record_writer w{size};
  w.str(d.id)
      .str(d.event_id)
      .str(d.endpoint_id)
      .u64(static_cast<std::uint64_t>(d.state))
      .i64(d.created_at)
      .i64(d.window_start)
      .i64(d.attempt_base)
      .i64(d.next_attempt_at)
      .i64(d.finished_at)
      .str(d.reason)
      .u64(d.attempts.size());
  for (auto& a : d.attempts)
    w.i64(a.number)
        .i64(a.started_at)
        .i64(a.finished_at)
        .i64(a.status)
        .f64(a.latency_ms)
        .str(a.response)
        .str(a.error);
  // A notice (acknowledged, resolved) follows the attempts; records without
  // one end there, as those of earlier versions do.
  if (auto& n = d.news; n.state != event_state::open)
    w.u64(static_cast<std::uint64_t>(n.state))
        .str(n.by)
        .i64(n.at)
        .str(n.reply_url);
  // Later fields are tagged, each written only when it is set, so that a
  // record without them is the record earlier versions wrote.
  if (!d.receipt.empty())
    w.u64(tag_receipt).str(d.receipt);
  if (!d.news.receipt.empty())
    w.u64(tag_notice_receipt).str(d.news.receipt);
  if (d.news.along != 0)
    w.u64(tag_notice_along).u64(d.news.along);
  // The node of each attempt, in the attempts' order (made in a cluster).
  if (nodes) {
    w.u64(tag_attempt_nodes).u64(d.attempts.size());
    for (auto& a : d.attempts)
      w.str(a.node);
  }
  return w.take();
}

std::optional<delivery> decode_delivery(std::string_view stored) {
  if (is_json(stored))
    return delivery_from_json(stored);
  record_reader r{stored};
  delivery d;
  d.id = r.str();
  d.event_id = r.str();
  d.endpoint_id = r.str();
  auto state = r.u64();
  if (state > static_cast<std::uint64_t>(delivery_state::dead_lettered))
    return std::nullopt;
  d.state = static_cast<delivery_state>(state);
  d.created_at = r.i64();
  d.window_start = r.i64();
  d.attempt_base = r.i32();
  d.next_attempt_at = r.i64();
  d.finished_at = r.i64();
  d.reason = r.str();
  auto n = r.u64();
  if (n > r.left()) // each attempt takes more than a byte
    return std::nullopt;
  d.attempts.reserve(n);
  for (std::uint64_t i = 0; i < n && r.ok(); ++i) {
    attempt a;
    a.number = r.i32();
    a.started_at = r.i64();
    a.finished_at = r.i64();
    a.status = r.i32();
    a.latency_ms = r.f64();
    a.response = r.str();
    a.error = r.str();
    d.attempts.push_back(std::move(a));
  }
  // A notice (its state: 1 or 2), then tagged fields, in the order written.
  std::uint64_t last = 0;
  while (r.ok() && r.left() > 0) {
    auto tag = r.u64();
    if (tag <= last) // out of order, or a notice after a tag
      return std::nullopt;
    last = tag;
    if (tag == 1 || tag == 2) {
      d.news.state = static_cast<event_state>(tag);
      d.news.by = r.str();
      d.news.at = r.i64();
      d.news.reply_url = r.str();
      last = 2;
    } else if (tag == tag_receipt) {
      d.receipt = r.str();
    } else if (tag == tag_notice_receipt) {
      d.news.receipt = r.str();
    } else if (tag == tag_notice_along) {
      auto along = r.u64();
      if (along > std::numeric_limits<std::uint32_t>::max())
        return std::nullopt;
      d.news.along = static_cast<std::uint32_t>(along);
    } else if (tag == tag_attempt_nodes) {
      if (r.u64() != d.attempts.size())
        return std::nullopt;
      for (auto& a : d.attempts)
        a.node = r.str();
    } else {
      return std::nullopt;
    }
  }
  if (!r.finished())
    return std::nullopt;
  return d;
}

std::string encode(const event_record& e) {
  std::size_t size = 64 + e.id.size() + e.body.size();
  for (auto& id : e.delivery_ids)
    size += 2 + id.size();
  if (e.fields)
    size += e.fields->type.size() + e.fields->severity.size() +
            e.fields->agent_id.size() + e.fields->summary.size() +
            e.fields->timestamp.size() + e.fields->audit_url.size();
  record_writer w{size};
  w.str(e.id).i64(e.accepted_at).u64(e.delivery_ids.size());
  for (auto& id : e.delivery_ids)
    w.str(id);
  w.u64(e.fields ? 1 : 0);
  if (auto& f = e.fields)
    w.str(f->type)
        .str(f->severity)
        .str(f->agent_id)
        .str(f->summary)
        .str(f->timestamp)
        .str(f->audit_url);
  w.str(e.body);
  // Operators' answers follow the body; records without any end there.
  if (!e.answers.empty()) {
    w.u64(e.answers.size());
    for (auto& a : e.answers)
      w.u64(static_cast<std::uint64_t>(a.state))
          .str(a.by)
          .str(a.source)
          .str(a.note)
          .i64(a.at);
    // Which event each answer came through, when any came through another.
    if (std::any_of(e.answers.begin(), e.answers.end(),
                    [](const event_answer& a) { return !a.via.empty(); })) {
      w.u64(tag_answers_via);
      for (auto& a : e.answers)
        w.str(a.via);
    }
  }
  return w.take();
}

std::optional<event_record> decode_event(std::string_view stored) {
  if (is_json(stored))
    return event_from_json(stored);
  record_reader r{stored};
  event_record e;
  e.id = r.str();
  e.accepted_at = r.i64();
  auto n = r.u64();
  if (n > r.left())
    return std::nullopt;
  e.delivery_ids.reserve(n);
  for (std::uint64_t i = 0; i < n && r.ok(); ++i)
    e.delivery_ids.push_back(r.str());
  auto has_fields = r.u64();
  if (has_fields > 1)
    return std::nullopt;
  if (has_fields) {
    event_fields f;
    f.type = r.str();
    f.severity = r.str();
    f.agent_id = r.str();
    f.summary = r.str();
    f.timestamp = r.str();
    f.audit_url = r.str();
    e.fields = std::move(f);
  }
  e.body = r.str();
  if (r.ok() && r.left() > 0) {
    auto answers = r.u64();
    if (answers == 0 || answers > r.left())
      return std::nullopt;
    for (std::uint64_t i = 0; i < answers && r.ok(); ++i) {
      event_answer a;
      auto state = r.u64();
      if (state == 0 ||
          state > static_cast<std::uint64_t>(event_state::resolved))
        return std::nullopt;
      a.state = static_cast<event_state>(state);
      a.by = r.str();
      a.source = r.str();
      a.note = r.str();
      a.at = r.i64();
      e.answers.push_back(std::move(a));
    }
    if (r.ok() && r.left() > 0) {
      if (r.u64() != tag_answers_via)
        return std::nullopt;
      for (auto& a : e.answers)
        a.via = r.str();
    }
  }
  if (!r.finished())
    return std::nullopt;
  return e;
}

} // namespace tocsin::storage
