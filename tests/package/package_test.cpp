// The Debian packages as a user gets them: lintian on both, unpacked with
// dpkg -x into an empty root, then the installed binary run from there — its
// version, its default plugins directory, the packaged config — and the
// example plugin of tocsin-dev built out of tree with pkg-config against the
// installed headers and loaded by the installed daemon, which delivers an
// event through it and through the shipped webhook transport (signed) to a
// real HTTPS receiver on loopback. Also the hardening of the shipped unit
// (systemd-analyze security).
//
// The packages: the directory TOCSIN_PACKAGE_DIR names (CI packages the gcc
// product in build/ and runs this test from build-asan/), or, without it,
// made here with cpack from this test's own build directory.
#include "tests/support/daemon_process.hpp"
#include "tests/support/eventually.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/https_receiver.hpp"
#include "tests/support/run_command.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/test_ca.hpp"

#include <boost/test/unit_test.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace tocsin::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A program on PATH; fails the test, naming it, when there is none.
fs::path tool(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::istringstream dirs{path ? path : "/usr/bin:/bin"};
  for (std::string dir; std::getline(dirs, dir, ':');) {
    auto p = fs::path{dir} / name;
    if (::access(p.c_str(), X_OK) == 0)
      return p;
  }
  BOOST_FAIL(name << " is not installed (scripts/install-deps.sh --test "
                     "installs what the tests need)");
  return {};
}

/// Runs a command, failing the test when it does not exit 0.
command_result must_run(const std::vector<std::string>& argv,
                        command_options opts = {}) {
  auto r = run_command(argv, opts);
  BOOST_REQUIRE_MESSAGE(r.code == 0 && !r.timed_out,
                        argv[0] << " " << (argv.size() > 1 ? argv[1] : "")
                                << " failed: " << r);
  return r;
}

std::string read_file(const fs::path& p) {
  std::ifstream in{p, std::ios::binary};
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

/// The one file of `dir` whose name matches `pattern`.
fs::path the_package(const fs::path& dir, const std::string& pattern) {
  std::regex re{pattern};
  std::vector<fs::path> found;
  for (auto& e : fs::directory_iterator(dir))
    if (std::regex_match(e.path().filename().string(), re))
      found.push_back(e.path());
  BOOST_REQUIRE_MESSAGE(found.size() == 1,
                        dir << " holds " << found.size()
                            << " packages named like " << pattern
                            << " instead of one (cd build && cpack -G DEB "
                               "makes them in build/packages)");
  return found.front();
}

/// The packages, unpacked into root/ with dpkg -x; made once per run.
struct installed {
  temp_dir dir;
  fs::path tocsin_deb, dev_deb;
  fs::path root = dir.path() / "root";

  installed() {
    fs::path packages;
    if (const char* given = std::getenv("TOCSIN_PACKAGE_DIR")) {
      packages = given;
      BOOST_REQUIRE_MESSAGE(fs::is_directory(packages),
                            "TOCSIN_PACKAGE_DIR=" << given
                                                  << " is not a directory");
    } else {
      packages = dir.path() / "packages";
      command_options in_build;
      in_build.cwd = TOCSIN_BUILD_DIR;
      in_build.timeout = 300s;
      must_run({TOCSIN_CPACK, "-G", "DEB", "-B", packages.string()}, in_build);
    }
    auto arch = must_run({tool("dpkg").string(), "--print-architecture"}).out;
    arch.erase(arch.find_last_not_of('\n') + 1);
    tocsin_deb = the_package(packages, "tocsin_[^_]+_" + arch + "\\.deb");
    dev_deb = the_package(packages, "tocsin-dev_[^_]+_all\\.deb");
    for (auto& deb : {tocsin_deb, dev_deb})
      must_run({tool("dpkg").string(), "-x", deb.string(), root.string()});
  }

  std::string field(const fs::path& deb, const std::string& name) const {
    auto r = must_run({tool("dpkg-deb").string(), "-f", deb.string(), name});
    return r.out.substr(0, r.out.find_last_not_of('\n') + 1);
  }

  /// The files (not directories) a package holds, as "/etc/tocsin/...".
  std::set<std::string> files_of(const fs::path& deb) const {
    auto listing = must_run({tool("dpkg-deb").string(), "-c", deb.string()});
    std::set<std::string> files;
    std::istringstream lines{listing.out};
    for (std::string line; std::getline(lines, line);) {
      auto at = line.find(" ./");
      if (at != std::string::npos && line.back() != '/')
        files.insert(line.substr(at + 2));
    }
    return files;
  }

  fs::path tocsin() const { return root / "usr/bin/tocsin"; }
};

installed& packages() {
  static installed p;
  return p;
}

/// `text` with the one line `from` replaced by `to`; fails the test unless
/// the line occurs exactly once.
std::string replace_line(std::string text, const std::string& from,
                         const std::string& to) {
  auto line = "\n" + from + "\n";
  auto at = text.find(line);
  BOOST_REQUIRE_MESSAGE(
      at != std::string::npos && text.find(line, at + 1) == std::string::npos,
      "the packaged config does not have the line '" << from << "' once");
  return text.replace(at + 1, from.size(), to);
}

} // namespace

