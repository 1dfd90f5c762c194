#include "plugins/plugin_loader.hpp"

#include "common/log.hpp"

#include "tests/support/plugin_calls.hpp"
#include "tests/support/temp_dir.hpp"

#include <boost/test/unit_test.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>

#include <dlfcn.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace tocsin::plugins;
using nlohmann::json;
using tocsin::test::build_with;
using tocsin::test::classify_with;
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
    event_state::open,
    "",
    "",
    "",
    "",
    0,
    "",
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
  BOOST_REQUIRE_EQUAL(set.refused.size(), 5u);
  BOOST_TEST(has_message(
      set, "wrong_abi.so: plugin ABI version 3, this tocsin speaks 2"));
  BOOST_TEST(has_message(set, "no_entry.so: no symbol tocsin_plugin_entry_v2 "
                              "(not a tocsin plugin; not loaded)"));
  BOOST_TEST(has_message(set, "declines.so: plugin declined to load: needs "
                              "libfoo 2 and a newline to strip"));
  BOOST_TEST(
      has_message(set, "incomplete.so: plugin incomplete has no classify"));
  BOOST_TEST(
      has_message(set, "abi_v1.so: built for plugin ABI version 1 (exports "
                       "tocsin_plugin_entry): rebuild it against this tocsin's "
                       "tocsin_plugin.h (ABI version 2); not loaded"));
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
  // neither for `serve` nor for `tocsin plugins`. Nor does a plugin of ABI
  // version 1's, whose table this host would misread.
  for (auto* name : {"no_entry", "abi_v1"}) {
    BOOST_TEST_CONTEXT(name) {
      plugin_copies dir;
      dir.add(name);
      auto mark = dir.dir.path() / "constructor-ran";
      ::setenv("TOCSIN_TEST_CONSTRUCTOR_MARK", mark.c_str(), 1);
      auto set = load(dir.dir.path());
      ::unsetenv("TOCSIN_TEST_CONSTRUCTOR_MARK");
      BOOST_TEST(set.plugins.empty());
      BOOST_TEST(set.refused.size() == 1u);
      BOOST_TEST(!fs::exists(mark));
    }
  }
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

// Whoever can write a directory above the plugins directory can replace
// it: every ancestor is checked (as sshd's StrictModes does), after links
// are resolved (issue 24).
BOOST_AUTO_TEST_CASE(
    a_plugins_dir_under_a_directory_others_can_write_is_refused) {
  tocsin::test::temp_dir tmp; // 0700, in /tmp (1777: sticky, fine)
  auto open = tmp.path() / "open";
  auto dir = open / "plugins";
  fs::create_directories(dir);
  fs::copy_file(plugins_dir / "discord.so", dir / "discord.so");
  BOOST_REQUIRE(::chmod(dir.c_str(), 0755) == 0);
  BOOST_REQUIRE(::chmod(open.c_str(), 0777) == 0);
  auto r = load_plugins(dir);
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.error().code == "plugins_dir_unsafe");
  BOOST_TEST(r.error().message.find(open.string() + ", above " + dir.string() +
                                    ", is writable by others (mode 0777") !=
                 std::string::npos,
             r.error().message);
  BOOST_REQUIRE(::chmod(open.c_str(), 0775) == 0);
  r = load_plugins(dir);
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.error().message.find("writable by its group") !=
                 std::string::npos,
             r.error().message);
  // Sticky, as /tmp is: others cannot replace what is ours there.
  BOOST_REQUIRE(::chmod(open.c_str(), 01777) == 0);
  BOOST_TEST(load(dir).plugins.size() == 1u);
  BOOST_REQUIRE(::chmod(open.c_str(), 0755) == 0);
  BOOST_TEST(load(dir).plugins.size() == 1u);
  // Owned by someone else (only root can give a directory away).
  if (::geteuid() == 0) {
    BOOST_REQUIRE(::chown(open.c_str(), 65534, 65534) == 0);
    r = load_plugins(dir);
    BOOST_REQUIRE(!r.ok());
    BOOST_TEST(r.error().message.find("owned by uid 65534") !=
                   std::string::npos,
               r.error().message);
    BOOST_REQUIRE(::chown(open.c_str(), 0, 0) == 0);
  }
}

