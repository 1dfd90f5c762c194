#include "api/event_validation.hpp"

#include "delivery/event_content.hpp"

#include "common/encoding.hpp"
#include "common/event_types.hpp"
#include "common/ids.hpp"
#include "common/json_parse.hpp"
#include "common/json_writer.hpp"
#include "common/url.hpp"

#include <algorithm>
#include <functional>
#include <optional>

#include <nlohmann/json.hpp>

namespace tocsin::api {

namespace {

using json = nlohmann::json;

error invalid(std::string field, std::string message,
              std::string code = "invalid_field") {
  return error{std::move(code), std::move(message), std::move(field)};
}

/// Whether `s` holds 1 to `max_len` characters (code points).
bool length_within(std::string_view s, std::size_t max_len) {
  std::size_t n = 0;
  for (unsigned char c : s)
    n += (c & 0xC0) != 0x80;
  return n >= 1 && n <= max_len;
}

status check_string(const json& ev, const char* key, const std::string& field,
                    bool required, std::size_t max_len) {
  auto it = ev.find(key);
  if (it == ev.end() || it->is_null()) {
    if (required)
      return invalid(field, std::string{key} + " is required", "missing_field");
    return {};
  }
  if (!it->is_string())
    return invalid(field, std::string{key} + " must be a string");
  if (!length_within(it->get_ref<const std::string&>(), max_len))
    return invalid(field, std::string{key} + " must be 1 to " +
                              std::to_string(max_len) + " characters");
  return {};
}

/// Refuses a string that holds a control character (line feed and tab
/// allowed where `allow_lf_tab`) or a bidirectional override: what a
/// receiver shows must read as it was sent.
status check_plain_text(std::string_view s, const std::string& field,
                        bool allow_lf_tab) {
  if (auto why = deceptive_text(s, allow_lf_tab))
    return invalid(field, field + " must not contain a " + *why +
                              (allow_lf_tab ? " (only line feeds and tabs)"
                                            : " (no control characters)"));
  return {};
}

/// The same for every string in details, its keys included (no control
/// characters at all there); `field` names the value ("details.a.b",
/// "details.list[2]").
status check_details_text(const json& v, const std::string& field) {
  if (v.is_string())
    return check_plain_text(v.get_ref<const std::string&>(), field, true);
  if (v.is_array()) {
    for (std::size_t i = 0; i < v.size(); ++i)
      TOCSIN_TRY(
          check_details_text(v[i], field + "[" + std::to_string(i) + "]"));
  } else if (v.is_object()) {
    for (auto& [k, x] : v.items()) {
      auto name = field + "." + k;
      TOCSIN_TRY(check_plain_text(k, name, false));
      TOCSIN_TRY(check_details_text(x, name));
    }
  }
  return {};
}

/// What both readers make of an event they found valid: a new id, the
/// fields, the normalized body. `covered` gives the text an idempotency key
/// covers (the event as sent, keys sorted), asked for only when there is a
/// key; `details_json` is the details object as a document writes it.
struct valid_event {
  std::string_view type;
  std::string_view severity;
  std::optional<std::string_view> agent_id;
  std::string_view summary;
  unix_ms timestamp = 0;
  std::string audit_url;
  std::optional<std::string_view> idempotency_key;
};

delivery::new_event new_event_of(const valid_event& v,
                                 const std::function<std::string()>& covered,
                                 std::string_view details_json,
                                 const validation_options& opts) {
  delivery::new_event out;
  out.id = new_id("evt");
  out.type = v.type;
  out.severity = *severity_rank(v.severity);
  if (v.agent_id)
    out.agent_id = *v.agent_id;
  if (v.idempotency_key) {
    out.idempotency_key = *v.idempotency_key;
    out.idempotency_digest = hex_encode(sha256(covered()));
  }
  out.severity_name = v.severity;
  out.summary = v.summary;
  out.timestamp = format_rfc3339(v.timestamp);
  out.audit_url = v.audit_url;
  // Written straight out (no second document).
  delivery::write_body(out, details_json, opts.max_payload_bytes);
  return out;
}

result<delivery::new_event> validate_one(const json& ev,
                                         const std::string& where,
                                         const validation_options& opts) {
  auto field = [&](std::string_view name) {
    return where.empty() ? std::string{name} : where + "." + std::string{name};
  };
  if (!ev.is_object())
    return invalid(where.empty() ? "" : where,
                   "an event must be a JSON object");
  static constexpr std::string_view known[] = {
      "type",      "agent_id", "summary", "severity",
      "timestamp", "details",  "links",   "idempotency_key"};
  for (auto& [k, v] : ev.items())
    if (std::find(std::begin(known), std::end(known), k) == std::end(known))
      return invalid(field(k), "unknown field '" + k + "'", "unknown_field");

  TOCSIN_TRY(check_string(ev, "type", field("type"), true, 64));
  auto type = ev["type"].get<std::string>();
  TOCSIN_TRY(check_plain_text(type, field("type"), false));
  if (!is_event_type(type))
    return invalid(field("type"), "unknown event type '" + type + "'");
  bool agent_required = type != "system.health";
  TOCSIN_TRY(
      check_string(ev, "agent_id", field("agent_id"), agent_required, 256));
  TOCSIN_TRY(check_string(ev, "summary", field("summary"), true, 1024));
  TOCSIN_TRY(check_string(ev, "severity", field("severity"), false, 16));
  TOCSIN_TRY(check_string(ev, "timestamp", field("timestamp"), false, 64));
  // Only the summary may have lines and tabs (as details' values may).
  for (const char* k : {"agent_id", "summary", "severity", "timestamp"})
    if (auto it = ev.find(k); it != ev.end() && it->is_string())
      TOCSIN_TRY(check_plain_text(it->get_ref<const std::string&>(), field(k),
                                  std::string_view{k} == "summary"));
  if (auto it = ev.find("idempotency_key"); it != ev.end() && !it->is_null())
    if (!it->is_string() ||
        !is_valid_idempotency_key(it->get_ref<const std::string&>()))
      return invalid(field("idempotency_key"),
                     "idempotency_key must be 1 to 256 printable ASCII "
                     "characters without spaces");

  std::string severity{default_severity(type)};
  if (auto it = ev.find("severity"); it != ev.end() && !it->is_null()) {
    severity = it->get<std::string>();
    if (!severity_rank(severity))
      return invalid(
          field("severity"),
          "severity must be one of critical, high, medium, low, info");
  }
  unix_ms timestamp = opts.now;
  if (auto it = ev.find("timestamp"); it != ev.end() && !it->is_null()) {
    auto t = parse_rfc3339(it->get_ref<const std::string&>());
    if (!t)
      return invalid(field("timestamp"), "timestamp must be RFC 3339");
    timestamp = *t;
  }
  const json* details = nullptr;
  if (auto it = ev.find("details"); it != ev.end() && !it->is_null()) {
    if (!it->is_object())
      return invalid(field("details"), "details must be an object");
    details = &*it;
    // tocsin's own escalations carry it; a producer's would pass for one
    // (and suppress the rule it names).
    if (details->contains("escalation"))
      return invalid(field("details.escalation"),
                     "details.escalation is reserved for the events tocsin "
                     "derives from escalation rules",
                     "reserved_field");
    // tocsin's own system.health events say origin "tocsin".
    if (auto o = details->find("origin");
        o != details->end() && o->is_string() && *o == "tocsin")
      return invalid(field("details.origin"),
                     "details.origin \"tocsin\" is reserved for the events "
                     "tocsin raises itself",
                     "reserved_field");
    for (const char* k : {"action", "rule", "receipt_id"})
      if (auto d = details->find(k); d != details->end() && !d->is_string())
        return invalid(field("details." + std::string{k}),
                       std::string{k} + " must be a string");
    TOCSIN_TRY(check_details_text(*details, field("details")));
  }
  std::string audit;
  if (auto it = ev.find("links"); it != ev.end() && !it->is_null()) {
    if (!it->is_object())
      return invalid(field("links"), "links must be an object");
    for (auto& [k, v] : it->items()) {
      if (k != "audit")
        return invalid(field("links." + k), "unknown field 'links." + k + "'",
                       "unknown_field");
      if (!v.is_string())
        return invalid(field("links.audit"), "links.audit must be a string");
      if (!opts.allow_producer_links)
        return invalid(field("links.audit"),
                       "links.audit cannot be set by a producer here: the "
                       "audit link is made from server.audit_url_template and "
                       "details.receipt_id (server.allow_producer_links = "
                       "true allows it)",
                       "forbidden_field");
      auto u = parse_url(v.get_ref<const std::string&>());
      if (!u || v.get_ref<const std::string&>().size() > 1024)
        return invalid(field("links.audit"),
                       "links.audit must be an absolute http(s) URL of at most "
                       "1024 characters");
      TOCSIN_TRY(check_plain_text(v.get_ref<const std::string&>(),
                                  field("links.audit"), false));
      audit = v.get<std::string>();
    }
  }
  if (audit.empty() && !opts.audit_url_template.empty() && details)
    if (auto r = details->find("receipt_id"); r != details->end())
      audit = fill_audit_template(opts.audit_url_template,
                                  r->get_ref<const std::string&>());

  auto text = [&ev](const char* key) -> std::optional<std::string_view> {
    auto it = ev.find(key);
    if (it == ev.end() || !it->is_string())
      return std::nullopt;
    return it->get_ref<const std::string&>();
  };
  // `details` as parsed, its keys sorted at every level; the event as sent
  // for its idempotency key (json is a map: keys sorted).
  return new_event_of(
      {type, severity, text("agent_id"), *text("summary"), timestamp, audit,
       text("idempotency_key")},
      [&ev] { return ev.dump(); },
      details ? details->dump() : std::string{"{}"}, opts);
}

} // namespace

std::string fill_audit_template(std::string_view tmpl,
                                std::string_view receipt_id) {
  constexpr std::string_view placeholder = "{receipt_id}";
  auto value = percent_encode(receipt_id);
  std::string out;
  out.reserve(tmpl.size() + value.size());
  for (;;) {
    auto pos = tmpl.find(placeholder);
    out.append(tmpl.substr(0, pos));
    if (pos == std::string_view::npos)
      return out;
    out += value;
    tmpl.remove_prefix(pos + placeholder.size());
  }
}

bool is_valid_idempotency_key(std::string_view key) {
  return !key.empty() && key.size() <= 256 &&
         std::all_of(key.begin(), key.end(),
                     [](unsigned char c) { return c > 0x20 && c < 0x7f; });
}

namespace {

// -- The plain shape, read without a document ---------------------------------
//
// Nearly every body a producer sends is an event (or a batch of them) whose
// fields are strings without escapes and whose details are a flat object of
// such strings, integers, booleans and nulls. Such a body is read here in
// one pass, without building a JSON document (parsing into one and taking it
// apart again was a third of the ingest path's CPU); the result is the one the
// document would give, byte for byte (the api fuzzer holds the two to that).
// Anything else -- escapes, nesting, other numbers, a null, a duplicate key,
// any invalid value -- makes it give up, and the document path reads the body
// (and explains what is wrong with it).
namespace plain {

/// A member of a flat object: its key and its value as written (a string
/// with its quotes), which is how a document writes it back.
struct member {
  std::string_view key;
  std::string_view value;
};

struct event_fields {
  std::optional<std::string_view> type, agent_id, summary, severity, timestamp,
      idempotency_key, audit;
  bool has_details = false;
  bool has_links = false;
  std::vector<member> details; ///< sorted by key
};

class reader {
public:
  explicit reader(std::string_view text) : s_(text) {}

