// SIGHUP: the daemon reads its config file again and applies it all at once
// (endpoints, tokens, log level, escalation rules, secrets), or refuses it
// whole and keeps running as it was. Each case waits on the daemon's log
// line for the reload, never on time.
#include "tests/e2e/answering.hpp"
#include "tests/e2e/fixture.hpp"

#include <boost/test/unit_test.hpp>

#include <csignal>
#include <string>

using namespace tocsin::test;

namespace {

const std::string admin_token = "tsn_reload_admin_token_0123456789";
const std::string old_token = "tsn_reload_old_token_0123456789ab";
const std::string new_token = "tsn_reload_new_token_0123456789ab";
const std::string secret_before = "reload-slack-secret-before";
const std::string secret_after = "reload-slack-secret-after!";

std::string slack_with(const std::string& secret) {
  return "[slack]\nsigning_secret = \"" + secret + "\"\n";
}

/// A click about an event tocsin does not have, signed with `secret`: 200
/// when the secret is the daemon's (Slack gets its answer before the
/// click is looked at), 401 otherwise.
int click_status(daemon_fixture& f, const std::string& secret) {
  auto body = click_body("evt_01J00000000000000000000000",
                         "https://hooks.slack.com/actions/T1/2/abc");
  auto ts = unix_seconds();
  return post_slack(f, body, ts, slack_signature(secret, ts, body)).status;
}

int post_status(daemon_fixture& f, const std::string& token,
                const std::string& agent = "agent-7") {
  return f.post("/v1/events", sample_event(agent).dump(), token).status;
}

/// The endpoints the deliveries of event `id` went to, in id order.
std::string delivered_to(daemon_fixture& f, const std::string& id) {
  std::string out;
  auto ev = f.event(id);
  for (auto& d : ev["deliveries"])
    out += (out.empty() ? "" : " ") + d["endpoint_id"].get<std::string>();
  return out;
}

const std::string reloaded = "\"msg\":\"config reloaded\"";
const std::string refused = "\"msg\":\"config reload refused";

} // namespace

BOOST_AUTO_TEST_SUITE(reload)

BOOST_AUTO_TEST_CASE(sighup_applies_endpoints_tokens_rules_level_and_secrets) {
  daemon_fixture f;
  auto a = f.make_receiver();
  auto b = f.make_receiver();
  f.use_admin_token(admin_token);
  auto tokens_before = token_toml("admin", admin_token, "admin") +
                       token_toml("old", old_token, "ingest");
  f.start({{"a", daemon_fixture::url_of(*a)}}, {},
          tokens_before + slack_with(secret_before));
  auto first = f.post_events(sample_event());
  BOOST_REQUIRE(a->wait_for(1, wait_time));
  BOOST_TEST(post_status(f, old_token) == 202);
  BOOST_TEST(post_status(f, new_token) == 401);
  BOOST_TEST(click_status(f, secret_before) == 200);
  BOOST_TEST(click_status(f, secret_after) == 401);
  BOOST_REQUIRE(a->wait_for(2, wait_time));

  // Endpoint a goes, b comes; token old goes, new comes; the log gets
  // quieter; a rule fires on two denials of one agent; another Slack
  // secret; and a key that needs a restart.
  f.set_delivery_extra("queue_window = 500\n");
  f.write_config({{"b", daemon_fixture::url_of(*b)}}, {},
                 token_toml("admin", admin_token, "admin") +
                     token_toml("new", new_token, "ingest") +
                     slack_with(secret_after) + "[log]\nlevel = \"warn\"\n" +
                     "[[escalation]]\nname = \"twice\"\n"
                     "type = \"policy.denied\"\nthreshold = 2\nwindow = 60\n");
  f.process().signal(SIGHUP);
  BOOST_REQUIRE_MESSAGE(f.process().wait_log(reloaded), f.process().log());
  auto log = f.process().log();
  auto line = log.substr(log.find(reloaded));
  line = line.substr(0, line.find('\n'));
  for (auto part :
       {"\"endpoints_created\":\"1\"", "\"endpoints_removed\":\"1\"",
        "\"tokens_added\":\"new\"", "\"tokens_removed\":\"old\"",
        "\"log_level\":\"info -> warn\"",
        "\"escalation_rules_added\":\"twice\"",
        "\"changed\":\"slack.signing_secret\""})
    BOOST_TEST(contains(line, part), part << " in " << line);
  BOOST_TEST(contains(log, "\"keys\":\"delivery.queue_window\""), log);
  // Names only: never a token or a secret.
  for (auto& secret : {new_token, old_token, secret_after, secret_before})
    BOOST_TEST(!contains(log, secret));
  BOOST_TEST(!contains(log, "\"config reload refused"));

  // b takes the events from now on, a none; the two denials of agent-r
  // raise an escalation, delivered to b as well.
  auto one = f.post_events(sample_event("agent-r"));
  auto two = f.post_events(sample_event("agent-r"));
  BOOST_REQUIRE(b->wait_for(3, wait_time));
  BOOST_TEST(delivered_to(f, one[0]) == "b");
  BOOST_TEST(delivered_to(f, two[0]) == "b");
  std::size_t escalations = 0;
  for (auto& r : b->requests()) {
    auto body = nlohmann::json::parse(r.body);
    if (body["details"].contains("escalation")) {
      ++escalations;
      BOOST_TEST(body["details"]["escalation"]["rule"] == "twice");
    }
  }
  BOOST_TEST(escalations == 1u);
  BOOST_TEST(a->count() == 2u);

  // The new token works, the old one is refused; the new Slack secret
  // signs, the old one no longer does.
  BOOST_TEST(post_status(f, new_token, "agent-9") == 202);
  BOOST_TEST(post_status(f, old_token, "agent-9") == 401);
  BOOST_TEST(click_status(f, secret_after) == 200);
  BOOST_TEST(click_status(f, secret_before) == 401);

  // Level warn: an endpoint created with the API logs nothing (info); its
  // deletion does (warn).
  auto made = create_endpoint(
      f, {{"url", daemon_fixture::url_of(*a)}, {"secret", test_secret}});
  auto id = made["id"].get<std::string>();
  BOOST_TEST(f.call("DELETE", "/v1/endpoints/" + id).status == 204);
  BOOST_REQUIRE(f.process().wait_log("\"endpoint\":\"" + id + "\""));
  log = f.process().log();
  BOOST_TEST(!contains(log, "\"msg\":\"endpoint created\",\"endpoint\":\"" +
                                id + "\""));
  BOOST_TEST(contains(log, "\"level\":\"warn\",\"msg\":\"endpoint deleted"));
}