BOOST_AUTO_TEST_CASE(
    a_plugins_dir_reached_through_a_link_is_checked_where_it_is) {
  tocsin::test::temp_dir tmp;
  auto open = tmp.path() / "open";
  auto dir = open / "plugins";
  fs::create_directories(dir);
  fs::copy_file(plugins_dir / "discord.so", dir / "discord.so");
  BOOST_REQUIRE(::chmod(dir.c_str(), 0755) == 0);
  BOOST_REQUIRE(::chmod(open.c_str(), 0777) == 0);
  // The link itself sits in a safe directory; where it leads does not.
  auto safe = tmp.path() / "safe";
  fs::create_directories(safe);
  BOOST_REQUIRE(::chmod(safe.c_str(), 0755) == 0);
  fs::create_symlink(dir, safe / "plugins");
  auto r = load_plugins(safe / "plugins");
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.error().code == "plugins_dir_unsafe");
  BOOST_TEST(r.error().message.find(open.string() + ", above " +
                                    dir.string()) != std::string::npos,
             r.error().message);
  // A link to a directory that is itself open, and links along the way.
  fs::create_symlink(open, safe / "via");
  BOOST_REQUIRE(::chmod(open.c_str(), 0755) == 0);
  BOOST_REQUIRE(::chmod(dir.c_str(), 0777) == 0);
  for (auto& p : {safe / "plugins", safe / "via" / "plugins"}) {
    r = load_plugins(p);
    BOOST_REQUIRE_MESSAGE(!r.ok(), p);
    BOOST_TEST(
        r.error().message.find(dir.string() + " is writable by others") !=
            std::string::npos,
        r.error().message);
  }
  // Made safe: loaded through the link, from the real directory.
  BOOST_REQUIRE(::chmod(dir.c_str(), 0755) == 0);
  auto set = load(safe / "via" / "plugins");
  BOOST_REQUIRE_EQUAL(set.plugins.size(), 1u);
  BOOST_TEST(set.plugins[0].path() == fs::canonical(dir) / "discord.so");
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

BOOST_AUTO_TEST_CASE(endpoints_are_opened_once_and_closed_once) {
  plugin_copies dir;
  dir.add("unruly");
  auto unload_mark = dir.dir.path() / "unloaded";
  ::setenv("TOCSIN_TEST_UNLOAD_MARK", unload_mark.c_str(), 1);
  std::shared_ptr<const transport_instance> kept;
  {
    auto set = load(dir.dir.path());
    auto* u = set.find("unruly");
    BOOST_REQUIRE(u != nullptr);
    // The plugin's own count of open instances, read from the loaded copy.
    void* self = ::dlopen((dir.dir.path() / "unruly.so").c_str(),
                          RTLD_NOW | RTLD_NOLOAD);
    BOOST_REQUIRE(self != nullptr);
    auto live =
        reinterpret_cast<int (*)()>(::dlsym(self, "unruly_live_instances"));
    BOOST_REQUIRE(live != nullptr);
    BOOST_TEST(live() == 0);
    // Checking options opens and closes at once.
    BOOST_TEST(u->validate_options(R"("anything")").ok());
    BOOST_TEST(live() == 0);
    auto a = u->open({"ep_a", "https://h.example/", R"("bad_method")"});
    auto b = u->open({"ep_b", "https://h.example/", "{}"});
    BOOST_REQUIRE(a.ok());
    BOOST_REQUIRE(b.ok());
    BOOST_TEST(live() == 2);
    // Each call gets the instance its endpoint was opened as.
    auto ra = (*a)->build_request(sample_event);
    BOOST_REQUIRE(!ra.ok());
    BOOST_TEST(ra.error().message == R"(unruly: method "GE T" is not a token)");
    BOOST_TEST((*b)->build_request(sample_event).ok());
    a->reset();
    BOOST_TEST(live() == 1);
    kept = std::move(*b);
    ::dlclose(self);
  }
  // The set is gone, the endpoint is not: the plugin stays loaded.
  BOOST_TEST(!fs::exists(unload_mark));
  BOOST_TEST(kept->build_request(sample_event).ok());
  kept.reset();
  // unload ran after the last instance was closed.
  std::ifstream in{unload_mark};
  std::string line;
  std::getline(in, line);
  BOOST_TEST(line == "unloaded with 0 open");
  ::unsetenv("TOCSIN_TEST_UNLOAD_MARK");
}