  bool at_end() {
    skip_ws();
    return i_ == s_.size();
  }

  /// The next non-space character is `c`; consumes it.
  bool consume(char c) {
    skip_ws();
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }

  /// A string without escapes or control characters; its content.
  std::optional<std::string_view> string() {
    if (!consume('"'))
      return std::nullopt;
    auto start = i_;
    for (; i_ < s_.size(); ++i_) {
      auto c = static_cast<unsigned char>(s_[i_]);
      if (c == '"') {
        auto text = s_.substr(start, i_ - start);
        ++i_;
        return text;
      }
      if (c == '\\' || c < 0x20)
        return std::nullopt;
    }
    return std::nullopt;
  }

  /// A value a document writes back exactly as it is written: a plain
  /// string (with its quotes), an integer of at most 18 digits (no "-0"),
  /// true, false or null.
  std::optional<std::string_view> scalar() {
    skip_ws();
    auto start = i_;
    if (i_ >= s_.size())
      return std::nullopt;
    char c = s_[i_];
    if (c == '"') {
      if (!string())
        return std::nullopt;
      return s_.substr(start, i_ - start);
    }
    for (std::string_view word : {"true", "false", "null"})
      if (s_.substr(i_, word.size()) == word) {
        i_ += word.size();
        return word;
      }
    if (c == '-')
      ++i_;
    auto digits = i_;
    while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9')
      ++i_;
    auto n = i_ - digits;
    if (n == 0 || n > 18 || (s_[digits] == '0' && (n > 1 || c == '-')))
      return std::nullopt;
    if (i_ < s_.size() && (s_[i_] == '.' || s_[i_] == 'e' || s_[i_] == 'E'))
      return std::nullopt;
    return s_.substr(start, i_ - start);
  }

private:
  void skip_ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' ||
                              s_[i_] == '\r' || s_[i_] == '\t'))
      ++i_;
  }

