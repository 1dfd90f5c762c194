// Endpoint definitions: one test per validation rule, secrets, rotation, the
// stored form and what an endpoint actor is given.
#include "endpoints/definition.hpp"

#include "common/encoding.hpp"
#include "delivery/signing.hpp"

#include <boost/test/unit_test.hpp>

using namespace tocsin;
using endpoints::ordered_json;

namespace {

constexpr const char* secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

ordered_json base() {
  return ordered_json{{"url", "https://hooks.example/in"}};
}

ordered_json with(std::string key, ordered_json value) {
  auto b = base();
  b[key] = std::move(value);
  return b;
}

/// The shipped transports, loaded from the build like the daemon does.
const plugins::loaded_plugins& shipped_transports() {
  static auto set = plugins::load_plugins(TOCSIN_PLUGINS_OUTPUT_DIR);
  BOOST_TEST_REQUIRE(set.ok());
  return *set;
}

endpoints::endpoint_rules rules() {
  return endpoints::endpoint_rules{&shipped_transports()};
}

/// The error of creating `body`; fails the test if it was accepted.
error refusal(const ordered_json& body) {
  auto r = endpoints::create_endpoint(body, rules(), 1000);
  BOOST_REQUIRE_MESSAGE(!r, "accepted: " + body.dump());
  return r.error();
}

void check_refused(const ordered_json& body, const std::string& code,
                   const std::string& field) {
  auto e = refusal(body);
  BOOST_TEST(e.code == code, body.dump() << " -> " << e.code);
  BOOST_TEST(e.field == field, body.dump() << " -> " << e.field);
  BOOST_TEST(!e.message.empty());
}

} // namespace

BOOST_AUTO_TEST_SUITE(endpoint_definition)

BOOST_AUTO_TEST_CASE(a_secret_belongs_only_to_transports_that_sign) {
  // Through the API: a webhook gets one, a Slack endpoint none.
  auto hook = endpoints::create_endpoint(base(), rules(), 1000);
  BOOST_REQUIRE(hook);
  BOOST_TEST(hook->secret.rfind("whsec_", 0) == 0);
  auto slack =
      endpoints::create_endpoint(with("transport", "slack"), rules(), 1000);
  BOOST_REQUIRE(slack);
  BOOST_TEST(slack->secret.empty());
  BOOST_TEST(
      endpoints::to_api_json(*slack, true, nullptr)["signature"].is_null());
  auto runtime = endpoints::runtime_config(*slack, {}, &shipped_transports());
  BOOST_REQUIRE(runtime);
  BOOST_TEST(runtime->signing_keys.empty());
  // From the config file (no secret generated): a webhook without one is
  // refused once the transports are known, naming the field.
  endpoints::endpoint_rules config_rules;
  config_rules.generate_secret = false;
  auto declared = endpoints::create_endpoint(base(), config_rules, 0);
  BOOST_REQUIRE(declared);
  BOOST_TEST(declared->secret.empty());
  auto st = endpoints::check_transport(*declared, shipped_transports());
  BOOST_REQUIRE(!st);
  BOOST_TEST(st.error().field == "secret");
  BOOST_TEST(st.error().message.find("signs its requests") !=
             std::string::npos);
  auto slack_declared =
      endpoints::create_endpoint(with("transport", "slack"), config_rules, 0);
  BOOST_REQUIRE(slack_declared);
  BOOST_TEST(
      endpoints::check_transport(*slack_declared, shipped_transports()).ok());
}

BOOST_AUTO_TEST_CASE(a_minimal_endpoint_gets_defaults_an_id_and_a_secret) {
  auto e = endpoints::create_endpoint(base(), {}, 1000);
  BOOST_REQUIRE(e);
  BOOST_TEST(e->id.rfind("ep_", 0) == 0);
  BOOST_TEST(e->transport == "webhook");
  BOOST_TEST((e->event_types == std::vector<std::string>{"*"}));
  BOOST_TEST(e->min_severity == "info");
  BOOST_TEST(e->enabled);
  BOOST_TEST(e->signature() == "hmac-sha256");
  auto key = delivery::decode_webhook_secret(e->secret);
  BOOST_REQUIRE(key);
  BOOST_TEST(key->size() == 32u);
  BOOST_TEST(e->created_at == 1000);
  BOOST_TEST(e->revision == 1);
  auto other = endpoints::create_endpoint(base(), {}, 1000);
  BOOST_TEST(other->secret != e->secret); // from a CSPRNG, not a constant
  BOOST_TEST(other->id != e->id);
}