BOOST_AUTO_TEST_CASE(an_endpoint_the_plugin_refuses_is_not_opened) {
  auto set = load(plugins_dir);
  auto* u = set.find("unruly");
  BOOST_REQUIRE(u != nullptr);
  auto refused = u->open({"ep_1", "https://h.example/", R"("refuse")"});
  BOOST_REQUIRE(!refused.ok());
  BOOST_TEST(refused.error().code == "bad_options");
  BOOST_TEST(refused.error().field == "options");
  BOOST_TEST(refused.error().message == "unruly: no thanks");
  auto silent = u->validate_options(R"("refuse_silently")");
  BOOST_REQUIRE(!silent.ok());
  BOOST_TEST(silent.error().code == "invalid_options");
  BOOST_TEST(silent.error().message ==
             "unruly: refused the options (no reason given)");
  auto misuse = u->validate_options(R"("misuse_open")");
  BOOST_REQUIRE(!misuse.ok());
  BOOST_TEST(misuse.error().code == "plugin_misbehaved");
  BOOST_TEST(misuse.error().message ==
             "unruly: add_header outside build_request");
}

BOOST_AUTO_TEST_CASE(what_a_plugin_logs_goes_to_the_log_as_one_line) {
  // The host's log writes JSON lines to stderr: catch them in a file.
  tocsin::test::temp_dir tmp;
  auto file = tmp.path() / "stderr";
  std::fflush(stderr);
  int saved = ::dup(2);
  int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  BOOST_REQUIRE(saved >= 0 && fd >= 0);
  ::dup2(fd, 2);
  ::close(fd);
  tocsin::log::set_min_level(tocsin::log::level::debug);
  auto set = load_plugins(plugins_dir);
  tocsin::log::set_min_level(tocsin::log::level::info);
  std::fflush(stderr);
  ::dup2(saved, 2);
  ::close(saved);
  BOOST_REQUIRE(set.ok());

  std::ifstream in{file};
  std::vector<json> lines;
  for (std::string line; std::getline(in, line);)
    lines.push_back(json::parse(line)); // every line one JSON record
  auto from = [&](std::string_view plugin) {
    std::vector<json> out;
    for (auto& l : lines)
      if (l.value("plugin", "") == plugin)
        out.push_back(l);
    return out;
  };
  auto discord_lines = from("discord.so");
  BOOST_REQUIRE_EQUAL(discord_lines.size(), 1u);
  BOOST_TEST(discord_lines[0]["level"] == "debug");
  BOOST_TEST(discord_lines[0]["msg"] == "discord transport ready");
  // A newline cannot start a forged record.
  auto unruly_lines = from("unruly.so");
  BOOST_REQUIRE_EQUAL(unruly_lines.size(), 1u);
  BOOST_TEST(unruly_lines[0]["level"] == "debug");
  BOOST_TEST(unruly_lines[0]["msg"] ==
             R"(unruly loaded {"level":"error","msg":"forged"})");
  for (auto& l : lines)
    BOOST_TEST(l.value("msg", "") != "forged");
}

BOOST_AUTO_TEST_CASE(a_plugin_outlives_the_set_it_came_from) {
  std::optional<transport_plugin> kept;
  {
    auto set = load(plugins_dir);
    kept = discord(set);
  }
  BOOST_TEST((classify_with(*kept, 204, "", "").what == outcome::success));
}

BOOST_AUTO_TEST_CASE(discord_builds_a_webhook_message) {
  auto set = load(plugins_dir);
  auto r = build_with(discord(set), sample_event, discord_endpoint);
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
  ev.state = event_state::acknowledged;
  auto r = build_with(discord(set), ev, discord_endpoint);
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
  auto r = build_with(discord(set), sample_event, ep);
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
  BOOST_TEST(!build_with(d, sample_event, ep).ok());
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
    auto c = classify_with(d, status, "", "");
    BOOST_TEST((c.what == what), status << ": " << to_string(c.what));
    BOOST_TEST(c.reason == std::string{reason}, status);
  }
  auto c = classify_with(d, 400, R"({"message": "Invalid Form Body",
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
    return build_with(*u, sample_event, {"ep_1", "https://h.example/", how});
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

  auto unknown = classify_with(*u, 299, "", "");
  BOOST_TEST((unknown.what == outcome::permanent));
  BOOST_TEST(unknown.reason == "unruly: unknown outcome 42");
  auto multiline = classify_with(*u, 500, "", "");
  BOOST_TEST((multiline.what == outcome::retry));
  BOOST_TEST(multiline.reason == "line one line two");
  auto misuse = classify_with(*u, 200, "", "");
  BOOST_TEST((misuse.what == outcome::permanent));
  BOOST_TEST(misuse.reason == "unruly: add_header outside build_request");
}

BOOST_AUTO_TEST_SUITE_END()
