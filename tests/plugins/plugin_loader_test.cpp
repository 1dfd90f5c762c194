#include "plugins/plugin_loader.hpp"

#include "tests/support/temp_dir.hpp"

#include <boost/test/unit_test.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <fstream>

#include <sys/stat.h>
#include <unistd.h>

using namespace tocsin::plugins;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const fs::path plugins_dir{TOCSIN_TEST_PLUGINS_DIR};

loaded_plugins load(const fs::path& dir) {
  auto r = load_plugins(dir);
  BOOST_TEST_REQUIRE(r.ok(), (r.ok() ? "" : r.error().message));
  return std::move(*r);
}

const transport_plugin& discord(const loaded_plugins& set) {
  auto* p = set.find("discord");
  BOOST_TEST_REQUIRE(p != nullptr);
  return *p;
}

std::vector<std::string> messages(const loaded_plugins& set) {
  std::vector<std::string> out;
  for (auto& r : set.refused)
    out.push_back(r.message());
  return out;
}

bool has_message(const loaded_plugins& set, std::string_view text) {
  auto all = messages(set);
  return std::any_of(all.begin(), all.end(), [&](const std::string& m) {
    return m.find(text) != std::string::npos;
  });
}

/// A fresh directory holding copies of the named test plugins.
struct plugin_copies {
  tocsin::test::temp_dir dir;

  void add(const std::string& plugin, const std::string& as = {}) {
    fs::copy_file(plugins_dir / (plugin + ".so"),
                  dir.path() / (as.empty() ? plugin + ".so" : as));
  }
};

const event_view sample_event{
    "evt_01JD0000000000000000000000",
    "policy.denied",
    "high",
    "agent-7",
    "denied \"rm -rf /\"\n\ttab \x01 caf\xc3\xa9 \xf0\x9f\x9a\xa8 \\ end",
    "2026-11-27T05:10:00.123Z",
    R"({"id":"evt_01JD0000000000000000000000"})",
    "https://audit.example/receipts/r1",
};

const endpoint_view discord_endpoint{
    "ep_1", "https://discord.com/api/webhooks/1/abc", "{}"};

} // namespace

BOOST_AUTO_TEST_SUITE(plugin_loader)

BOOST_AUTO_TEST_CASE(a_third_party_plugin_loads_with_name_and_version) {
  auto set = load(plugins_dir);
  auto& d = discord(set);
  BOOST_TEST(d.name() == "discord");
  BOOST_TEST(d.version() == "1.0.0");
  BOOST_TEST(d.path().filename() == "discord.so");
  // Loaded in file-name order; the refused ones do not stop the others.
  BOOST_REQUIRE_EQUAL(set.plugins.size(), 2u);
  BOOST_TEST(set.plugins[0].name() == "discord");
  BOOST_TEST(set.plugins[1].name() == "unruly");
  BOOST_TEST(set.find("wrong_abi") == nullptr);
}

BOOST_AUTO_TEST_CASE(bad_plugins_are_refused_with_file_and_reason) {
  auto set = load(plugins_dir);
  BOOST_TEST_MESSAGE("refused: " << set.refused.size());
  for (auto& m : messages(set))
    BOOST_TEST_MESSAGE("  " << m);
  BOOST_REQUIRE_EQUAL(set.refused.size(), 4u);
  BOOST_TEST(has_message(
      set, "wrong_abi.so: plugin ABI version 2, this tocsin speaks 1"));
  BOOST_TEST(has_message(set, "no_entry.so: no symbol tocsin_plugin_entry "
                              "(not a tocsin plugin; not loaded)"));
  BOOST_TEST(has_message(set, "declines.so: plugin declined ABI version 1"));
  BOOST_TEST(
      has_message(set, "incomplete.so: plugin incomplete has no classify"));
}

BOOST_AUTO_TEST_CASE(a_file_that_is_no_shared_object_is_refused) {
  plugin_copies dir;
  dir.add("discord");
  std::ofstream{dir.dir.path() / "bad.so"} << "this is not an ELF file\n";
  std::ofstream{dir.dir.path() / "README.txt"} << "not a plugin, not scanned\n";
  auto set = load(dir.dir.path());
  BOOST_TEST(set.plugins.size() == 1u);
  BOOST_REQUIRE_EQUAL(set.refused.size(), 1u);
  BOOST_TEST(set.refused[0].path.filename() == "bad.so");
  BOOST_TEST(set.refused[0].message() ==
                 "bad.so: not loadable: not an ELF file",
             set.refused[0].message());
}