BOOST_AUTO_TEST_SUITE(package)

BOOST_AUTO_TEST_CASE(lintian_finds_no_errors) {
  auto& p = packages();
  command_options opts;
  opts.timeout = 300s;
  auto r = run_command({tool("lintian").string(), "--fail-on", "error",
                        "--no-tag-display-limit", p.tocsin_deb.string(),
                        p.dev_deb.string()},
                       opts);
  BOOST_TEST_MESSAGE("lintian: " << (r.out.empty() ? "no tags" : r.out));
  BOOST_TEST(r.code == 0, r);
  BOOST_TEST(r.out.find("E: ") == std::string::npos, r.out);
}

BOOST_AUTO_TEST_CASE(only_the_product_is_packaged) {
  auto& p = packages();
  BOOST_TEST(p.files_of(p.tocsin_deb) ==
                 (std::set<std::string>{
                     "/etc/tocsin/tocsin.toml",
                     "/lib/systemd/system/tocsin.service",
                     "/usr/bin/tocsin",
                     "/usr/lib/tocsin/plugins/pagerduty.so",
                     "/usr/lib/tocsin/plugins/slack.so",
                     "/usr/lib/tocsin/plugins/webhook.so",
                     "/usr/share/doc/tocsin/changelog.gz",
                     "/usr/share/doc/tocsin/copyright",
                     "/usr/share/man/man1/tocsin.1.gz",
                 }),
             boost::test_tools::per_element());
  BOOST_TEST(p.files_of(p.dev_deb) ==
                 (std::set<std::string>{
                     "/usr/include/tocsin/tocsin_plugin.h",
                     "/usr/include/tocsin/tocsin_plugin_util.h",
                     "/usr/share/doc/tocsin-dev/changelog.gz",
                     "/usr/share/doc/tocsin-dev/copyright",
                     "/usr/share/doc/tocsin-dev/examples/discord/Makefile",
                     "/usr/share/doc/tocsin-dev/examples/discord/discord.c",
                     "/usr/share/pkgconfig/tocsin-plugin.pc",
                 }),
             boost::test_tools::per_element());
  auto depends = p.field(p.tocsin_deb, "Depends");
  BOOST_TEST(depends.find("adduser") != std::string::npos, depends);
  BOOST_TEST(depends.find("libsystemd0") != std::string::npos, depends);
  auto conffiles = must_run(
      {tool("dpkg-deb").string(), "-I", p.tocsin_deb.string(), "conffiles"});
  BOOST_TEST(conffiles.out == "/etc/tocsin/tocsin.toml\n");
}

BOOST_AUTO_TEST_CASE(the_installed_binary_finds_its_plugins_and_config) {
  auto& p = packages();
  auto version = must_run({p.tocsin().string(), "--version"});
  BOOST_TEST(version.out ==
             "tocsin " + p.field(p.tocsin_deb, "Version") + "\n");

  // No plugins_dir in the config: <bin>/../lib/tocsin/plugins.
  auto listed = must_run({p.tocsin().string(), "plugins"});
  auto plugins = p.root / "usr/lib/tocsin/plugins";
  BOOST_TEST(listed.out.find("plugins in " + plugins.string()) !=
                 std::string::npos,
             listed);
  for (auto* name : {"webhook", "slack", "pagerduty"}) {
    std::regex line{std::string{"\n"} + name + " +[0-9.]+ +" +
                    (plugins / name).string() + "\\.so\n"};
    BOOST_TEST(std::regex_search(listed.out, line), name << ": " << listed);
  }

  auto checked = must_run({p.tocsin().string(), "serve", "--check-config",
                           (p.root / "etc/tocsin/tocsin.toml").string()});
  BOOST_TEST(checked.out.find("is valid: 0 endpoints, 0 escalation rules, "
                              "3 transports") != std::string::npos,
             checked);
}

BOOST_AUTO_TEST_CASE(the_unit_parses_and_its_exposure_is_at_most_2) {
  auto& p = packages();
  auto unit = p.root / "lib/systemd/system/tocsin.service";
  // systemd ignores what it cannot read, with a line that says so (and the
  // binary the unit runs is not installed here: that line is expected).
  auto verified = run_command(
      {tool("systemd-analyze").string(), "verify", "--man=no", unit.string()});
  for (auto* problem : {"Unknown", "Failed to parse", "Invalid", "bad-setting"})
    BOOST_TEST(verified.err.find(problem) == std::string::npos, verified);

  auto r = must_run({tool("systemd-analyze").string(), "security",
                     "--offline=true", "--no-pager", unit.string()});
  std::smatch m;
  std::regex overall{"Overall exposure level for tocsin.service: ([0-9.]+)"};
  BOOST_REQUIRE_MESSAGE(std::regex_search(r.out, m, overall), r);
  BOOST_TEST_MESSAGE("tocsin.service exposure: " << m[1]);
  BOOST_TEST(std::stod(m[1]) <= 2.0, r);
}

