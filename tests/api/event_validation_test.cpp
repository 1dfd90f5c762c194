#include "api/event_validation.hpp"

#include "common/ids.hpp"
#include "tests/support/same_events.hpp"

#include <boost/test/unit_test.hpp>

#include <random>

#include <nlohmann/json.hpp>

using namespace tocsin;
using namespace tocsin::api;
using nlohmann::json;

namespace {

const validation_options opts{"https://audit.example/receipts/{receipt_id}",
                              1795756200123};

/// opts, and producers may set links.audit (server.allow_producer_links).
validation_options with_links() {
  auto o = opts;
  o.allow_producer_links = true;
  return o;
}

error error_of(std::string_view body) {
  auto r = validate_events(body, opts);
  BOOST_REQUIRE_MESSAGE(!r, "expected an error for: " << body);
  return r.error();
}

} // namespace

BOOST_AUTO_TEST_SUITE(event_validation)

// The payload is written directly, not through a JSON document: it must come
// out byte for byte as nlohmann::ordered_json (the way it was built before)
// writes it, escapes and key order included.
BOOST_AUTO_TEST_CASE(the_payload_is_written_as_a_json_document_would_write_it) {
  // (Of the control characters only line feeds and tabs are taken, and
  // only in the summary and details' values.)
  const char* summaries[] = {R"(plain)", R"(quote \" backslash \\ slash \/)",
                             R"(controls \n\t \u000a \u0009 \u007f)",
                             R"(unicode é 日本 \ud83d\ude00)"};
  for (auto* summary : summaries) {
    std::string text =
        std::string{
            R"({"type":"policy.denied","agent_id":"a\/b","summary":")"} +
        summary +
        R"(","details":{"z":{"b":[1,2.5,-3e-7,null,true],"a":"\u007fx\n"},)"
        R"("action":"x\ty","rule":"r","receipt_id":"r\"1","n":12345678901234}})";
    auto r = validate_events(text, opts);
    BOOST_REQUIRE_MESSAGE(r, text);
    auto& ev = r->events[0];
    auto in = json::parse(text);
    nlohmann::ordered_json expected;
    expected["id"] = ev.id;
    expected["type"] = "policy.denied";
    expected["timestamp"] = ev.timestamp;
    expected["agent_id"] = "a/b";
    expected["severity"] = "high";
    expected["summary"] = in["summary"];
    expected["details"] = in["details"];
    expected["links"] = nlohmann::ordered_json{{"audit", ev.audit_url}};
    BOOST_TEST(ev.body == expected.dump());
  }
}

BOOST_AUTO_TEST_CASE(normalizes_a_policy_denial_into_the_payload) {
  auto r = validate_events(R"({"type":"policy.denied","agent_id":"agent-7",
    "summary":"agent-7 tried file.delete on /etc",
    "details":{"action":"file.delete","rule":"block-delete","receipt_id":"rcpt_123"}})",
                           opts);
  BOOST_REQUIRE(r);
  BOOST_REQUIRE(r->events.size() == 1u);
  auto& ev = r->events[0];
  BOOST_TEST(is_valid_id(ev.id, "evt"));
  BOOST_TEST(ev.severity == 3); // policy.denied defaults to high
  // Field order and content of the DESIGN.md payload.
  auto expected =
      R"({"id":")" + ev.id +
      R"(","type":"policy.denied","timestamp":"2026-11-27T05:10:00.123Z",)"
      R"("agent_id":"agent-7","severity":"high",)"
      R"("summary":"agent-7 tried file.delete on /etc",)"
      R"("details":{"action":"file.delete","receipt_id":"rcpt_123","rule":"block-delete"},)"
      R"("links":{"audit":"https://audit.example/receipts/rcpt_123"}})";
  BOOST_TEST(ev.body == expected);
}

