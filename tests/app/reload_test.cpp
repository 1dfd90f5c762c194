// What a reload of the config file changes against the running
// configuration: the keys that need a restart, and the tokens, rules, level
// and integration secrets that change at once (names only).
#include "app/reload.hpp"

#include "common/encoding.hpp"

#include <boost/test/unit_test.hpp>

using namespace tocsin;
using namespace tocsin::app;

namespace {

config parsed(const std::string& text) {
  auto c = parse_config(text, "test.toml");
  BOOST_TEST_REQUIRE(c.ok(), (c ? "" : c.error().message));
  return *c;
}

std::string token(const std::string& name, const std::string& value,
                  const std::string& role = "ingest") {
  return "[[auth.tokens]]\nname = \"" + name + "\"\nsha256 = \"" +
         hex_encode(sha256(value)) + "\"\nrole = \"" + role + "\"\n";
}

std::string rule(const std::string& name, int threshold) {
  return "[[escalation]]\nname = \"" + name +
         "\"\ntype = \"policy.denied\"\nthreshold = " +
         std::to_string(threshold) + "\nwindow = 60\n";
}

} // namespace

BOOST_AUTO_TEST_SUITE(reload_delta_suite)

BOOST_AUTO_TEST_CASE(keys_that_need_a_restart_are_named) {
  auto running = parsed("[server]\nlisten = \"127.0.0.1:1\"\n");
  BOOST_TEST(restart_keys(running, running).empty());
  auto file = parsed("[server]\nlisten = \"127.0.0.1:2\"\nio_threads = 2\n"
                     "[delivery]\nretry_schedule = [1]\n"
                     "[cluster]\nlease_ttl = 5\n"
                     "[log]\nlevel = \"warn\"\n" +
                     token("t", "x") + rule("r", 3));
  BOOST_TEST(restart_keys(running, file) ==
                 (std::vector<std::string>{"server.listen", "server.io_threads",
                                           "delivery.retry_schedule",
                                           "cluster.lease_ttl"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(what_changes_at_once_is_named_never_shown) {
  auto running =
      parsed(token("kept", "k") + token("old", "o") + token("moved", "m") +
             rule("same", 3) + rule("changed", 3) + rule("gone", 3) +
             "[slack]\nsigning_secret = \"0123456789abcdef-one\"\n");
  auto file = parsed(token("kept", "k") + token("new", "n") +
                     token("moved", "m", "admin") + rule("same", 3) +
                     rule("changed", 4) + rule("added", 2) +
                     "[slack]\nsigning_secret = \"0123456789abcdef-two\"\n"
                     "[pagerduty]\nwebhook_secret = \"0123456789abcdef-pd\"\n"
                     "[log]\nlevel = \"error\"\n");
  auto d = compare_reloadable(running, file);
  using names = std::vector<std::string>;
  BOOST_TEST(d.tokens_added == names{"new"}, boost::test_tools::per_element());
  BOOST_TEST(d.tokens_removed == names{"old"},
             boost::test_tools::per_element());
  BOOST_TEST(d.tokens_changed == names{"moved"},
             boost::test_tools::per_element());
  BOOST_TEST(d.rules_added == names{"added"}, boost::test_tools::per_element());
  BOOST_TEST(d.rules_changed == names{"changed"},
             boost::test_tools::per_element());
  BOOST_TEST(d.rules_removed == names{"gone"},
             boost::test_tools::per_element());
  BOOST_TEST(d.rules_differ());
  BOOST_REQUIRE(d.log_level);
  BOOST_TEST(d.log_level->first == "info");
  BOOST_TEST(d.log_level->second == "error");
  BOOST_TEST(d.integrations_changed ==
                 (names{"slack.signing_secret", "pagerduty.webhook_secret"}),
             boost::test_tools::per_element());
  BOOST_TEST(restart_keys(running, file).empty());

  auto same = compare_reloadable(running, running);
  BOOST_TEST(same.tokens_added.empty());
  BOOST_TEST(same.tokens_removed.empty());
  BOOST_TEST(same.tokens_changed.empty());
  BOOST_TEST(!same.rules_differ());
  BOOST_TEST(!same.log_level);
  BOOST_TEST(same.integrations_changed.empty());
}

BOOST_AUTO_TEST_CASE(a_token_without_a_name_goes_by_its_hash) {
  auto running = parsed("");
  auto file =
      parsed("[[auth.tokens]]\nsha256 = \"" +
             hex_encode(sha256("secret-token")) + "\"\nrole = \"read\"\n");
  auto d = compare_reloadable(running, file);
  BOOST_REQUIRE_EQUAL(d.tokens_added.size(), 1u);
  BOOST_TEST(d.tokens_added[0] ==
             "tok_" + hex_encode(sha256("secret-token")).substr(0, 16));
}

BOOST_AUTO_TEST_SUITE_END()
