#include "app/config.hpp"

#include <boost/test/unit_test.hpp>

#include <unistd.h>

using namespace tocsin;
using namespace tocsin::app;

namespace {

constexpr const char* secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

std::string endpoint(std::string extra) {
  return "[[endpoints]]\nurl = \"https://hooks.example/in\"\nsecret = \"" +
         std::string{secret} + "\"\n" + extra;
}

std::string error_of(const std::string& text) {
  auto c = parse_config(text, "test.toml");
  BOOST_REQUIRE_MESSAGE(!c, "expected an error for: " << text);
  return c.error().message;
}

} // namespace

BOOST_AUTO_TEST_SUITE(config)

BOOST_AUTO_TEST_CASE(empty_file_gives_documented_defaults) {
  auto c = parse_config("", "test.toml");
  BOOST_REQUIRE(c);
  BOOST_TEST(c->server.listen == "127.0.0.1:8650");
  BOOST_TEST(c->server.data_dir == "./data");
  BOOST_TEST(c->server.max_body_bytes == 1048576u);
  BOOST_TEST(c->delivery.retry_schedule ==
             (std::vector<double>{60, 120, 240, 480}));
  BOOST_TEST(c->delivery.jitter == 0.1);
  BOOST_TEST(c->delivery.timeout == 10);
  BOOST_TEST(c->delivery.max_payload_bytes == 4096u);
  BOOST_TEST(c->delivery.concurrency == "adaptive");
  BOOST_TEST(c->delivery.max_in_flight == 256);
  BOOST_TEST(c->delivery.min_in_flight == 1);
  BOOST_TEST(c->delivery.http2);
  BOOST_TEST(c->log_level == "info");
  BOOST_TEST(c->tokens.empty());
  BOOST_TEST(c->endpoints.empty());
}

BOOST_AUTO_TEST_CASE(reads_the_documented_keys) {
  auto c = parse_config(R"(
[server]
listen = "127.0.0.1:0"
data_dir = "/tmp/x"
max_body_bytes = 2048
audit_url_template = "https://audit.example/receipts/{receipt_id}"

[delivery]
retry_schedule = [0.2, 0.4]
jitter = 0
timeout = 5
retention = 3600

[[auth.tokens]]
name = "producer"
sha256 = "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08"
role = "ingest"
)" + endpoint("id = \"ops\"\nevent_types = [\"policy.denied\"]\n"
              "min_severity = \"high\"\nagents = [\"agent-*\"]\ntimeout = 2.5\n"
              "options = {}\n"),
                        "test.toml");
  BOOST_REQUIRE_MESSAGE(c, (c ? "" : c.error().message));
  BOOST_TEST(c->server.listen == "127.0.0.1:0");
  BOOST_TEST(c->delivery.retry_schedule == (std::vector<double>{0.2, 0.4}));
  BOOST_TEST(c->delivery.jitter == 0);
  BOOST_TEST(c->delivery.retention == 3600);
  BOOST_REQUIRE(c->tokens.size() == 1u);
  BOOST_TEST(
      c->tokens[0].sha256 ==
      "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
  BOOST_REQUIRE(c->endpoints.size() == 1u);
  auto& ep = c->endpoints[0].endpoint;
  BOOST_TEST(ep.id == "ops");
  BOOST_TEST(ep.target.host == "hooks.example");
  BOOST_TEST(ep.filter.min_severity == 3);
  BOOST_TEST(ep.retry.schedule == (std::vector<double>{0.2, 0.4}));
  BOOST_TEST(ep.timeout.count() == 2500);
  BOOST_TEST(ep.signing_keys.size() == 1u);
}