BOOST_AUTO_TEST_CASE(every_field_is_taken) {
  auto e = endpoints::create_endpoint(
      ordered_json{{"id", "ops-1"},
                   {"url", "https://hooks.example/in?x=1"},
                   {"transport", "webhook"},
                   {"event_types", {"policy.denied", "anomaly.detected"}},
                   {"min_severity", "high"},
                   {"agents", {"agent-*", "ops-[0-9]"}},
                   {"enabled", false},
                   {"description", "ops channel"},
                   {"secret", secret},
                   {"max_in_flight", 4},
                   {"timeout", 2.5},
                   {"retry_schedule", {0.5, 1}},
                   {"options", ordered_json::object()}},
      {}, 5);
  BOOST_REQUIRE(e);
  BOOST_TEST(e->id == "ops-1");
  BOOST_TEST(e->secret == secret);
  BOOST_TEST(!e->enabled);
  auto c = endpoints::runtime_config(*e, endpoints::endpoint_defaults{});
  BOOST_REQUIRE(c);
  BOOST_TEST(c->target.host == "hooks.example");
  BOOST_TEST(c->filter.min_severity == 3);
  BOOST_TEST(c->filter.agents.size() == 2u);
  BOOST_TEST(c->max_in_flight == 4);
  BOOST_TEST(c->timeout.count() == 2500);
  BOOST_TEST((c->retry.schedule == std::vector<double>{0.5, 1}));
  BOOST_TEST(!c->enabled);
  BOOST_REQUIRE(c->signing_keys.size() == 1u);
  BOOST_TEST(c->signing_keys[0].expires_at == 0);
}

BOOST_AUTO_TEST_CASE(overrides_fall_back_to_the_delivery_defaults) {
  auto e = endpoints::create_endpoint(base(), {}, 5);
  endpoints::endpoint_defaults d;
  d.retry_schedule = {0.1};
  d.timeout = 3;
  d.max_in_flight = 7;
  auto c = endpoints::runtime_config(*e, d);
  BOOST_REQUIRE(c);
  BOOST_TEST((c->retry.schedule == std::vector<double>{0.1}));
  BOOST_TEST(c->timeout.count() == 3000);
  BOOST_TEST(c->max_in_flight == 7);
  BOOST_TEST((c->concurrency == delivery::concurrency_mode::adaptive));
  BOOST_TEST(c->http2);
}

BOOST_AUTO_TEST_CASE(an_endpoint_may_set_its_own_concurrency_and_http2) {
  auto j = base();
  j["concurrency"] = "fixed";
  j["min_in_flight"] = 2;
  j["max_in_flight"] = 9;
  j["http2"] = false;
  auto e = endpoints::create_endpoint(j, {}, 5);
  BOOST_REQUIRE(e);
  auto c = endpoints::runtime_config(*e, endpoints::endpoint_defaults{});
  BOOST_REQUIRE(c);
  BOOST_TEST((c->concurrency == delivery::concurrency_mode::fixed));
  BOOST_TEST(c->min_in_flight == 2);
  BOOST_TEST(c->max_in_flight == 9);
  BOOST_TEST(!c->http2);
  // Stored and read back the same; null puts the default back.
  auto again = endpoints::from_stored_json(endpoints::to_stored_json(*e));
  BOOST_REQUIRE(again);
  BOOST_TEST(again->concurrency.value_or("") == "fixed");
  BOOST_TEST(again->min_in_flight.value_or(0) == 2);
  BOOST_TEST(again->http2.value_or(true) == false);
  auto patched = endpoints::patch_endpoint(
      *e, ordered_json{{"http2", nullptr}, {"concurrency", nullptr}}, {}, 6);
  BOOST_REQUIRE(patched);
  BOOST_TEST(!patched->http2.has_value());
  BOOST_TEST(!patched->concurrency.has_value());
}

BOOST_AUTO_TEST_CASE(http_url_is_insecure_url) {
  check_refused(with("url", "http://hooks.example/in"), "insecure_url", "url");
}

BOOST_AUTO_TEST_CASE(unparsable_url_is_invalid_url) {
  check_refused(with("url", "not a url"), "invalid_url", "url");
  check_refused(with("url", "https://"), "invalid_url", "url");
  check_refused(with("url", "https://user:pw@hooks.example/"), "invalid_url",
                "url");
  check_refused(with("url", "ftp://hooks.example/"), "invalid_url", "url");
}