BOOST_AUTO_TEST_CASE(keeps_given_timestamp_severity_and_links) {
  auto r = validate_events(R"({"type":"anomaly.detected","agent_id":"a",
    "summary":"s","severity":"low","timestamp":"2026-01-02T03:04:05+01:00",
    "links":{"audit":"https://elsewhere.example/x"}})",
                           with_links());
  BOOST_REQUIRE(r);
  auto body = json::parse(r->events[0].body);
  BOOST_TEST(body["timestamp"] == "2026-01-02T02:04:05.000Z");
  BOOST_TEST(body["severity"] == "low");
  BOOST_TEST(body["links"]["audit"] == "https://elsewhere.example/x");
}

BOOST_AUTO_TEST_CASE(system_health_needs_no_agent) {
  auto r = validate_events(R"({"type":"system.health","summary":"scanner up"})",
                           opts);
  BOOST_REQUIRE(r);
  BOOST_TEST(json::parse(r->events[0].body).count("agent_id") == 0u);
}

BOOST_AUTO_TEST_CASE(accepts_batches_with_distinct_ordered_ids) {
  std::string body = R"({"events":[)";
  for (int i = 0; i < 1000; ++i)
    body += std::string{i ? "," : ""} +
            R"({"type":"content.detected","agent_id":"a","summary":"s"})";
  body += "]}";
  auto r = validate_events(body, opts);
  BOOST_REQUIRE(r);
  BOOST_REQUIRE(r->events.size() == 1000u);
  for (std::size_t i = 1; i < r->events.size(); ++i)
    BOOST_REQUIRE(r->events[i - 1].id < r->events[i].id);
}

BOOST_AUTO_TEST_CASE(refuses_every_kind_of_bad_input_naming_the_field) {
  struct bad_case {
    std::string body, code, field;
  };
  std::string long_summary(1025, 'x');
  std::string long_agent(257, 'a');
  std::vector<bad_case> cases = {
      {"{not json", "invalid_json", ""},
      {"[1,2]", "invalid_json", ""},
      {"\"event\"", "invalid_json", ""},
      {"{\"type\":\"system.health\",\"summary\":\"\xff\"}", "invalid_utf8", ""},
      {R"({"agent_id":"a","summary":"s"})", "missing_field", "type"},
      {R"({"type":"policy.denied","summary":"s"})", "missing_field",
       "agent_id"},
      {R"({"type":"policy.denied","agent_id":"a"})", "missing_field",
       "summary"},
      {R"({"type":"policy.approved","agent_id":"a","summary":"s"})",
       "invalid_field", "type"},
      {R"({"type":5,"agent_id":"a","summary":"s"})", "invalid_field", "type"},
      {R"({"type":"policy.denied","agent_id":7,"summary":"s"})",
       "invalid_field", "agent_id"},
      {R"({"type":"policy.denied","agent_id":"","summary":"s"})",
       "invalid_field", "agent_id"},
      {R"({"type":"policy.denied","agent_id":")" + long_agent +
           R"(","summary":"s"})",
       "invalid_field", "agent_id"},
      {R"({"type":"policy.denied","agent_id":"a","summary":")" + long_summary +
           R"("})",
       "invalid_field", "summary"},
      {R"({"type":"policy.denied","agent_id":"a","summary":"s","severity":"urgent"})",
       "invalid_field", "severity"},
      {R"({"type":"policy.denied","agent_id":"a","summary":"s","timestamp":"yesterday"})",
       "invalid_field", "timestamp"},
      {R"({"type":"policy.denied","agent_id":"a","summary":"s","details":[1]})",
       "invalid_field", "details"},
      {R"({"type":"policy.denied","agent_id":"a","summary":"s","details":{"rule":5}})",
       "invalid_field", "details.rule"},
      // A producer's event must not pass for one of tocsin's escalations.
      {R"({"type":"policy.denied","agent_id":"a","summary":"s","details":{"escalation":{"rule":"r"}}})",
       "reserved_field", "details.escalation"},
      {R"({"type":"policy.denied","agent_id":"a","summary":"s","links":{"audit":"not a url"}})",
       "forbidden_field", "links.audit"},
      {R"({"type":"policy.denied","agent_id":"a","summary":"s","links":{"other":"x"}})",
       "unknown_field", "links.other"},
      {R"({"type":"policy.denied","agent_id":"a","summary":"s","colour":"red"})",
       "unknown_field", "colour"},
      {R"({"type":"policy.denied","agent_id":"a","summary":"s","id":"evt_mine"})",
       "unknown_field", "id"},
      {R"({"events":{}})", "invalid_field", "events"},
      {R"({"events":[]})", "invalid_field", "events"},
      {R"({"events":[{"type":"system.health","summary":"s"}],"extra":1})",
       "unknown_field", "extra"},
      {R"({"events":[{"type":"system.health","summary":"s"},{"type":"system.health"}]})",
       "missing_field", "events[1].summary"},
      {R"({"events":[{"type":"system.health","summary":"s"},7]})",
       "invalid_field", "events[1]"},
  };
  for (auto& c : cases) {
    auto e = error_of(c.body);
    BOOST_TEST(e.code == c.code, c.body);
    BOOST_TEST(e.field == c.field, c.body);
    BOOST_TEST(!e.message.empty());
  }
}