BOOST_AUTO_TEST_CASE(a_shared_object_that_is_no_plugin_never_runs) {
  // Its entry point is looked for in the file: its constructor never runs,
  // neither for `serve` nor for `tocsin plugins`.
  plugin_copies dir;
  dir.add("no_entry");
  auto mark = dir.dir.path() / "constructor-ran";
  ::setenv("TOCSIN_TEST_CONSTRUCTOR_MARK", mark.c_str(), 1);
  auto set = load(dir.dir.path());
  ::unsetenv("TOCSIN_TEST_CONSTRUCTOR_MARK");
  BOOST_TEST(set.plugins.empty());
  BOOST_TEST(has_message(set, "no symbol tocsin_plugin_entry"));
  BOOST_TEST(!fs::exists(mark));
}

BOOST_AUTO_TEST_CASE(code_others_can_write_is_refused) {
  plugin_copies dir;
  dir.add("discord");
  dir.add("unruly");
  auto path = dir.dir.path();
  // A directory anyone may write: nothing in it is loaded at all.
  BOOST_REQUIRE(::chmod(path.c_str(), 0777) == 0);
  auto open_dir = load_plugins(path);
  BOOST_REQUIRE(!open_dir);
  BOOST_TEST(open_dir.error().code == "plugins_dir_unsafe");
  BOOST_TEST(open_dir.error().message.find("writable by others") !=
                 std::string::npos,
             open_dir.error().message);
  BOOST_REQUIRE(::chmod(path.c_str(), 0775) == 0);
  BOOST_TEST(load_plugins(path).error().message.find("its group") !=
             std::string::npos);
  BOOST_REQUIRE(::chmod(path.c_str(), 0755) == 0);
  // One plugin file anyone may write: that one is refused.
  BOOST_REQUIRE(::chmod((path / "unruly.so").c_str(), 0666) == 0);
  auto set = load(path);
  BOOST_TEST(set.plugins.size() == 1u);
  BOOST_TEST(has_message(set, "unruly.so: "));
  BOOST_TEST(has_message(set, "writable by others"));
  // A symlink, even to a good plugin, is not followed.
  fs::create_symlink(plugins_dir / "discord.so", path / "linked.so");
  set = load(path);
  BOOST_TEST(has_message(set, "linked.so: a symbolic link"));
  // Owned by someone else (only root can give a file away to test this).
  if (::geteuid() == 0) {
    BOOST_REQUIRE(::chmod((path / "unruly.so").c_str(), 0755) == 0);
    BOOST_REQUIRE(::chown((path / "unruly.so").c_str(), 65534, 65534) == 0);
    set = load(path);
    BOOST_TEST(has_message(set, "owned by uid 65534"));
    BOOST_REQUIRE(::chown(path.c_str(), 65534, 65534) == 0);
    BOOST_TEST(!load_plugins(path).ok());
  }
}

BOOST_AUTO_TEST_CASE(a_second_plugin_of_the_same_name_is_refused) {
  plugin_copies dir;
  dir.add("discord");
  dir.add("discord", "discord_copy.so");
  auto set = load(dir.dir.path());
  BOOST_TEST(set.plugins.size() == 1u);
  BOOST_TEST(set.plugins[0].path().filename() == "discord.so");
  BOOST_REQUIRE_EQUAL(set.refused.size(), 1u);
  BOOST_TEST(set.refused[0].message() ==
             "discord_copy.so: a plugin named discord is already loaded from "
             "discord.so");
}

BOOST_AUTO_TEST_CASE(a_missing_directory_is_an_error_unless_default) {
  tocsin::test::temp_dir tmp;
  auto missing = tmp.path() / "nope";
  auto r = load_plugins(missing);
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.error().message.find("does not exist") != std::string::npos);
  auto d = load_plugins(missing, if_missing::load_nothing);
  BOOST_REQUIRE(d.ok());
  BOOST_TEST(d->plugins.empty());
  BOOST_TEST(d->refused.empty());
}

BOOST_AUTO_TEST_CASE(a_plugin_outlives_the_set_it_came_from) {
  std::optional<transport_plugin> kept;
  {
    auto set = load(plugins_dir);
    kept = discord(set);
  }
  BOOST_TEST((kept->classify(204, "", "").what == outcome::success));
}