BOOST_AUTO_TEST_CASE(a_file_that_would_be_refused_at_start_changes_nothing) {
  daemon_fixture f;
  auto a = f.make_receiver();
  auto b = f.make_receiver();
  f.use_admin_token(admin_token);
  auto tokens_before = token_toml("admin", admin_token, "admin") +
                       token_toml("old", old_token, "ingest");
  f.start({{"a", daemon_fixture::url_of(*a)}}, {}, tokens_before);
  auto tokens_after = token_toml("admin", admin_token, "admin") +
                      token_toml("new", new_token, "ingest");

  // An unknown key, among changes that alone would be taken.
  f.write_config({{"b", daemon_fixture::url_of(*b)}}, {},
                 tokens_after + "[log]\nlevel = \"warn\"\nverbose = true\n");
  f.process().signal(SIGHUP);
  BOOST_REQUIRE_MESSAGE(f.process().wait_log(refused), f.process().log());
  BOOST_TEST(contains(f.process().log(), "unknown key 'log.verbose'"),
             f.process().log());

  // An endpoint its transport refuses (PagerDuty without a routing key).
  endpoint_spec pagerduty{"pd", daemon_fixture::url_of(*b)};
  pagerduty.extra = "transport = \"pagerduty\"\n";
  pagerduty.with_secret = false;
  f.write_config({{"b", daemon_fixture::url_of(*b)}, pagerduty}, {},
                 tokens_after);
  f.process().signal(SIGHUP);
  BOOST_REQUIRE_MESSAGE(f.process().wait_log(refused, 2), f.process().log());
  auto log = f.process().log();
  BOOST_TEST(contains(log, "endpoint pd: pagerduty: routing_key is required"),
             log);
  BOOST_TEST(!contains(log, reloaded));

  // Everything as it was: a takes the events, b none; the old token works,
  // the new one is refused; the level is still info.
  auto ids = f.post_events(sample_event());
  BOOST_REQUIRE(a->wait_for(1, wait_time));
  BOOST_TEST(delivered_to(f, ids[0]) == "a");
  BOOST_TEST(post_status(f, old_token) == 202);
  BOOST_TEST(post_status(f, new_token) == 401);
  BOOST_REQUIRE(a->wait_for(2, wait_time));
  BOOST_TEST(b->count() == 0u);
  auto made = create_endpoint(
      f, {{"url", daemon_fixture::url_of(*a)}, {"secret", test_secret}});
  BOOST_TEST(contains(f.process().log(),
                      "\"msg\":\"endpoint created\",\"endpoint\":\"" +
                          made["id"].get<std::string>() + "\""));
}

BOOST_AUTO_TEST_SUITE_END()