BOOST_AUTO_TEST_CASE(refuses_json_that_nlohmann_alone_would_take) {
  const std::string good =
      R"({"type":"policy.denied","agent_id":"a","summary":"s"})";
  BOOST_REQUIRE(validate_events(good, opts));
  // Anything after a NUL byte used to be ignored.
  auto nul = good + std::string{"\0garbage", 8};
  auto e = error_of(nul);
  BOOST_TEST(e.code == "invalid_json");
  BOOST_TEST(e.message.find("NUL") != std::string::npos, e.message);
  // Duplicate keys used to mean "the last wins": a bogus type hidden first.
  e = error_of(R"({"type":"bogus","agent_id":"a","summary":"s",)"
               R"("type":"policy.denied"})");
  BOOST_TEST(e.code == "invalid_json");
  BOOST_TEST(e.message.find("duplicate key \"type\"") != std::string::npos,
             e.message);
  // ... also deep inside details, and in objects past the linear search.
  std::string many = R"({"type":"system.health","summary":"s","details":{)";
  for (int i = 0; i < 40; ++i)
    many += "\"k" + std::to_string(i) + "\":" + std::to_string(i) + ",";
  BOOST_TEST(error_of(many + R"("k7":1}})").code == "invalid_json");
  BOOST_TEST(validate_events(many + R"("k40":1}})", opts).ok());
  // Nesting: 32 levels in all are fine, 33 are refused (as are 100,000).
  auto nested = [](int levels) {
    // The event object and details are 2 levels; the rest are arrays.
    return R"({"type":"system.health","summary":"s","details":{"x":)" +
           std::string(static_cast<std::size_t>(levels - 2), '[') +
           std::string(static_cast<std::size_t>(levels - 2), ']') + "}}";
  };
  BOOST_TEST(validate_events(nested(32), opts).ok());
  e = error_of(nested(33));
  BOOST_TEST(e.code == "invalid_json");
  BOOST_TEST(e.message.find("deeper than 32") != std::string::npos, e.message);
  BOOST_TEST(error_of(nested(100000)).code == "invalid_json");
  // Members per object: 1000 are fine, 1001 are refused.
  auto members = [](int n) {
    std::string body = R"({"type":"system.health","summary":"s","details":{)";
    for (int i = 0; i < n; ++i)
      body +=
          (i ? "," : "") + std::string{"\"k"} + std::to_string(i) + "\":\"v\"";
    return body + "}}";
  };
  BOOST_TEST(validate_events(members(1000), opts).ok());
  e = error_of(members(1001));
  BOOST_TEST(e.code == "invalid_json");
  BOOST_TEST(e.message.find("more than 1000 members") != std::string::npos,
             e.message);
}