BOOST_AUTO_TEST_CASE(discord_builds_a_webhook_message) {
  auto set = load(plugins_dir);
  auto r = discord(set).build_request(sample_event, discord_endpoint);
  BOOST_REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
  BOOST_TEST(r->method == "POST");
  BOOST_TEST(!r->url.has_value());
  BOOST_REQUIRE_EQUAL(r->headers.size(), 1u);
  BOOST_TEST(r->headers[0].first == "content-type");
  BOOST_TEST(r->headers[0].second == "application/json");
  BOOST_TEST_MESSAGE(r->body);
  auto j = json::parse(r->body); // valid JSON, valid UTF-8
  BOOST_TEST(j["content"] == "**policy.denied** (high)");
  BOOST_TEST(!j.contains("username"));
  BOOST_TEST(j["allowed_mentions"]["parse"] == json::array());
  BOOST_REQUIRE_EQUAL(j["embeds"].size(), 1u);
  auto& e = j["embeds"][0];
  BOOST_TEST(e["title"] == "policy.denied (high)");
  BOOST_TEST(e["description"] == std::string{sample_event.summary});
  BOOST_TEST(e["timestamp"] == "2026-11-27T05:10:00.123Z");
  BOOST_TEST(e["url"] == "https://audit.example/receipts/r1");
  BOOST_TEST(e["color"] == 15105570);
  BOOST_REQUIRE_EQUAL(e["fields"].size(), 2u);
  BOOST_TEST(e["fields"][0]["name"] == "Agent");
  BOOST_TEST(e["fields"][0]["value"] == "agent-7");
  BOOST_TEST(e["fields"][1]["value"] == "evt_01JD0000000000000000000000");
}

BOOST_AUTO_TEST_CASE(discord_cuts_long_text_on_character_boundaries) {
  auto set = load(plugins_dir);
  std::string summary;
  for (int i = 0; i < 3000; ++i)
    summary += "\xc3\xa9"; // é, two bytes
  auto ev = sample_event;
  ev.summary = summary;
  ev.agent_id = "";
  ev.audit_url = "";
  ev.acknowledged = true;
  auto r = discord(set).build_request(ev, discord_endpoint);
  BOOST_REQUIRE(r.ok());
  auto j = json::parse(r->body);
  auto description = j["embeds"][0]["description"].get<std::string>();
  BOOST_TEST(description.size() == 4096u);
  BOOST_TEST(j["content"] == "Acknowledged: **policy.denied** (high)");
  BOOST_TEST(!j["embeds"][0].contains("url"));
  BOOST_TEST(j["embeds"][0]["fields"].size() == 1u); // no empty Agent field
}

BOOST_AUTO_TEST_CASE(discord_options_name_the_sender_and_thread) {
  auto set = load(plugins_dir);
  auto ep = discord_endpoint;
  ep.options_json =
      R"( { "username" : "Tocsin \"bot\" \u00e9", "thread_id": "123" } )";
  BOOST_TEST(discord(set).validate_options(ep).ok());
  auto r = discord(set).build_request(sample_event, ep);
  BOOST_REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
  auto j = json::parse(r->body);
  BOOST_TEST(j["username"] == "Tocsin \"bot\" \xc3\xa9");
  BOOST_REQUIRE(r->url.has_value());
  BOOST_TEST(*r->url == "https://discord.com/api/webhooks/1/abc?thread_id=123");
}

BOOST_AUTO_TEST_CASE(discord_validates_its_options) {
  auto set = load(plugins_dir);
  auto& d = discord(set);
  BOOST_TEST(d.validate_options("{}").ok());
  BOOST_TEST(d.validate_options("").ok()); // no options: "{}"
  BOOST_TEST(d.validate_options(R"({"username": "alerts"})").ok());
  auto unknown = d.validate_options(R"({"username": "a", "color": "red"})");
  BOOST_REQUIRE(!unknown.ok());
  BOOST_TEST(unknown.error().code == "invalid_options");
  BOOST_TEST(unknown.error().field == "options");
  BOOST_TEST(
      unknown.error().message ==
      R"(discord: unknown option "color" (discord accepts username, thread_id))");
  for (auto bad :
       {R"([])", R"({"username": 5})", R"({"username": ""})",
        R"({"thread_id": "12a"})", R"({"username": "a", "username": "b"})",
        R"({"username": "a"} x)", R"({"username": "a",})",
        R"({"username": "bad \q escape"})"}) {
    auto st = d.validate_options(bad);
    BOOST_TEST(!st.ok(), bad);
    if (!st.ok())
      BOOST_TEST_MESSAGE(bad << " -> " << st.error().message);
  }
  // build_request refuses what validate_options refuses.
  auto ep = discord_endpoint;
  ep.options_json = R"({"colour": 1})";
  BOOST_TEST(!d.build_request(sample_event, ep).ok());
}