BOOST_AUTO_TEST_CASE(public_url_is_an_https_origin_or_path) {
  auto c =
      parse_config("[server]\npublic_url = \"https://tocsin.example/alerts\"\n",
                   "test.toml");
  BOOST_REQUIRE_MESSAGE(c, (c ? "" : c.error().message));
  BOOST_TEST(c->server.public_url == "https://tocsin.example/alerts");
  for (auto bad : {"http://tocsin.example", "tocsin.example",
                   "https://tocsin.example/#x", "https://tocsin.example/?a=1"})
    BOOST_TEST(error_of(std::string{"[server]\npublic_url = \""} + bad + "\"\n")
                       .find("server.public_url") != std::string::npos,
               bad);
}

BOOST_AUTO_TEST_CASE(connection_and_reading_bounds_are_read_and_checked) {
  auto c = parse_config("", "test.toml");
  BOOST_REQUIRE(c);
  BOOST_TEST(c->server.max_connections_per_address == 256u);
  BOOST_TEST(c->server.max_reading_bytes == 64u << 20);
  c = parse_config("[server]\nmax_connections_per_address = 8\n"
                   "max_reading_bytes = 2097152\n",
                   "test.toml");
  BOOST_REQUIRE_MESSAGE(c, (c ? "" : c.error().message));
  BOOST_TEST(c->server.max_connections_per_address == 8u);
  BOOST_TEST(c->server.max_reading_bytes == 2097152u);
  BOOST_TEST(error_of("[server]\nmax_connections_per_address = 0\n")
                 .find("server.max_connections_per_address") !=
             std::string::npos);
  // Less than one body of the largest size: that body could never be read.
  auto why = error_of("[server]\nmax_reading_bytes = 65536\n");
  BOOST_TEST(why.find("server.max_reading_bytes") != std::string::npos, why);
  BOOST_TEST(why.find("max_body_bytes") != std::string::npos, why);
  BOOST_TEST(static_cast<bool>(parse_config("[server]\nmax_body_bytes = 4096\n"
                                            "max_reading_bytes = 65536\n",
                                            "test.toml")));
}

BOOST_AUTO_TEST_CASE(the_in_flight_limit_settings_are_read_and_checked) {
  auto c = parse_config("[delivery]\nconcurrency = \"fixed\"\n"
                        "max_in_flight = 32\nmin_in_flight = 4\n"
                        "http2 = false\n",
                        "test.toml");
  BOOST_REQUIRE(c);
  auto d = endpoint_defaults_of(c->delivery);
  BOOST_TEST((d.concurrency == tocsin::delivery::concurrency_mode::fixed));
  BOOST_TEST(d.max_in_flight == 32);
  BOOST_TEST(d.min_in_flight == 4);
  BOOST_TEST(!d.http2);
  BOOST_TEST(error_of("[delivery]\nconcurrency = \"auto\"\n")
                 .find("delivery.concurrency") != std::string::npos);
  BOOST_TEST(error_of("[delivery]\nmax_in_flight = 8\nmin_in_flight = 9\n")
                 .find("delivery.min_in_flight") != std::string::npos);
  BOOST_TEST(error_of("[delivery]\nmin_in_flight = 0\n")
                 .find("delivery.min_in_flight") != std::string::npos);
  BOOST_TEST(error_of("[delivery]\nhttp2 = \"yes\"\n").find("delivery.http2") !=
             std::string::npos);
}

BOOST_AUTO_TEST_CASE(endpoint_without_id_gets_a_stable_one) {
  auto a = parse_config(endpoint(""), "a");
  auto b = parse_config(endpoint(""), "b");
  BOOST_REQUIRE(a);
  BOOST_REQUIRE(b);
  BOOST_TEST(a->endpoints[0].endpoint.id == b->endpoints[0].endpoint.id);
  BOOST_TEST(a->endpoints[0].endpoint.id.rfind("ep_", 0) == 0);
}