BOOST_AUTO_TEST_CASE(missing_url_is_missing_field) {
  check_refused(ordered_json::object(), "missing_field", "url");
}

BOOST_AUTO_TEST_CASE(unknown_transport) {
  check_refused(with("transport", "carrier-pigeon"), "unknown_transport",
                "transport");
  auto e = refusal(with("transport", "carrier-pigeon"));
  BOOST_TEST(e.message.find("webhook") != std::string::npos); // says what is
  // Without the plugins (reading the config file) any name passes; it is
  // checked once they are loaded.
  BOOST_TEST(
      endpoints::create_endpoint(with("transport", "carrier-pigeon"), {}, 1)
          .ok());
}

BOOST_AUTO_TEST_CASE(options_are_checked_by_the_transport) {
  check_refused(with("options", {{"routing_key", "x"}}), "invalid_options",
                "options"); // the webhook transport takes none
  auto pd = with("transport", "pagerduty");
  pd["options"] = {{"routing_key", "too-short"}};
  check_refused(pd, "invalid_options", "options");
  pd["options"] = {{"routing_key", std::string(32, 'a')}};
  BOOST_TEST(endpoints::create_endpoint(pd, rules(), 1).ok());
  auto c = endpoints::runtime_config(
      *endpoints::create_endpoint(pd, rules(), 1), {}, &shipped_transports());
  BOOST_REQUIRE(c);
  BOOST_REQUIRE(c->plugin);
  BOOST_TEST(c->plugin->plugin().name() == "pagerduty");
  BOOST_TEST(c->options_json.find("routing_key") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(unknown_event_type) {
  check_refused(with("event_types", {"policy.approved"}), "unknown_event_type",
                "event_types");
  check_refused(with("event_types", ordered_json::array()), "invalid_field",
                "event_types");
}

BOOST_AUTO_TEST_CASE(bad_severity) {
  check_refused(with("min_severity", "urgent"), "invalid_severity",
                "min_severity");
}

BOOST_AUTO_TEST_CASE(bad_glob) {
  check_refused(with("agents", {"agent-[0-9"}), "invalid_glob", "agents");
  check_refused(with("agents", {""}), "invalid_glob", "agents");
  check_refused(with("agents", {"agent\\"}), "invalid_glob", "agents");
  BOOST_TEST(endpoints::is_valid_glob("agent-[]x]"));
  BOOST_TEST(endpoints::is_valid_glob("a\\[b"));
  BOOST_TEST(endpoints::is_valid_glob("*"));
}

BOOST_AUTO_TEST_CASE(unknown_top_level_field) {
  check_refused(with("colour", "red"), "unknown_field", "colour");
}

BOOST_AUTO_TEST_CASE(wrong_types_name_the_field) {
  check_refused(with("url", 42), "invalid_field", "url");
  check_refused(with("event_types", "policy.denied"), "invalid_field",
                "event_types");
  check_refused(with("agents", {1, 2}), "invalid_field", "agents");
  check_refused(with("enabled", "yes"), "invalid_field", "enabled");
  check_refused(with("max_in_flight", 0), "invalid_field", "max_in_flight");
  check_refused(with("max_in_flight", 1.5), "invalid_field", "max_in_flight");
  check_refused(with("min_in_flight", 0), "invalid_field", "min_in_flight");
  check_refused(with("concurrency", "auto"), "invalid_field", "concurrency");
  check_refused(with("http2", "yes"), "invalid_field", "http2");
  check_refused(with("timeout", 0), "invalid_field", "timeout");
  check_refused(with("retry_schedule", {-1}), "invalid_field",
                "retry_schedule");
  check_refused(with("options", "x"), "invalid_field", "options");
  check_refused(with("id", "has space"), "invalid_field", "id");
  check_refused(with("description", std::string(2000, 'd')), "invalid_field",
                "description");
  check_refused(ordered_json::array(), "invalid_field", "");
}

BOOST_AUTO_TEST_CASE(bad_secrets_are_refused) {
  check_refused(with("secret", "nope"), "invalid_secret", "secret");
  check_refused(with("secret", "whsec_c2hvcnQ="), "invalid_secret", "secret");
  auto b = with("secret", secret);
  b["signature"] = "ed25519";
  check_refused(b, "invalid_field", "signature");
  check_refused(with("signature", "rsa"), "invalid_field", "signature");
}

BOOST_AUTO_TEST_CASE(flow_control_settings) {
  auto slack = with("transport", "slack");
  auto e = endpoints::create_endpoint(slack, rules(), 1);
  BOOST_TEST_REQUIRE(e.ok());
  auto c = endpoints::runtime_config(*e, {}, &shipped_transports());
  BOOST_TEST_REQUIRE(c.ok());
  BOOST_TEST(c->rate.per_second == 1.0); // Slack's own suggestion
  BOOST_TEST(c->rate.burst == 3);
  BOOST_TEST(c->breaker.failures == 5);
  BOOST_TEST(!c->ordered);

  slack["rate_limit"] = {{"per_second", 0.5}, {"burst", 1}};
  slack["circuit_breaker"] = {{"failures", 2}, {"cooldown", 0.25}};
  slack["ordered"] = true;
  auto o = endpoints::create_endpoint(slack, rules(), 1);
  BOOST_TEST_REQUIRE(o.ok());
  auto oc = endpoints::runtime_config(*o, {}, &shipped_transports());
  BOOST_TEST(oc->rate.per_second == 0.5);
  BOOST_TEST(oc->rate.burst == 1);
  BOOST_TEST(oc->breaker.failures == 2);
  BOOST_TEST(oc->breaker.cooldown == 250);
  BOOST_TEST(oc->ordered);
  auto back = endpoints::from_stored_json(endpoints::to_stored_json(*o));
  BOOST_TEST_REQUIRE(back.ok());
  BOOST_TEST(endpoints::same_settings(*back, *o));

  check_refused(with("rate_limit", 1), "invalid_field", "rate_limit");
  check_refused(with("rate_limit", {{"per_second", 0}}), "invalid_field",
                "rate_limit.per_second");
  check_refused(with("rate_limit", {{"burst", 2}}), "missing_field",
                "rate_limit.per_second");
  check_refused(with("rate_limit", {{"per_second", 1}, {"burst", 0}}),
                "invalid_field", "rate_limit.burst");
  check_refused(with("rate_limit", {{"per_second", 1}, {"rps", 1}}),
                "unknown_field", "rate_limit.rps");
  check_refused(with("circuit_breaker", {{"failures", -1}}), "invalid_field",
                "circuit_breaker.failures");
  check_refused(with("circuit_breaker", {{"cooldown", 0}}), "invalid_field",
                "circuit_breaker.cooldown");
  check_refused(with("ordered", "yes"), "invalid_field", "ordered");
}

BOOST_AUTO_TEST_CASE(ed25519_endpoints_get_a_keypair) {
  auto e = endpoints::create_endpoint(with("signature", "ed25519"), {}, 5);
  BOOST_REQUIRE(e);
  BOOST_TEST(e->secret.rfind("whsk_", 0) == 0);
  BOOST_TEST(e->signature() == "ed25519");
  auto shown = endpoints::to_api_json(*e, false, nullptr);
  BOOST_TEST(!shown.contains("secret"));
  BOOST_REQUIRE(shown.contains("public_key"));
  BOOST_TEST(shown["public_key"] == *delivery::ed25519_public_key(e->secret));
  auto c = endpoints::runtime_config(*e, {});
  BOOST_REQUIRE(c);
  BOOST_TEST(
      (c->signing_keys[0].key.kind == delivery::signing_key::scheme::ed25519));
}

BOOST_AUTO_TEST_CASE(the_secret_is_shown_only_when_asked) {
  auto e = endpoints::create_endpoint(base(), {}, 5);
  BOOST_TEST(!endpoints::to_api_json(*e, false, nullptr).contains("secret"));
  BOOST_TEST(endpoints::to_api_json(*e, true, nullptr)["secret"] == e->secret);
  BOOST_TEST(
      endpoints::to_api_json(*e, false, nullptr).dump().find(e->secret) ==
      std::string::npos);
}

BOOST_AUTO_TEST_CASE(patch_changes_only_what_it_names) {
  auto e = endpoints::create_endpoint(with("min_severity", "high"), {}, 5);
  auto p =
      endpoints::patch_endpoint(*e, ordered_json{{"enabled", false}}, {}, 9);
  BOOST_REQUIRE(p);
  BOOST_TEST(!p->enabled);
  BOOST_TEST(p->min_severity == "high");
  BOOST_TEST(p->secret == e->secret);
  BOOST_TEST(p->revision == 2);
  BOOST_TEST(p->updated_at == 9);
  BOOST_TEST(p->created_at == 5);
  auto reset = endpoints::patch_endpoint(
      *endpoints::patch_endpoint(*e, ordered_json{{"timeout", 3}}, {}, 9),
      ordered_json{{"timeout", nullptr}}, {}, 10);
  BOOST_REQUIRE(reset);
  BOOST_TEST(!reset->timeout);
}

BOOST_AUTO_TEST_CASE(patch_refuses_what_cannot_change) {
  auto e = endpoints::create_endpoint(base(), {}, 5);
  for (auto key : {"id", "created_at", "revision", "source", "signature"}) {
    auto p = endpoints::patch_endpoint(*e, ordered_json{{key, "x"}}, {}, 9);
    BOOST_REQUIRE(!p);
    BOOST_TEST(p.error().code == "read_only_field");
    BOOST_TEST(p.error().field == key);
  }
  auto s =
      endpoints::patch_endpoint(*e, ordered_json{{"secret", secret}}, {}, 9);
  BOOST_REQUIRE(!s);
  BOOST_TEST(s.error().message.find("rotate-secret") != std::string::npos);
  auto u = endpoints::patch_endpoint(
      *e, ordered_json{{"url", "http://x.example/"}}, {}, 9);
  BOOST_REQUIRE(!u);
  BOOST_TEST(u.error().code == "insecure_url");
}

BOOST_AUTO_TEST_CASE(rotation_keeps_the_old_secret_for_the_grace_period) {
  auto e = endpoints::create_endpoint(base(), {}, 5);
  auto r = endpoints::rotate_endpoint_secret(*e, std::nullopt, 1000, 100);
  BOOST_REQUIRE(r);
  BOOST_TEST(r->secret != e->secret);
  BOOST_TEST(r->secret.rfind("whsec_", 0) == 0);
  BOOST_REQUIRE(r->retired.size() == 1u);
  BOOST_TEST(r->retired[0].secret == e->secret);
  BOOST_TEST(r->retired[0].expires_at == 1100);
  BOOST_TEST(r->revision == 2);
  auto c = endpoints::runtime_config(*r, {});
  BOOST_REQUIRE(c);
  BOOST_REQUIRE(c->signing_keys.size() == 2u);
  BOOST_TEST(c->signing_keys[0].expires_at == 0);
  BOOST_TEST(c->signing_keys[1].expires_at == 1100);
  BOOST_TEST(c->signing_keys[1].key.key ==
             *delivery::decode_webhook_secret(e->secret));

  // Expired secrets are dropped at the next rotation; at most 4 are kept.
  auto later = endpoints::rotate_endpoint_secret(*r, std::nullopt, 1000, 5000);
  BOOST_REQUIRE(later);
  BOOST_TEST(later->retired.size() == 1u);
  auto many = *later;
  for (int i = 0; i < 10; ++i)
    many = *endpoints::rotate_endpoint_secret(many, std::nullopt, 100000,
                                              6000 + i);
  BOOST_TEST(many.retired.size() == 4u);

  auto none = endpoints::rotate_endpoint_secret(*e, std::nullopt, 0, 100);
  BOOST_TEST(none->retired.empty()); // grace 0: the old one stops at once
}

BOOST_AUTO_TEST_CASE(rotation_to_a_given_secret_is_checked) {
  auto e = endpoints::create_endpoint(base(), {}, 5);
  BOOST_TEST(!endpoints::rotate_endpoint_secret(*e, "nope", 1000, 100));
  BOOST_TEST(!endpoints::rotate_endpoint_secret(*e, e->secret, 1000, 100));
  auto r =
      endpoints::rotate_endpoint_secret(*e, std::string{secret}, 1000, 100);
  BOOST_REQUIRE(r);
  BOOST_TEST(r->secret == secret);
  // Switching scheme on rotation: the old HMAC secret signs during grace.
  auto kp = delivery::generate_ed25519_keypair();
  auto ed = endpoints::rotate_endpoint_secret(*e, kp.secret_key, 1000, 100);
  BOOST_REQUIRE(ed);
  BOOST_TEST(ed->signature() == "ed25519");
}

BOOST_AUTO_TEST_CASE(the_stored_form_round_trips) {
  auto e = endpoints::create_endpoint(
      ordered_json{{"url", "https://hooks.example/in"},
                   {"agents", {"a*"}},
                   {"timeout", 1.5},
                   {"retry_schedule", {1, 2}},
                   {"description", "d\u00e9j\u00e0"}},
      {}, 5);
  auto r = endpoints::rotate_endpoint_secret(*e, std::nullopt, 1000, 100);
  auto text = endpoints::to_stored_json(*r);
  auto back = endpoints::from_stored_json(text);
  BOOST_REQUIRE(back);
  BOOST_TEST(endpoints::same_settings(*back, *r));
  BOOST_TEST(endpoints::to_stored_json(*back) == text);
  BOOST_TEST(!endpoints::from_stored_json("{}"));
  BOOST_TEST(!endpoints::from_stored_json("nope"));
}

BOOST_AUTO_TEST_CASE(credentials_are_masked_to_their_last_four_characters) {
  using endpoints::masked_option;
  const std::string e = "\u2026";
  BOOST_TEST(masked_option("R0ut1ngKeyR0ut1ngKeyR0ut1ngKeyZ9") == e + "eyZ9");
  BOOST_TEST(masked_option("abcdefgh") == e + "efgh");
  BOOST_TEST(masked_option("abcdefg") == e); // under 8: nothing of it
  BOOST_TEST(masked_option("") == e);
  BOOST_TEST(masked_option("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                           "\xc3\xa9\xc3\xa9\xc3\xa9") ==
             e + "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"); // characters, not bytes
  BOOST_TEST(masked_option(12345678901) == e);
  BOOST_TEST(masked_option(nullptr) == e);
}

BOOST_AUTO_TEST_CASE(transports_mark_their_credentials) {
  auto& set = shipped_transports();
  BOOST_TEST(set.find("pagerduty")->secret_options() ==
             (std::vector<std::string>{"routing_key"}));
  BOOST_TEST(set.find("slack")->secret_options() ==
             (std::vector<std::string>{"bot_token"}));
  BOOST_TEST(set.find("webhook")->secret_options().empty());
}

BOOST_AUTO_TEST_CASE(credentials_are_shown_masked_and_kept_when_sent_back) {
  const std::string key = "R0ut1ngKeyR0ut1ngKeyR0ut1ngKeyZ9";
  auto body = with("transport", "pagerduty");
  body["options"] = {{"routing_key", key}};
  auto e = endpoints::create_endpoint(body, rules(), 1000);
  BOOST_REQUIRE_MESSAGE(e, (e ? "" : e.error().message));
  for (bool with_secret : {false, true}) {
    auto shown = endpoints::to_api_json(*e, with_secret, &shipped_transports());
    BOOST_TEST(shown["options"]["routing_key"] == "\u2026eyZ9");
    BOOST_TEST(shown.dump().find(key) == std::string::npos, shown.dump());
  }
  // Without the transports nothing is known to be secret.
  BOOST_TEST(endpoints::to_api_json(*e, false,
                                    nullptr)["options"]["routing_key"] == key);
  // The stored form keeps it whole.
  BOOST_TEST(endpoints::to_stored_json(*e).find(key) != std::string::npos);
  // PATCH with what GET showed: kept.
  auto shown = endpoints::to_api_json(*e, false, &shipped_transports());
  auto kept = endpoints::patch_endpoint(
      *e, {{"options", shown["options"]}, {"description", "d"}}, rules(), 2000);
  BOOST_REQUIRE_MESSAGE(kept, (kept ? "" : kept.error().message));
  BOOST_TEST(kept->options["routing_key"] == key);
  BOOST_TEST(kept->description == "d");
  // Another value (or another mask) is taken as the new value, and checked.
  const std::string next = "N3wK3yN3wK3yN3wK3yN3wK3yN3wK3yQ7";
  auto changed = endpoints::patch_endpoint(
      *e, {{"options", {{"routing_key", next}}}}, rules(), 2000);
  BOOST_REQUIRE(changed);
  BOOST_TEST(changed->options["routing_key"] == next);
  auto wrong_mask = endpoints::patch_endpoint(
      *e, {{"options", {{"routing_key", "\u2026abcd"}}}}, rules(), 2000);
  BOOST_REQUIRE(!wrong_mask);
  BOOST_TEST(wrong_mask.error().code == "invalid_options");
  // A create cannot send a mask for a value it does not have.
  body["options"] = {{"routing_key", "\u2026eyZ9"}};
  BOOST_TEST(!endpoints::create_endpoint(body, rules(), 1000));
}

BOOST_AUTO_TEST_SUITE_END()