  std::string_view s_;
  std::size_t i_ = 0;
};

/// A flat object's members, sorted by key (as a document keeps them); false
/// for anything else, a duplicate key or more members than a document takes.
bool flat_object(reader& r, std::vector<member>& out) {
  out.clear();
  if (!r.consume('{'))
    return false;
  if (!r.consume('}')) {
    do {
      auto key = r.string();
      if (!key || !r.consume(':'))
        return false;
      auto value = r.scalar();
      if (!value)
        return false;
      out.push_back({*key, *value});
    } while (r.consume(','));
    if (!r.consume('}'))
      return false;
  }
  if (out.size() > input_json_limits.max_object_members)
    return false;
  std::sort(out.begin(), out.end(),
            [](const member& a, const member& b) { return a.key < b.key; });
  for (std::size_t i = 1; i < out.size(); ++i)
    if (out[i - 1].key == out[i].key)
      return false;
  return true;
}

/// An event object; the opening brace and, when `first_key` is given, its
/// first key and colon were read already.
bool event_object(reader& r, std::optional<std::string_view> first_key,
                  event_fields& ev) {
  auto details = std::move(ev.details); // its capacity, for the next event
  details.clear();
  ev = {};
  ev.details = std::move(details);
  std::vector<member> links;
  if (!first_key && r.consume('}'))
    return true;
  for (bool first = true;; first = false) {
    std::optional<std::string_view> key;
    if (first && first_key) {
      key = first_key;
    } else {
      key = r.string();
      if (!key || !r.consume(':'))
        return false;
    }
    std::optional<std::string_view>* text = nullptr;
    if (*key == "type")
      text = &ev.type;
    else if (*key == "agent_id")
      text = &ev.agent_id;
    else if (*key == "summary")
      text = &ev.summary;
    else if (*key == "severity")
      text = &ev.severity;
    else if (*key == "timestamp")
      text = &ev.timestamp;
    else if (*key == "idempotency_key")
      text = &ev.idempotency_key;
    if (text) {
      if (*text)
        return false;
      *text = r.string();
      if (!*text)
        return false;
    } else if (*key == "details") {
      if (ev.has_details || !flat_object(r, ev.details))
        return false;
      ev.has_details = true;
    } else if (*key == "links") {
      if (ev.has_links || !flat_object(r, links) || links.size() != 1 ||
          links[0].key != "audit" || links[0].value.front() != '"')
        return false;
      ev.has_links = true;
      ev.audit = links[0].value.substr(1, links[0].value.size() - 2);
    } else {
      return false;
    }
    if (!r.consume(','))
      return r.consume('}');
  }
}