BOOST_AUTO_TEST_CASE(idempotency_keys_are_checked_and_digest_what_they_cover) {
  auto one = [](const std::string& body) {
    auto r = validate_events(body, opts);
    BOOST_REQUIRE_MESSAGE(r, body);
    return r->events.at(0);
  };
  auto a =
      one(R"({"type":"system.health","summary":"s","idempotency_key":"k1"})");
  auto same = one(R"( { "summary" : "s", "idempotency_key":"k1",
                        "type":"system.health" } )");
  auto other =
      one(R"({"type":"system.health","summary":"t","idempotency_key":"k1"})");
  BOOST_TEST(a.idempotency_key == "k1");
  BOOST_TEST(a.idempotency_digest.size() == 64u);
  // Key order and spacing do not change what the key covers; content does.
  BOOST_TEST(a.idempotency_digest == same.idempotency_digest);
  BOOST_TEST(a.idempotency_digest != other.idempotency_digest);
  // The field takes what the header takes: printable ASCII, no spaces.
  for (auto bad :
       {R"("")", R"("a b")", R"("caf\u00e9")", R"("tab\there")", "7"}) {
    auto e = error_of(std::string{R"({"type":"system.health","summary":"s",)"
                                  R"("idempotency_key":)"} +
                      bad + "}");
    BOOST_TEST(e.field == "idempotency_key", bad);
  }
  BOOST_TEST(is_valid_idempotency_key(std::string(256, 'k')));
  BOOST_TEST(!is_valid_idempotency_key(std::string(257, 'k')));
  // The whole request is digested for the header only when asked.
  auto with_header = opts;
  with_header.digest_request = true;
  auto batch = validate_events(
      R"({"events":[{"type":"system.health","summary":"s"}]})", with_header);
  BOOST_REQUIRE(batch);
  BOOST_TEST(batch->idempotency_digest.size() == 64u);
  BOOST_TEST(validate_events(R"({"type":"system.health","summary":"s"})", opts)
                 ->idempotency_digest.empty());
}

BOOST_AUTO_TEST_CASE(oversized_payloads_are_cut_at_validation) {
  std::string details = "{";
  for (int i = 0; i < 1000; ++i)
    details += (i ? "," : "") + std::string{"\"k"} + std::to_string(i) +
               "\":\"" + std::string(400, 'v') + "\"";
  details += "}";
  auto r = validate_events(
      R"({"type":"policy.denied","agent_id":"a","summary":"s","details":)" +
          details + "}",
      opts);
  BOOST_REQUIRE(r);
  auto& ev = r->events[0];
  BOOST_TEST(ev.body.size() > 400000u); // stored whole
  BOOST_TEST(!ev.payload.empty());
  BOOST_TEST(ev.payload.size() <= opts.max_payload_bytes);
  BOOST_TEST(json::parse(ev.payload)["truncated"] == true);
  // Small events are not copied: the body is the payload.
  BOOST_TEST(validate_events(R"({"type":"system.health","summary":"s"})", opts)
                 ->events[0]
                 .payload.empty());
}

BOOST_AUTO_TEST_CASE(refuses_batches_over_1000) {
  std::string body = R"({"events":[)";
  for (int i = 0; i < 1001; ++i)
    body +=
        std::string{i ? "," : ""} + R"({"type":"system.health","summary":"s"})";
  body += "]}";
  BOOST_TEST(error_of(body).code == "batch_too_large");
}

