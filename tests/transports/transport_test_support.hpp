// Helpers shared by the tests of the shipped transports (webhook, slack,
// pagerduty): the plugin loaded from the build's plugin directory, UTF-8
// checks, golden files and sample events as the host hands them over.
//
// Golden files live in tests/transports/golden/<transport>_<type>.json (the
// type's dots as underscores). TOCSIN_UPDATE_GOLDEN=1 rewrites them from what
// the plugin builds (review the diff).
#pragma once

#include "plugins/plugin_loader.hpp"

#include <boost/test/unit_test.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>

namespace tocsin::test {

/// The shipped plugin `name`, loaded (once, with every other plugin of the
/// directory, none of them refused) from TOCSIN_PLUGINS_OUTPUT_DIR.
inline const plugins::transport_plugin& shipped_plugin(std::string_view name) {
  static auto set = plugins::load_plugins(TOCSIN_PLUGINS_OUTPUT_DIR);
  BOOST_TEST_REQUIRE(set.ok());
  BOOST_TEST_REQUIRE(set->refused.empty());
  auto* p = set->find(name);
  BOOST_TEST_REQUIRE(p != nullptr, "no plugin " << name);
  return *p;
}

/// Strict UTF-8 (no overlongs, surrogates or code points past U+10FFFF).
inline bool valid_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = c < 0x80           ? 1
                    : (c >> 5) == 0x6  ? 2
                    : (c >> 4) == 0xE  ? 3
                    : (c >> 3) == 0x1E ? 4
                                       : 0;
    if (n == 0 || i + n > s.size())
      return false;
    char32_t cp = n == 1 ? c : n == 2 ? c & 0x1F : n == 3 ? c & 0x0F : c & 0x07;
    for (std::size_t k = 1; k < n; ++k) {
      auto b = static_cast<unsigned char>(s[i + k]);
      if ((b >> 6) != 0x2)
        return false;
      cp = (cp << 6) | (b & 0x3F);
    }
    static constexpr char32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += n;
  }
  return true;
}

/// Code points of valid UTF-8: the bytes that do not continue a sequence.
inline std::size_t code_points(std::string_view s) {
  std::size_t n = 0;
  for (char c : s)
    n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

/// `s` `n` times over.
inline std::string repeat(std::string_view s, std::size_t n) {
  std::string out;
  out.reserve(s.size() * n);
  for (std::size_t i = 0; i < n; ++i)
    out += s;
  return out;
}

/// tests/transports/golden/<transport>_<type>.json, the type's dots as
/// underscores (golden/slack_policy_denied.json).
inline std::filesystem::path golden_path(std::string_view transport,
                                         std::string_view type) {
  std::string name{type};
  std::replace(name.begin(), name.end(), '.', '_');
  // From CMake, not __FILE__: a compiler cache may make that relative.
  return std::filesystem::path{TOCSIN_GOLDEN_DIR} /
         (std::string{transport} + "_" + name + ".json");
}

/// TOCSIN_UPDATE_GOLDEN=1: golden files are rewritten, not compared.
inline bool updating_golden() {
  auto* v = std::getenv("TOCSIN_UPDATE_GOLDEN");
  return v != nullptr && std::string_view{v} == "1";
}

/// Writes the JSON `body` to `path`, indented, in its own field order.
inline void write_golden(const std::filesystem::path& path,
                         std::string_view body) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream out{path};
  out << nlohmann::ordered_json::parse(body).dump(2) << '\n';
  BOOST_TEST_REQUIRE(out.good(), "cannot write " << path);
  BOOST_TEST_MESSAGE("rewrote " << path);
}

/// The golden JSON object at `path`, as `Json`: nlohmann::json compares
/// without regard to field order, nlohmann::ordered_json with it.
template <class Json = nlohmann::ordered_json>
Json read_golden(const std::filesystem::path& path) {
  std::ifstream in{path};
  BOOST_TEST_REQUIRE(in.good(), "no golden file " << path
                                                  << " (TOCSIN_UPDATE_GOLDEN=1 "
                                                     "writes it)");
  std::stringstream text;
  text << in.rdbuf();
  auto j = Json::parse(text.str(), nullptr, false);
  BOOST_TEST_REQUIRE(j.is_object(), path << " is not a JSON object");
  return j;
}

/// The built JSON `body` equals the golden file at `path`, compared as `Json`
/// (see read_golden); with TOCSIN_UPDATE_GOLDEN=1 the file is rewritten from
/// `body` instead.
template <class Json = nlohmann::ordered_json>
void check_golden(const std::filesystem::path& path, std::string_view body) {
  if (updating_golden()) {
    write_golden(path, body);
    return;
  }
  auto expected = read_golden<Json>(path);
  auto built = Json::parse(body);
  BOOST_TEST((built == expected), "built:\n"
                                      << built.dump(2) << "\nexpected (" << path
                                      << "):\n"
                                      << expected.dump(2));
}

/// The request is a POST of the body to the endpoint's own URL, with one
/// header: Content-Type `content_type`.
inline void check_post(const plugins::built_request& r,
                       std::string_view content_type) {
  BOOST_TEST(r.method == "POST");
  BOOST_TEST(!r.url);
  BOOST_TEST_REQUIRE(r.headers.size() == 1u);
  BOOST_TEST(r.headers[0].first == "Content-Type");
  BOOST_TEST(r.headers[0].second == content_type);
}

/// An event as the host hands it over: the view's fields and the normalized
/// payload (app/event_validation.cpp) built from the same values, kept alive
/// together.
struct sample_event {
  std::string id = {};
  std::string type = {};
  std::string severity = {};
  std::string agent_id = {};
  std::string summary = {}; ///< none in the payload when empty
  std::string timestamp = "2026-11-27T05:10:00.123Z";
  nlohmann::ordered_json details = nlohmann::ordered_json::object();
  std::string audit_url = {};
  bool truncated = false;
  plugins::event_state state = plugins::event_state::open;
  std::string state_by = {};
  std::string state_at = {};
  std::string reply_url = {};
  std::string receipt = {};
  std::uint32_t answered_along = 0;
  std::string event_url = {};

  std::string payload_json = {};

  /// The view of this event; valid while the event lives and is not changed.
  plugins::event_view view() {
    nlohmann::ordered_json body;
    body["id"] = id;
    body["type"] = type;
    body["timestamp"] = timestamp;
    if (!agent_id.empty())
      body["agent_id"] = agent_id;
    body["severity"] = severity;
    if (!summary.empty())
      body["summary"] = summary;
    body["details"] = details;
    if (!audit_url.empty())
      body["links"] = nlohmann::ordered_json{{"audit", audit_url}};
    if (truncated)
      body["truncated"] = true;
    // Ill-formed UTF-8 (a test's input) goes on as U+FFFD.
    payload_json = body.dump(-1, ' ', false,
                             nlohmann::ordered_json::error_handler_t::replace);
    plugins::event_view v;
    v.id = id;
    v.type = type;
    v.severity = severity;
    v.agent_id = agent_id;
    v.summary = summary;
    v.timestamp = timestamp;
    v.payload_json = payload_json;
    v.audit_url = audit_url;
    v.state = state;
    v.state_by = state_by;
    v.state_at = state_at;
    v.reply_url = reply_url;
    v.receipt = receipt;
    v.answered_along = answered_along;
    v.event_url = event_url;
    return v;
  }
};

} // namespace tocsin::test