const member* find(const std::vector<member>& members, std::string_view key) {
  for (auto& m : members)
    if (m.key == key)
      return &m;
  return nullptr;
}

bool string_of_length(const std::optional<std::string_view>& s,
                      std::size_t max_len) {
  return !s || length_within(*s, max_len);
}

/// Writes a flat object as a document would: keys sorted (they are), values
/// as written.
void write_object(json_writer& w, const std::vector<member>& members) {
  w.begin_object();
  for (auto& m : members)
    w.key(m.key).raw(m.value);
  w.end_object();
}

/// The event as a document writes it (keys sorted at every level): what its
/// idempotency key covers.
std::string canonical(const event_fields& ev) {
  json_writer w;
  w.begin_object();
  auto text = [&w](std::string_view key,
                   const std::optional<std::string_view>& v) {
    if (v)
      w.field(key, *v);
  };
  // In key order: agent_id, details, idempotency_key, links, severity,
  // summary, timestamp, type.
  text("agent_id", ev.agent_id);
  if (ev.has_details)
    write_object(w.key("details"), ev.details);
  text("idempotency_key", ev.idempotency_key);
  if (ev.has_links)
    w.key("links").begin_object().field("audit", *ev.audit).end_object();
  text("severity", ev.severity);
  text("summary", ev.summary);
  text("timestamp", ev.timestamp);
  text("type", ev.type);
  return w.end_object().take();
}