BOOST_AUTO_TEST_CASE(refuses_unknown_keys_and_bad_values_with_the_key_named) {
  BOOST_TEST(
      error_of("[server]\nlisten_on = \"x\"\n").find("server.listen_on") !=
      std::string::npos);
  BOOST_TEST(error_of("bogus = 1\n").find("'bogus'") != std::string::npos);
  BOOST_TEST(error_of("[server]\nmax_body_bytes = \"big\"\n").find("integer") !=
             std::string::npos);
  BOOST_TEST(
      error_of("[delivery]\nretry_schedule = []\n").find("retry_schedule") !=
      std::string::npos);
  BOOST_TEST(error_of("[delivery]\njitter = 2\n").find("delivery.jitter") !=
             std::string::npos);
  BOOST_TEST(
      error_of("[[auth.tokens]]\nname=\"x\"\nsha256=\"abc\"\nrole=\"admin\"\n")
          .find("sha256") != std::string::npos);
  BOOST_TEST(error_of("[[auth.tokens]]\nname=\"x\"\nsha256=\"" +
                      std::string(64, 'a') + "\"\nrole=\"root\"\n")
                 .find("role") != std::string::npos);
  BOOST_TEST(error_of("[server\n").find("test.toml:1") != std::string::npos);
  BOOST_TEST(error_of("[delivery]\nallow_networks = [\"10.0.0.0/40\"]\n")
                 .find("delivery.allow_networks") != std::string::npos);
  BOOST_TEST(
      error_of(endpoint("colour = \"red\"\n")).find("endpoints[0].colour") !=
      std::string::npos);
}