BOOST_AUTO_TEST_CASE(an_out_of_tree_plugin_delivers_with_the_installed_daemon) {
  auto& p = packages();
  temp_dir work;

  // The example, built where a plugin author builds it, against the
  // installed headers found with pkg-config.
  auto src = work.path() / "discord";
  fs::copy(p.root / "usr/share/doc/tocsin-dev/examples/discord", src);
  command_options build;
  build.cwd = src;
  build.env = {"PKG_CONFIG_PATH=" + (p.root / "usr/share/pkgconfig").string(),
               "PKG_CONFIG_SYSROOT_DIR=" + p.root.string()};
  build.unset = {"PKG_CONFIG_LIBDIR", "CFLAGS", "CPPFLAGS", "LDFLAGS"};
  auto made = must_run({tool("make").string()}, build);
  BOOST_TEST(made.out.find("-I" + (p.root / "usr/include/tocsin").string()) !=
                 std::string::npos,
             made);

  // A plugins directory with the shipped transports and the new one.
  auto plugins = work.path() / "plugins";
  fs::create_directories(plugins);
  for (auto& e : fs::directory_iterator(p.root / "usr/lib/tocsin/plugins"))
    fs::copy_file(e.path(), plugins / e.path().filename());
  fs::copy_file(src / "discord.so", plugins / "discord.so");

  test_ca ca{work.path()};
  auto cert = ca.issue("receiver", {"localhost"}, {"127.0.0.1"});
  receiver_options ro;
  ro.cert_file = cert.cert_file;
  ro.key_file = cert.key_file;
  ro.webhook_secret = secret;
  https_receiver receiver{ro};
  auto url = "https://127.0.0.1:" + std::to_string(receiver.port());

  // The packaged config, changed only where a test must.
  auto config = read_file(p.root / "etc/tocsin/tocsin.toml");
  auto data = work.path() / "data";
  config = replace_line(config, "listen = \"127.0.0.1:8650\"",
                        "listen = \"127.0.0.1:0\"");
  config = replace_line(config, "data_dir = \"/var/lib/tocsin\"",
                        "data_dir = \"" + data.string() + "\"");
  config = replace_line(config, "plugins_dir = \"\"",
                        "plugins_dir = \"" + plugins.string() + "\"");
  config = replace_line(config, "allow_networks = []",
                        "allow_networks = [\"127.0.0.0/8\"]");
  config = replace_line(config, "ca_file = \"\"",
                        "ca_file = \"" + ca.ca_file() + "\"");
  config += "\n[[endpoints]]\nid = \"signed\"\nurl = \"" + url +
            "/webhook\"\nsecret = \"" + secret +
            "\"\n\n[[endpoints]]\nid = \"chat\"\nurl = \"" + url +
            "/discord\"\ntransport = \"discord\"\n";
  auto config_file = work.path() / "tocsin.toml";
  std::ofstream{config_file} << config;

  daemon_process daemon{
      {p.tocsin().string(), "serve", "--config", config_file.string()},
      work.path() / "daemon.log"};
  auto port = daemon.wait_listening();
  BOOST_REQUIRE_MESSAGE(port != 0, "the installed daemon did not start:\n"
                                       << daemon.log());
  BOOST_TEST(daemon.log().find((plugins / "discord.so").string()) !=
                 std::string::npos,
             daemon.log());

  std::string token;
  std::getline(std::ifstream{data / "admin.token"}, token);
  http_client api{"127.0.0.1", port};
  json event = {{"type", "policy.denied"},
                {"agent_id", "agent-7"},
                {"severity", "high"},
                {"summary", "agent-7 tried file.delete on /etc"}};
  auto posted = api.request("POST", "/v1/events", event.dump(),
                            {{"authorization", "Bearer " + token},
                             {"content-type", "application/json"}});
  BOOST_REQUIRE_MESSAGE(posted.status == 202,
                        posted.status << " " << posted.body);

  BOOST_REQUIRE_MESSAGE(receiver.wait_for(2, 15s), daemon.log());
  for (auto& req : receiver.requests()) {
    auto body = json::parse(req.body, nullptr, false);
    if (req.target == "/webhook") {
      BOOST_TEST(req.signature_valid, req.body);
      BOOST_TEST(body["type"] == "policy.denied", req.body);
    } else {
      BOOST_TEST(req.target == "/discord");
      BOOST_TEST(body["content"] == "**policy.denied** (high)", req.body);
      BOOST_TEST(body["embeds"].size() == 1u, req.body);
    }
  }
  // Both deliveries recorded as delivered.
  auto id = json::parse(posted.body)["ids"][0].get<std::string>();
  BOOST_TEST(eventually([&] {
    auto r = api.request("GET", "/v1/events/" + id, {},
                         {{"authorization", "Bearer " + token}});
    auto e = json::parse(r.body, nullptr, false);
    if (!e.contains("deliveries") || e["deliveries"].size() != 2)
      return false;
    return std::all_of(
        e["deliveries"].begin(), e["deliveries"].end(),
        [](const json& d) { return d.value("state", "") == "delivered"; });
  }));
  BOOST_TEST(daemon.terminate() == 0, daemon.log());
}

BOOST_AUTO_TEST_SUITE_END()