/// validate_one's checks and result for an event of the plain shape; nothing
/// where validate_one would refuse it.
std::optional<delivery::new_event> validate(const event_fields& ev,
                                            const validation_options& opts) {
  if (!ev.type || !string_of_length(ev.type, 64) || !is_event_type(*ev.type))
    return std::nullopt;
  bool agent_required = *ev.type != "system.health";
  if ((agent_required && !ev.agent_id) || !string_of_length(ev.agent_id, 256))
    return std::nullopt;
  if (!ev.summary || !string_of_length(ev.summary, 1024))
    return std::nullopt;
  if (!string_of_length(ev.severity, 16) || !string_of_length(ev.timestamp, 64))
    return std::nullopt;
  // The reader took no control character; a bidirectional override is
  // left to the document path to explain.
  for (auto* s : {&ev.type, &ev.agent_id, &ev.summary, &ev.severity,
                  &ev.timestamp, &ev.audit})
    if (*s && deceptive_text(**s, true))
      return std::nullopt;
  if (ev.idempotency_key && !is_valid_idempotency_key(*ev.idempotency_key))
    return std::nullopt;
  std::string_view severity =
      ev.severity ? *ev.severity : default_severity(*ev.type);
  auto rank = severity_rank(severity);
  if (!rank)
    return std::nullopt;
  unix_ms timestamp = opts.now;
  if (ev.timestamp) {
    auto t = parse_rfc3339(*ev.timestamp);
    if (!t)
      return std::nullopt;
    timestamp = *t;
  }
  const member* receipt = nullptr;
  if (ev.has_details) {
    if (find(ev.details, "escalation"))
      return std::nullopt;
    if (auto o = find(ev.details, "origin"); o && o->value == "\"tocsin\"")
      return std::nullopt;
    for (auto& m : ev.details)
      if (deceptive_text(m.key, true) || deceptive_text(m.value, true))
        return std::nullopt;
    for (const char* k : {"action", "rule", "receipt_id"})
      if (auto m = find(ev.details, k); m && m->value.front() != '"')
        return std::nullopt;
    receipt = find(ev.details, "receipt_id");
  }
  std::string audit;
  if (ev.audit) {
    if (!opts.allow_producer_links || ev.audit->size() > 1024 ||
        !parse_url(*ev.audit))
      return std::nullopt;
    audit = *ev.audit;
  }
  if (audit.empty() && !opts.audit_url_template.empty() && receipt)
    audit = fill_audit_template(
        opts.audit_url_template,
        receipt->value.substr(1, receipt->value.size() - 2));

  json_writer details;
  if (ev.has_details)
    write_object(details, ev.details);
  else
    details.begin_object().end_object();
  return new_event_of(
      {*ev.type, severity, ev.agent_id, *ev.summary, timestamp,
       std::move(audit), ev.idempotency_key},
      [&ev] { return canonical(ev); }, details.take(), opts);
}

} // namespace plain

} // namespace