BOOST_AUTO_TEST_CASE(discord_classifies_responses) {
  auto set = load(plugins_dir);
  auto& d = discord(set);
  struct row {
    int status;
    outcome what;
    std::string_view reason;
  };
  for (auto [status, what, reason] : {
           row{200, outcome::success, ""},
           row{204, outcome::success, ""},
           row{429, outcome::retry, "rate limited by Discord"},
           row{500, outcome::retry, "Discord unavailable: HTTP 500"},
           row{503, outcome::retry, "Discord unavailable: HTTP 503"},
           row{404, outcome::disable_endpoint, "webhook deleted"},
           row{401, outcome::permanent, "rejected by Discord: HTTP 401"},
           row{302, outcome::retry, "unexpected HTTP 302"},
       }) {
    auto c = d.classify(status, "", "");
    BOOST_TEST((c.what == what), status << ": " << to_string(c.what));
    BOOST_TEST(c.reason == std::string{reason}, status);
  }
  auto c = d.classify(400, R"({"message": "Invalid Form Body",
"code": 50035})",
                      "");
  BOOST_TEST((c.what == outcome::permanent));
  // The body's newline does not reach the reason.
  BOOST_TEST(
      c.reason ==
      R"(rejected by Discord: HTTP 400 {"message": "Invalid Form Body", "code": 50035})");
}

BOOST_AUTO_TEST_CASE(what_a_plugin_writes_is_checked) {
  auto set = load(plugins_dir);
  auto* u = set.find("unruly");
  BOOST_REQUIRE(u != nullptr);
  auto with = [&](std::string_view how) {
    return u->build_request(sample_event, {"ep_1", "https://h.example/", how});
  };
  auto nothing = with("{}");
  BOOST_REQUIRE(nothing.ok());
  BOOST_TEST(nothing->method == "POST"); // the default
  BOOST_TEST(nothing->body.empty());
  BOOST_TEST(nothing->headers.empty());
  for (auto [how, expect] :
       std::initializer_list<std::pair<std::string_view, std::string_view>>{
           {R"("bad_method")", R"(unruly: method "GE T" is not a token)"},
           {R"("bad_header_name")",
            R"(unruly: header name "bad name" is not a token)"},
           {R"("crlf")", "unruly: header x-ok has CR, LF or NUL in its value"},
           {R"("null_body")", "unruly: append_body with a null pointer"},
           {R"("huge_body")", "unruly: body over 1048576 bytes"},
           {R"("bad_url")", R"(unruly: URL override "not a url" is invalid)"},
       }) {
    auto r = with(how);
    BOOST_REQUIRE_MESSAGE(!r.ok(), how);
    BOOST_TEST(r.error().code == "plugin_misbehaved", how);
    BOOST_TEST(r.error().message.rfind(expect, 0) == 0,
               how << " -> " << r.error().message);
  }
  auto silent = with(R"("fails_silently")");
  BOOST_REQUIRE(!silent.ok());
  BOOST_TEST(silent.error().message ==
             "unruly: build_request failed (no reason given)");
  auto fails = with(R"("fails")");
  BOOST_REQUIRE(!fails.ok());
  BOOST_TEST(fails.error().code == "quota");
  BOOST_TEST(fails.error().message == "unruly: no more requests");

  auto unknown = u->classify(299, "", "");
  BOOST_TEST((unknown.what == outcome::permanent));
  BOOST_TEST(unknown.reason == "unruly: unknown outcome 42");
  auto multiline = u->classify(500, "", "");
  BOOST_TEST((multiline.what == outcome::retry));
  BOOST_TEST(multiline.reason == "line one line two");
  auto misuse = u->classify(200, "", "");
  BOOST_TEST((misuse.what == outcome::permanent));
  BOOST_TEST(misuse.reason == "unruly: add_header outside build_request");
}

BOOST_AUTO_TEST_SUITE_END()