BOOST_AUTO_TEST_CASE(refuses_bad_endpoints) {
  auto insecure = parse_config(
      "[[endpoints]]\nurl = \"http://hooks.example/in\"\nsecret = \"" +
          std::string{secret} + "\"\n",
      "t");
  BOOST_REQUIRE(!insecure);
  BOOST_TEST(insecure.error().code == "insecure_url");
  BOOST_TEST(error_of("[[endpoints]]\nurl = \"not a url\"\nsecret = \"" +
                      std::string{secret} + "\"\n")
                 .find("endpoints[0].url") != std::string::npos);
  BOOST_TEST(error_of(endpoint("event_types = [\"policy.approved\"]\n"))
                 .find("policy.approved") != std::string::npos);
  BOOST_TEST(
      error_of(endpoint("min_severity = \"urgent\"\n")).find("min_severity") !=
      std::string::npos);
  BOOST_TEST(
      error_of("[[endpoints]]\nurl = \"https://x/\"\nsecret = \"nope\"\n")
          .find("secret") != std::string::npos);
  BOOST_TEST(error_of(endpoint("id = \"a\"\n") + endpoint("id = \"a\"\n"))
                 .find("duplicates") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(the_cluster_section_names_the_node_and_the_lease_ttl) {
  auto defaults = parse_config("", "t");
  BOOST_REQUIRE(defaults);
  BOOST_TEST(defaults->cluster.node_id.empty());
  BOOST_TEST(defaults->cluster.lease_ttl == 10);
  auto c =
      parse_config("[cluster]\nnode_id = \"eu-1:8080\"\nlease_ttl = 3\n", "t");
  BOOST_REQUIRE(c);
  BOOST_TEST(c->cluster.node_id == "eu-1:8080");
  BOOST_TEST(c->cluster.lease_ttl == 3);
  for (auto bad :
       {"[cluster]\nnode_id = \"a b\"\n", "[cluster]\nnode_id = \"x/y\"\n",
        "[cluster]\nlease_ttl = 0.5\n", "[cluster]\nlease_ttl = 0\n",
        "[cluster]\nleasettl = 3\n"}) {
    auto r = parse_config(bad, "t");
    BOOST_TEST(!r, bad);
    if (!r)
      BOOST_TEST(r.error().field.rfind("cluster.", 0) == 0, r.error().field);
  }
}

BOOST_AUTO_TEST_CASE(the_node_id_defaults_to_the_host_name_and_the_port) {
  auto named = parse_config("[cluster]\nnode_id = \"eu-1\"\n", "t");
  BOOST_REQUIRE(named);
  BOOST_TEST(node_id_of(*named) == "eu-1");
  auto unnamed = parse_config("[server]\nlisten = \"0.0.0.0:9000\"\n", "t");
  BOOST_REQUIRE(unnamed);
  char host[256] = {};
  BOOST_REQUIRE(::gethostname(host, sizeof host - 1) == 0);
  BOOST_TEST(node_id_of(*unnamed) == std::string{host} + ":9000");
  auto defaults = parse_config("", "t");
  BOOST_REQUIRE(defaults);
  BOOST_TEST(node_id_of(*defaults) == std::string{host} + ":8650");
  // Any free port: not "<host>:0", which every such node on the host would
  // share (and take each other's leases for their own).
  // Its data directory is its own, and the same after a restart.
  auto any_port = parse_config(
      "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"/srv/t1\"\n", "t");
  BOOST_REQUIRE(any_port);
  BOOST_TEST(node_id_of(*any_port) == std::string{host} + ":/srv/t1");
}

BOOST_AUTO_TEST_CASE(the_storage_backend_and_its_url_are_read) {
  auto embedded = parse_config("", "t");
  BOOST_REQUIRE(embedded);
  BOOST_TEST((embedded->storage.backend == storage::backend::rocksdb));
  BOOST_TEST(embedded->storage.postgres_url.empty());
  auto rocks = parse_config("[storage]\nbackend = \"rocksdb\"\n", "t");
  BOOST_REQUIRE(rocks);
  BOOST_TEST((rocks->storage.backend == storage::backend::rocksdb));
  // URLs and key=value strings are kept as written, passwords and all:
  // libpq reads them.
  for (std::string url :
       {"postgresql://tocsin:pw@db.internal/tocsin",
        "postgresql://tocsin@db1:5432,db2:5432/tocsin?"
        "target_session_attrs=read-write",
        "host=db.internal user=tocsin password='a b' dbname=tocsin"}) {
    auto pg = parse_config("[storage]\nbackend = \"postgres\"\n"
                           "postgres_url = \"" +
                               url + "\"\n",
                           "t");
    BOOST_REQUIRE_MESSAGE(pg, url);
    BOOST_TEST((pg->storage.backend == storage::backend::postgres));
    BOOST_TEST(pg->storage.postgres_url == url);
  }
  BOOST_TEST(backend_name(storage::backend::postgres) == "postgres");
  BOOST_TEST(backend_name(storage::backend::rocksdb) == "rocksdb");
}

BOOST_AUTO_TEST_CASE(storage_settings_it_cannot_use_are_refused_by_key) {
  struct refusal {
    std::string toml, field, says;
  };
  std::vector<refusal> refusals{
      {"backend = \"mysql\"\n", "storage.backend",
       "\"rocksdb\" or \"postgres\""},
      {"backend = \"Postgres\"\n", "storage.backend", "not \"Postgres\""},
      {"backend = 1\n", "storage.backend", "must be a string"},
      {"backend = \"postgres\"\n", "storage.postgres_url", "is required"},
      {"backend = \"postgres\"\npostgres_url = \"\"\n", "storage.postgres_url",
       "is required"},
      // Given but not used: refused rather than ignored.
      {"backend = \"rocksdb\"\npostgres_url = \"postgresql://db/t\"\n",
       "storage.postgres_url", "storage.backend is \"rocksdb\""},
      {"postgres_url = \"postgresql://db/t\"\n", "storage.postgres_url",
       "storage.backend is \"rocksdb\""},
      {"backend = \"postgres\"\npostgres_url = "
       "\"postgresql://db/t?colour=red\"\n",
       "storage.postgres_url", "not a PostgreSQL connection string"},
      {"backend = \"postgres\"\npostgres_url = \"host=db dbname\"\n",
       "storage.postgres_url", "not a PostgreSQL connection string"},
      {"backend = \"postgres\"\npostgres_url = \"host=db\\ndbname=t\"\n",
       "storage.postgres_url", "control characters"},
      {"backend = \"postgres\"\npostgres_url = 5\n", "storage.postgres_url",
       "must be a string"},
      {"backend = \"postgres\"\nurl = \"postgresql://db/t\"\n", "storage.url",
       "unknown key"},
  };
  for (auto& r : refusals) {
    auto c = parse_config("[storage]\n" + r.toml, "t");
    BOOST_REQUIRE_MESSAGE(!c, r.toml);
    BOOST_TEST(c.error().field == r.field, r.toml);
    BOOST_TEST(c.error().message.find("'" + r.field + "'") != std::string::npos,
               c.error().message);
    BOOST_TEST(c.error().message.find(r.says) != std::string::npos,
               c.error().message);
  }
  BOOST_TEST(error_of("storage = \"postgres\"\n").find("must be a table") !=
             std::string::npos);
}

BOOST_AUTO_TEST_CASE(refusals_of_a_postgres_url_never_show_its_password) {
  // libpq quotes the whole URL, or the bad part of it, in some of its
  // reasons.
  for (std::string url :
       {"postgresql://tocsin:hunter2-pw@[::1/t",
        "postgresql://tocsin:hunter2-pw@[]/t",
        "postgresql://tocsin:hunter2%zz@db/t",
        "postgresql://tocsin:hunter2-pw@db/t?colour=red",
        "postgresql://tocsin@db/t?password=hunter2-pw&colour=red",
        "host=db password=hunter2-pw colour=red",
        "host=db password=hunter2-pw dbname"}) {
    for (std::string backend : {"postgres", "rocksdb"}) {
      auto c = parse_config("[storage]\nbackend = \"" + backend +
                                "\"\npostgres_url = \"" + url + "\"\n",
                            "t");
      BOOST_REQUIRE_MESSAGE(!c, url);
      BOOST_TEST(c.error().field == "storage.postgres_url");
      BOOST_TEST(c.error().message.find("hunter2") == std::string::npos,
                 c.error().message);
    }
  }
}

BOOST_AUTO_TEST_CASE(integration_secrets_are_read_and_checked) {
  auto c =
      parse_config("[slack]\nsigning_secret = \"8f742231b10e8888abcd\"\n"
                   "[pagerduty]\nwebhook_secret = \"pd-secret-0123456789\"\n",
                   "t");
  BOOST_REQUIRE(c);
  BOOST_TEST(c->slack_signing_secret == "8f742231b10e8888abcd");
  BOOST_TEST(c->pagerduty_webhook_secret == "pd-secret-0123456789");
  BOOST_TEST(parse_config("", "t")->slack_signing_secret.empty());
  for (auto* text :
       {"[slack]\nsigning_secret = \"short\"\n",
        "[slack]\nsigning_secret = 12\n",
        "[slack]\nsecret = \"8f742231b10e8888abcd\"\n",
        "[pagerduty]\nwebhook_secret = \"short\"\n", "slack = 1\n"}) {
    auto bad = parse_config(text, "t");
    BOOST_TEST(!bad, text);
  }
}

BOOST_AUTO_TEST_CASE(slack_response_url_hosts_are_read_and_checked) {
  auto d = parse_config("", "t");
  BOOST_REQUIRE(d);
  BOOST_TEST(d->slack_response_url_hosts ==
             (std::vector<std::string>{"hooks.slack.com"}));
  auto c = parse_config(
      "[slack]\nresponse_url_hosts = [\"Hooks.Slack.com\", \"127.0.0.1\"]\n",
      "t");
  BOOST_REQUIRE_MESSAGE(c, (c ? "" : c.error().message));
  BOOST_TEST(c->slack_response_url_hosts ==
             (std::vector<std::string>{"hooks.slack.com", "127.0.0.1"}));
  for (auto* bad : {"[slack]\nresponse_url_hosts = \"hooks.slack.com\"\n",
                    "[slack]\nresponse_url_hosts = [\"https://x.example\"]\n",
                    "[slack]\nresponse_url_hosts = [\"x.example/path\"]\n",
                    "[slack]\nresponse_url_hosts = [\"x.example:443\"]\n",
                    "[slack]\nresponse_url_hosts = [\"\"]\n"})
    BOOST_TEST(error_of(bad).find("slack.response_url_hosts") !=
                   std::string::npos,
               bad);
}

BOOST_AUTO_TEST_CASE(producer_links_are_off_unless_allowed) {
  BOOST_TEST(!parse_config("", "t")->server.allow_producer_links);
  auto c = parse_config("[server]\nallow_producer_links = true\n", "t");
  BOOST_REQUIRE(c);
  BOOST_TEST(c->server.allow_producer_links);
  BOOST_TEST(error_of("[server]\nallow_producer_links = 1\n")
                 .find("server.allow_producer_links") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(retention_defaults_to_seven_days_and_is_checked) {
  auto c = parse_config("", "t");
  BOOST_REQUIRE(c);
  BOOST_TEST(c->delivery.retention == 604800);
  for (auto* text :
       {"[delivery]\nretention = 0\n", "[delivery]\nretention = -5\n",
        "[delivery]\nretention = \"7d\"\n"}) {
    auto bad = parse_config(text, "t");
    BOOST_REQUIRE_MESSAGE(!bad, text);
    BOOST_TEST(bad.error().field == "delivery.retention", text);
  }
}

BOOST_AUTO_TEST_CASE(log_level_is_read_and_checked) {
  auto c = parse_config("[log]\nlevel = \"warn\"\n", "t");
  BOOST_REQUIRE(c);
  BOOST_TEST(c->log_level == "warn");
  BOOST_TEST(error_of("[log]\nlevel = \"loud\"\n").find("log.level") !=
             std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_slack_endpoint_needs_no_secret) {
  // The first Slack endpoint a newcomer writes: no secret, since Slack
  // requests are not signed. (A webhook without one is refused once the
  // plugins are loaded: see endpoints/definition_test.)
  auto c = parse_config("[[endpoints]]\nurl = \"https://hooks.slack.com/"
                        "services/T0/B0/x\"\ntransport = \"slack\"\n",
                        "t");
  BOOST_REQUIRE_MESSAGE(c, (c ? "" : c.error().message));
  BOOST_TEST(c->endpoints[0].definition.secret.empty());
  BOOST_TEST(c->endpoints[0].endpoint.signing_keys.empty());
}

BOOST_AUTO_TEST_CASE(reads_escalation_rules) {
  auto c = parse_config(R"(
[[escalation]]
name = "repeated-denials"
type = "policy.denied"
threshold = 5
window = 600
group_by = "agent_id"
severity = "critical"
suppress_for = 900
summary = "{agent_id}: {count} policy denials in {window}s"

[[escalation]]
name = "session.bursts_2"
event_types = ["content.detected", "anomaly.detected"]
threshold = 2
window = 0.25
group_by = "details.session"
)",
                        "t");
  BOOST_REQUIRE_MESSAGE(c, (c ? "" : c.error().message));
  BOOST_REQUIRE(c->escalation.size() == 2u);
  auto& a = c->escalation[0];
  BOOST_TEST(a.name == "repeated-denials");
  BOOST_TEST(a.event_types == (std::vector<std::string>{"policy.denied"}));
  BOOST_TEST(a.threshold == 5);
  BOOST_TEST(a.window == 600000);
  BOOST_TEST(a.group_by == "agent_id");
  BOOST_TEST(a.severity == "critical");
  BOOST_TEST(a.suppress_for == 900000);
  BOOST_TEST(a.summary == "{agent_id}: {count} policy denials in {window}s");
  auto& b = c->escalation[1];
  BOOST_TEST(b.event_types == (std::vector<std::string>{"content.detected",
                                                        "anomaly.detected"}));
  BOOST_TEST(b.window == 250);
  BOOST_TEST(b.suppress_for == 250); // the window
  BOOST_TEST(b.group_by == "details.session");
  BOOST_TEST(b.severity == "critical");
  BOOST_TEST(b.summary.empty()); // the engine's default
  BOOST_TEST(parse_config("", "t")->escalation.empty());
}

BOOST_AUTO_TEST_CASE(refuses_bad_escalation_rules_with_the_field_named) {
  auto rule = [](std::string extra, std::string name = "r") {
    return "[[escalation]]\nname = \"" + name +
           "\"\nthreshold = 5\nwindow = 60\n" + extra;
  };
  const std::string denied = "type = \"policy.denied\"\n";
  for (auto [text, field] :
       std::initializer_list<std::pair<std::string, std::string>>{
           {rule(denied + "colour = \"red\"\n"), "escalation[0].colour"},
           {"[[escalation]]\nname = \"r\"\ntype = \"policy.denied\"\n"
            "threshold = 1\nwindow = 60\n",
            "escalation[0].threshold"},
           {"[[escalation]]\nname = \"r\"\ntype = \"policy.denied\"\n"
            "threshold = 2.5\nwindow = 60\n",
            "escalation[0].threshold"},
           {"[[escalation]]\nname = \"r\"\ntype = \"policy.denied\"\n"
            "threshold = 5\nwindow = 0\n",
            "escalation[0].window"},
           {"[[escalation]]\nname = \"r\"\ntype = \"policy.denied\"\n"
            "threshold = 5\nwindow = -1\n",
            "escalation[0].window"},
           {"[[escalation]]\nname = \"r\"\ntype = \"policy.denied\"\n"
            "threshold = 5\n",
            "escalation[0].window"},
           {rule("type = \"policy.approved\"\n"), "escalation[0].type"},
           {rule("event_types = [\"policy.denied\", \"nope\"]\n"),
            "escalation[0].event_types"},
           {rule("event_types = []\n"), "escalation[0].event_types"},
           {rule(denied + "event_types = [\"policy.denied\"]\n"),
            "escalation[0].event_types"},
           {rule(""), "escalation[0].type"},
           {rule(denied + "group_by = \"agent\"\n"), "escalation[0].group_by"},
           {rule(denied + "group_by = \"details.\"\n"),
            "escalation[0].group_by"},
           {rule(denied + "severity = \"urgent\"\n"), "escalation[0].severity"},
           {rule(denied + "suppress_for = -5\n"), "escalation[0].suppress_for"},
           {rule(denied + "summary = \"{agent} did it\"\n"),
            "escalation[0].summary"},
           {rule(denied, ""), "escalation[0].name"},
           {rule(denied, "has space"), "escalation[0].name"},
           {rule(denied, std::string(65, 'x')), "escalation[0].name"},
           {rule(denied) + rule(denied), "escalation[1].name"},
           {"[delivery]\nretention = 30\n" + rule(denied),
            "escalation[0].window"},
           {"[escalation]\nname = \"r\"\n", "escalation"}}) {
    auto c = parse_config(text, "t");
    BOOST_REQUIRE_MESSAGE(!c, text);
    BOOST_TEST(c.error().field == field, text << " -> " << c.error().message);
    BOOST_TEST(c.error().message.find("'" + field + "'") != std::string::npos,
               c.error().message);
    BOOST_TEST(c.error().message.find('\n') == std::string::npos);
  }
}

BOOST_AUTO_TEST_CASE(unreadable_file_is_reported) {
  auto c = load_config("/nonexistent/tocsin.toml");
  BOOST_REQUIRE(!c);
  BOOST_TEST(c.error().code == "config_unreadable");
}

BOOST_AUTO_TEST_SUITE_END()