namespace detail {

std::optional<delivery::ingest_batch>
read_plain_events(std::string_view body, const validation_options& opts) {
  if (opts.digest_request)
    return std::nullopt; // the whole request's digest needs the document
  plain::reader r{body};
  plain::event_fields ev;
  delivery::ingest_batch out;
  if (!r.consume('{'))
    return std::nullopt;
  auto first_key = r.string();
  if (!first_key || !r.consume(':'))
    return std::nullopt;
  if (*first_key != "events") {
    if (!plain::event_object(r, first_key, ev) || !r.at_end())
      return std::nullopt;
    auto one = plain::validate(ev, opts);
    if (!one)
      return std::nullopt;
    out.events.push_back(std::move(*one));
    return out;
  }
  out.is_batch = true;
  if (!r.consume('['))
    return std::nullopt;
  do {
    if (out.events.size() == max_batch_events || !r.consume('{') ||
        !plain::event_object(r, std::nullopt, ev))
      return std::nullopt;
    auto one = plain::validate(ev, opts);
    if (!one)
      return std::nullopt;
    out.events.push_back(std::move(*one));
  } while (r.consume(','));
  if (!r.consume(']') || !r.consume('}') || !r.at_end())
    return std::nullopt;
  return out;
}

result<delivery::ingest_batch>
validate_events_with_document(std::string_view body,
                              const validation_options& opts) {
  json doc;
  std::string why;
  if (!parse_json(body, doc, &why))
    return error{"invalid_json", "the request body is not valid JSON: " + why,
                 ""};
  if (!doc.is_object())
    return error{"invalid_json",
                 "the body must be an event object or {\"events\": [...]}", ""};
  delivery::ingest_batch out;
  if (opts.digest_request)
    out.idempotency_digest = hex_encode(sha256(doc.dump()));
  if (auto it = doc.find("events"); it != doc.end()) {
    if (doc.size() != 1)
      for (auto& [k, v] : doc.items())
        if (k != "events")
          return invalid(k, "unknown field '" + k + "' next to events",
                         "unknown_field");
    if (!it->is_array())
      return invalid("events", "events must be an array");
    if (it->empty())
      return invalid("events", "events must hold at least one event");
    if (it->size() > max_batch_events)
      return invalid("events",
                     "a batch holds at most " +
                         std::to_string(max_batch_events) + " events",
                     "batch_too_large");
    out.is_batch = true;
    out.events.reserve(it->size());
    for (std::size_t i = 0; i < it->size(); ++i) {
      auto ev =
          validate_one((*it)[i], "events[" + std::to_string(i) + "]", opts);
      if (!ev)
        return ev.error();
      out.events.push_back(std::move(*ev));
    }
    return out;
  }
  auto ev = validate_one(doc, "", opts);
  if (!ev)
    return ev.error();
  out.events.push_back(std::move(*ev));
  return out;
}

} // namespace detail

result<delivery::ingest_batch> validate_events(std::string_view body,
                                               const validation_options& opts) {
  if (!is_valid_utf8(body))
    return error{"invalid_utf8", "the request body is not valid UTF-8", ""};
  if (auto plain = detail::read_plain_events(body, opts))
    return std::move(*plain);
  return detail::validate_events_with_document(body, opts);
}

} // namespace tocsin::api
