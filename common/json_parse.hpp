// Strict, bounded JSON reading for everything tocsin parses: API bodies,
// stored records, plugin options, receivers' answers. nlohmann's own parse
// accepts what tocsin must refuse (duplicate keys, a NUL ending the input)
// and builds documents so deep that copying or dumping them overflows the
// stack; this reader refuses all three while it parses (SAX, no recursion).
// Header-only and free of other tocsin headers, so that the shipped transport
// plugins use the same rules.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

namespace tocsin {

struct json_limits {
  /// Objects and arrays nested in one another, the outermost counting as 1.
  std::size_t max_depth = 32;
  /// Members of one object (arrays are bounded only by the input's size).
  std::size_t max_object_members = 1000;
};

/// What API bodies and plugin options are held to (documented in the README).
inline constexpr json_limits input_json_limits{};
/// For what tocsin wrote itself from validated input: a stored event embeds
/// its body one level down, so stored records get some room above the input
/// limit.
inline constexpr json_limits stored_json_limits{64, 100000};

namespace detail {

/// Builds the document like nlohmann's DOM parser, but refuses duplicate keys
/// and anything over the limits. Any false return ends the parse.
template <class Json>
class bounded_json_builder {
public:
  using number_integer_t = typename Json::number_integer_t;
  using number_unsigned_t = typename Json::number_unsigned_t;
  using number_float_t = typename Json::number_float_t;
  using string_t = typename Json::string_t;
  using binary_t = typename Json::binary_t;

  bounded_json_builder(Json& root, const json_limits& limits)
      : root_(root), limits_(limits) {}

  bool null() { return put(Json(nullptr)) != nullptr; }
  bool boolean(bool v) { return put(Json(v)) != nullptr; }
  bool number_integer(number_integer_t v) { return put(Json(v)) != nullptr; }
  bool number_unsigned(number_unsigned_t v) { return put(Json(v)) != nullptr; }
  bool number_float(number_float_t v, const string_t&) {
    return put(Json(v)) != nullptr;
  }
  bool string(string_t& v) { return put(Json(std::move(v))) != nullptr; }
  bool binary(binary_t&) { return fail("binary values are not JSON"); }

  bool start_object(std::size_t) { return open(Json::object()); }
  bool end_object() { return close(); }
  bool start_array(std::size_t) { return open(Json::array()); }
  bool end_array() { return close(); }

  bool key(string_t& k) {
    auto& level = stack_.back();
    auto& obj = *level.value;
    if (obj.size() >= limits_.max_object_members)
      return fail("an object has more than " +
                  std::to_string(limits_.max_object_members) + " members");
    // Small objects are searched directly; larger ones keep a set so that
    // checking stays linear in the object's size.
    constexpr std::size_t direct = 16;
    bool duplicate = false;
    if (obj.size() < direct) {
      duplicate = obj.contains(k);
    } else {
      auto& seen = seen_[stack_.size() - 1];
      if (seen.empty())
        for (auto it = obj.begin(); it != obj.end(); ++it)
          seen.insert(it.key());
      duplicate = !seen.insert(k).second;
    }
    if (duplicate)
      return fail("duplicate key \"" + printable(k) + "\"");
    level.member = &obj[k];
    return true;
  }

  bool parse_error(std::size_t, const std::string&,
                   const typename Json::exception& e) {
    if (why_.empty())
      why_ = e.what();
    return false;
  }

  const std::string& why() const { return why_; }

private:
  struct level {
    Json* value;
    Json* member = nullptr; ///< objects: where the next value goes
  };

  Json* put(Json&& v) {
    if (stack_.empty()) {
      root_ = std::move(v);
      return &root_;
    }
    auto& top = stack_.back();
    if (top.value->is_array()) {
      top.value->push_back(std::move(v));
      return &top.value->back();
    }
    *top.member = std::move(v);
    return top.member;
  }

  bool open(Json&& container) {
    if (stack_.size() >= limits_.max_depth)
      return fail("nested deeper than " + std::to_string(limits_.max_depth) +
                  " levels");
    auto* v = put(std::move(container));
    stack_.push_back(level{v});
    if (seen_.size() < stack_.size())
      seen_.resize(stack_.size());
    // Only a level that held a large object has anything to drop (and
    // clear() costs the bucket count, so small objects must not pay it).
    if (auto& seen = seen_[stack_.size() - 1]; !seen.empty())
      seen = {};
    return true;
  }

  bool close() {
    stack_.pop_back();
    return true;
  }

  bool fail(std::string why) {
    why_ = std::move(why);
    return false;
  }

  static std::string printable(std::string_view s) {
    std::string out;
    for (char c : s.substr(0, 64))
      out += static_cast<unsigned char>(c) < 0x20 || c == '"' ? '?' : c;
    return out;
  }

  Json& root_;
  const json_limits& limits_;
  std::vector<level> stack_;
  std::vector<std::unordered_set<string_t>> seen_;
  std::string why_;
};

} // namespace detail

/// Parses `text` as one JSON value into `out`: strict RFC 8259 (no comments,
/// nothing after the value, no NUL byte anywhere), no duplicate keys, within
/// `limits`. On failure returns false, leaves `out` unspecified and, if
/// `why` is given, says what is wrong in one line.
template <class Json>
bool parse_json(std::string_view text, Json& out, std::string* why = nullptr,
                const json_limits& limits = input_json_limits) {
  auto refuse = [&](std::string reason) {
    if (why)
      *why = std::move(reason);
    return false;
  };
  // nlohmann's lexer takes a NUL byte for the end of the input, so that
  // "{...}\0anything" would parse. JSON never holds a raw NUL.
  if (auto nul = text.find('\0'); nul != std::string_view::npos)
    return refuse("a NUL byte at offset " + std::to_string(nul));
  out = Json();
  detail::bounded_json_builder<Json> builder{out, limits};
  bool ok = false;
  try {
    ok = Json::sax_parse(text.begin(), text.end(), &builder,
                         Json::input_format_t::json, true);
  } catch (const std::exception& e) { // allocation failure, mostly
    return refuse(e.what());
  }
  if (!ok)
    return refuse(builder.why().empty() ? "not valid JSON" : builder.why());
  return true;
}

/// True if `j` nests no deeper than `max_depth` (a scalar has depth 0). For
/// documents built in memory (a TOML table turned into JSON); stops
/// descending at the limit, so any document is safe to check.
template <class Json>
bool json_depth_within(const Json& j, std::size_t max_depth) {
  if (!j.is_structured())
    return true;
  if (max_depth == 0)
    return false;
  for (auto& child : j)
    if (!json_depth_within(child, max_depth - 1))
      return false;
  return true;
}

} // namespace tocsin