// Bodies of the shape producers send are read without a JSON document; the
// answer must be the one the document gives, and everything else must go to
// the document (which explains what is wrong). Random bodies built from the
// pieces where the two could part: escapes, nesting, numbers, nulls,
// duplicates, whitespace, invalid values, batches.
BOOST_AUTO_TEST_CASE(plain_bodies_are_read_as_the_document_reads_them) {
  std::mt19937 rng{20261128};
  auto pick = [&](std::initializer_list<const char*> xs) {
    return std::string{xs.begin()[std::uniform_int_distribution<std::size_t>{
        0, xs.size() - 1}(rng)]};
  };
  auto chance = [&](int percent) {
    return std::uniform_int_distribution<int>{0, 99}(rng) < percent;
  };
  auto ws = [&] { return chance(80) ? "" : pick({" ", "\n", "\t ", "\r\n"}); };
  auto text = [&] {
    return pick({R"("agent-7")", R"("a b/c é 日本")", R"("")", R"("x\"y")",
                 R"("tab\tin")", R"("\u0041")", "null", "7", R"("a\/b")",
                 R"("rlo \u202e")", "\"rlo \xe2\x80\xae\"",
                 "\"lri \xe2\x81\xa6\"", R"("bel \u0007")", R"("lf\n")"});
  };
  auto scalar = [&] {
    return pick({R"("file.delete")",
                 R"("rcpt_1")",
                 "0",
                 "-0",
                 "12",
                 "-123456789012345678",
                 "1234567890123456789",
                 "1.5",
                 "1e3",
                 "true",
                 "false",
                 "null",
                 R"("q\"")",
                 R"("é\u00e9")",
                 R"(["x"])",
                 R"({"a":1})",
                 R"({})",
                 R"("\u007f")",
                 R"("tocsin")",
                 R"("\u202e")",
                 "\"\xe2\x80\xaa\"",
                 R"(["\u0000"])",
                 R"({"\u0001":1})",
                 R"("a\tb")"});
  };
  auto event = [&] {
    std::vector<std::string> members;
    auto add = [&](std::string key, std::string value) {
      members.push_back(ws() + "\"" + key + "\"" + ws() + ":" + ws() + value +
                        ws());
    };
    if (chance(95))
      add("type", chance(90) ? pick({R"("policy.denied")", R"("system.health")",
                                     R"("approval.required")"})
                             : pick({R"("nope")", "1", R"("")"}));
    if (chance(90))
      add("agent_id", chance(85) ? R"("agent-7")" : text());
    if (chance(95))
      add("summary",
          chance(85) ? R"("agent-7 tried file.delete on /etc")" : text());
    if (chance(30))
      add("severity",
          pick({R"("critical")", R"("info")", R"("huge")", "null", R"("")"}));
    if (chance(30))
      add("timestamp",
          pick({R"("2026-11-28T08:00:00Z")", R"("2026-11-28T08:00:00.5+02:00")",
                R"("yesterday")", "null"}));
    if (chance(20))
      add("idempotency_key",
          pick({R"("key-1")", R"("has space")", R"("")", "null", "1"}));
    if (chance(80)) {
      std::vector<std::string> d;
      for (auto k : {"action", "rule", "receipt_id", "zeta", "Alpha", "n",
                     "escalation", "origin", "\xe2\x81\xa7k"})
        if (chance(k == std::string{"escalation"} ? 3 : 50))
          d.push_back(ws() + "\"" + k + "\":" + ws() +
                      (chance(70) ? R"("v")" : scalar()));
      if (chance(5) && !d.empty())
        d.push_back(d.front()); // a duplicate key
      std::shuffle(d.begin(), d.end(), rng);
      std::string obj = "{";
      for (auto& m : d)
        obj += (&m == &d.front() ? "" : ",") + m;
      add("details", chance(97) ? obj + "}" : pick({"null", "[]", R"("x")"}));
    }
    if (chance(25))
      add("links",
          pick({R"({"audit":"https://audit.example/x"})",
                R"({"audit":"ftp://x"})", R"({"other":"x"})",
                R"({"audit":"https://a.example/\u0041"})", "null", "{}"}));
    if (chance(3))
      add("extra", "1");
    if (chance(3) && !members.empty())
      members.push_back(members.front());
    std::shuffle(members.begin(), members.end(), rng);
    std::string out = "{";
    for (auto& m : members)
      out += (&m == &members.front() ? "" : ",") + m;
    return out + "}";
  };
  int plain = 0, agreed_errors = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string body;
    if (chance(50)) {
      body = event();
    } else {
      int n = std::uniform_int_distribution<int>{chance(5) ? 0 : 1, 4}(rng);
      body = ws() + "{" + ws() + "\"events\"" + ws() + ":" + ws() + "[";
      for (int i = 0; i < n; ++i)
        body += (i ? "," : "") + ws() + event() + ws();
      body += "]" + ws() + (chance(3) ? R"(,"x":1)" : "") + "}" + ws();
    }
    if (chance(2))
      body += pick({"x", "}", ",", "\u0000"});
    validation_options o = opts;
    o.max_payload_bytes = chance(10) ? 200 : opts.max_payload_bytes;
    o.allow_producer_links = chance(50);
    auto fast = detail::read_plain_events(body, o);
    auto doc = detail::validate_events_with_document(body, o);
    if (fast) {
      ++plain;
      BOOST_TEST_REQUIRE(bool(doc),
                         body << ": " << (doc ? "" : doc.error().message));
      BOOST_TEST_REQUIRE(test::same_events(*fast, *doc), body);
    } else if (!doc) {
      ++agreed_errors;
    }
    // The public entry agrees with the document either way.
    auto r = validate_events(body, o);
    BOOST_TEST_REQUIRE(bool(r) == bool(doc), body);
    if (r)
      BOOST_TEST_REQUIRE(test::same_events(*r, *doc), body);
    else
      BOOST_TEST_REQUIRE(r.error().message == doc.error().message, body);
  }
  // Both kinds of body were met often enough to mean something.
  BOOST_TEST(plain > 1000);
  BOOST_TEST(agreed_errors > 2000);
}

// What producers send most -- the benchmarks' event, a batch of it, fields
// in any order, spaces -- takes the path without a document.
BOOST_AUTO_TEST_CASE(the_common_shapes_are_read_without_a_document) {
  for (std::string_view body :
       {R"({"type":"policy.denied","agent_id":"agent-7","summary":"s",)"
        R"("details":{"action":"file.delete","rule":"r","receipt_id":"x"}})",
        R"({"events":[{"summary":"s","type":"system.health"},)"
        R"({"type":"content.detected","agent_id":"a","summary":"s",)"
        R"("severity":"critical","timestamp":"2026-11-28T08:00:00Z",)"
        R"("idempotency_key":"k1","links":{"audit":"https://a.example/"},)"
        R"("details":{"n":-12,"ok":true,"none":null}}]})",
        "{ \"type\" : \"system.health\" ,\n \"summary\" : \"s\" }\n",
        // Bytes a document writes back as they are: DEL, UTF-8, a slash.
        "{\"type\":\"system.health\",\"summary\":\"del \x7f \xc3\xa9 "
        "\xe6\x97\xa5 / \xf0\x9f\x98\x80\",\"details\":{\"k\x7f\":\"/\"}}"}) {
    auto fast = detail::read_plain_events(body, with_links());
    BOOST_TEST_REQUIRE(bool(fast), body);
    auto doc = detail::validate_events_with_document(body, with_links());
    BOOST_TEST_REQUIRE(bool(doc));
    BOOST_TEST(test::same_events(*fast, *doc), body);
  }
}

// The audit link made from audit_url_template carries the receipt id
// percent-encoded: it stays one path segment (issue 24).
BOOST_AUTO_TEST_CASE(receipt_ids_are_percent_encoded_into_the_audit_link) {
  BOOST_TEST(fill_audit_template(
                 "https://a.example/r/{receipt_id}?x={receipt_id}", "a b/c") ==
             "https://a.example/r/a%20b%2Fc?x=a%20b%2Fc");
  BOOST_TEST(fill_audit_template("https://a.example/static", "x") ==
             "https://a.example/static");
  BOOST_TEST(fill_audit_template("{receipt_id}", "{receipt_id}") ==
             "%7Breceipt_id%7D");
  for (std::string_view body :
       {R"({"type":"policy.denied","agent_id":"a","summary":"s",)"
        R"("details":{"receipt_id":"../../admin/delete?all=1#"}})",
        R"({"type":"policy.denied","agent_id":"a","summary":"s",)"
        R"("details":{"receipt_id":"..\/..\/admin\/delete?all=1#"}})"}) {
    auto r = validate_events(body, opts);
    BOOST_REQUIRE_MESSAGE(r, body);
    BOOST_TEST(r->events[0].audit_url ==
               "https://audit.example/receipts/"
               "..%2F..%2Fadmin%2Fdelete%3Fall%3D1%23");
    BOOST_TEST(json::parse(r->events[0].body)["links"]["audit"] ==
               r->events[0].audit_url);
  }
}

// links.audit overrides the template's link: only where the operator lets
// producers set it (server.allow_producer_links).
BOOST_AUTO_TEST_CASE(producer_links_are_refused_unless_allowed) {
  for (std::string_view body :
       {R"({"type":"policy.denied","agent_id":"a","summary":"s",)"
        R"("links":{"audit":"https://elsewhere.example/x"}})",
        R"({"type":"policy.denied","agent_id":"a","summary":"s",)"
        R"("links":{"audit":"https:\/\/elsewhere.example\/x"}})",
        R"({"events":[{"type":"system.health","summary":"s"},)"
        R"({"type":"system.health","summary":"s",)"
        R"("links":{"audit":"https://elsewhere.example/x"}}]})"}) {
    auto r = validate_events(body, opts);
    BOOST_REQUIRE_MESSAGE(!r, body);
    BOOST_TEST(r.error().code == "forbidden_field");
    BOOST_TEST(r.error().field.ends_with("links.audit"), r.error().field);
    BOOST_TEST(r.error().message.find("server.allow_producer_links") !=
               std::string::npos);
    auto allowed = validate_events(body, with_links());
    BOOST_REQUIRE_MESSAGE(allowed, body);
    BOOST_TEST(allowed->events.back().audit_url ==
               "https://elsewhere.example/x");
  }
  // Still checked where allowed.
  auto bad = validate_events(
      R"({"type":"policy.denied","agent_id":"a","summary":"s","links":{"audit":"not a url"}})",
      with_links());
  BOOST_REQUIRE(!bad);
  BOOST_TEST(bad.error().code == "invalid_field");
  // An empty links object sets nothing and is fine.
  BOOST_TEST(bool(validate_events(
      R"({"type":"system.health","summary":"s","links":{}})", opts)));
}

// Control characters and bidirectional overrides make what a receiver
// shows differ from what was sent: refused, naming the field. Line feeds
// and tabs are taken in the summary and in details' values only.
BOOST_AUTO_TEST_CASE(controls_and_bidi_overrides_are_refused_naming_the_field) {
  struct bad_case {
    std::string body, field;
  };
  const std::string rlo = "\xe2\x80\xae", pdi = "\xe2\x81\xa9";
  std::vector<bad_case> cases = {
      {R"({"type":"policy.denied\u0007","agent_id":"a","summary":"s"})",
       "type"},
      {R"({"type":"policy.denied","agent_id":"a\tb","summary":"s"})",
       "agent_id"},
      {R"({"type":"policy.denied","agent_id":"a\nb","summary":"s"})",
       "agent_id"},
      {R"({"type":"policy.denied","agent_id":"a)" + rlo +
           R"(b","summary":"s"})",
       "agent_id"},
      {R"({"type":"policy.denied","agent_id":"a\u2066b","summary":"s"})",
       "agent_id"},
      {R"({"type":"policy.denied","agent_id":"a","summary":"s\r"})", "summary"},
      {R"({"type":"policy.denied","agent_id":"a","summary":"\u001b[2Jcleared"})",
       "summary"},
      {R"({"type":"policy.denied","agent_id":"a","summary":"s\u0000"})",
       "summary"},
      {R"({"type":"policy.denied","agent_id":"a","summary":"harmless )" + rlo +
           R"(fdp.exe"})",
       "summary"},
      {R"({"type":"policy.denied","agent_id":"a","summary":"x)" + pdi + R"("})",
       "summary"},
      {R"({"type":"policy.denied","agent_id":"a","summary":"s","severity":"high\u0000"})",
       "severity"},
      {R"({"type":"policy.denied","agent_id":"a","summary":"s","timestamp":"2026-11-28T08:00:00Z\u202a"})",
       "timestamp"},
      {R"({"type":"policy.denied","agent_id":"a","summary":"s","details":{"rule":"r\u0008"}})",
       "details.rule"},
      {R"({"type":"policy.denied","agent_id":"a","summary":"s","details":{"x":")" +
           rlo + R"("}})",
       "details.x"},
      {R"({"type":"policy.denied","agent_id":"a","summary":"s","details":{"a":{"b":["ok","\u202d"]}}})",
       "details.a.b[1]"},
      {R"({"type":"policy.denied","agent_id":"a","summary":"s","details":{"k\n":"v"}})",
       "details.k\n"},
      {R"({"events":[{"type":"system.health","summary":"s"},{"type":"system.health","summary":"\u0007"}]})",
       "events[1].summary"},
  };
  for (auto& c : cases) {
    auto e = error_of(c.body);
    BOOST_TEST(e.code == "invalid_field", c.body);
    BOOST_TEST(e.field == c.field, c.body);
    BOOST_TEST((e.message.find("control") != std::string::npos), e.message);
  }
  // Lines and tabs where text is read as text; neighbours of the bidi
  // controls (U+2029, U+202F) and DEL are not refused.
  auto ok = validate_events(
      "{\"type\":\"policy.denied\",\"agent_id\":\"a\",\"summary\":\"two\\n"
      "lines\\tand a tab \xe2\x80\xa9 \xe2\x80\xaf \x7f\",\"details\":{\"log\":"
      "\"l1\\nl2\\t\",\"n\":{\"deep\":[\"\\t\"]}}}",
      opts);
  BOOST_TEST(bool(ok), (ok ? "" : ok.error().message));
}

// tocsin's own system.health events say details.origin "tocsin"; a
// producer's cannot.
BOOST_AUTO_TEST_CASE(details_origin_tocsin_is_reserved) {
  for (
      std::string_view body :
      {R"({"type":"system.health","summary":"endpoint ops is failing",)"
       R"("details":{"origin":"tocsin","endpoint_id":"ops","state":"unhealthy"}})",
       R"({"type":"policy.denied","agent_id":"a","summary":"s",)"
       R"("details":{"origin":"tocsin"}})",
       R"({"type":"system.health","summary":"s","details":{"origin":"tocs\u0069n"}})"}) {
    auto e = error_of(body);
    BOOST_TEST(e.code == "reserved_field", body);
    BOOST_TEST(e.field == "details.origin", body);
  }
  // Any other origin is the producer's own business.
  for (
      std::string_view body :
      {R"({"type":"system.health","summary":"s","details":{"origin":"scanner"}})",
       R"({"type":"system.health","summary":"s","details":{"origin":7}})",
       R"({"type":"system.health","summary":"s","details":{"origin":"Tocsin"}})"})
    BOOST_TEST(bool(validate_events(body, opts)), body);
}

BOOST_AUTO_TEST_SUITE_END()
