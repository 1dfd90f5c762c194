// The stored forms of events and deliveries: the binary form round-trips
// every field, records written as JSON by older versions still read, and a
// damaged record reads as nothing (never a crash, never a half record).
#include "storage/records.hpp"

#include <boost/test/unit_test.hpp>

#include <random>

using namespace tocsin::storage;

namespace {

delivery sample_delivery() {
  delivery d;
  d.id = "dlv_01JD0000000000000000000001";
  d.event_id = "evt_01JD0000000000000000000001";
  d.endpoint_id = "ep_slack";
  d.state = delivery_state::dead_lettered;
  d.created_at = 1'764'201'600'000;
  d.window_start = 1'764'201'600'005;
  d.attempt_base = 5;
  d.next_attempt_at = 0;
  d.finished_at = 1'764'202'500'000;
  d.reason = "attempts exhausted";
  attempt a;
  a.number = 6;
  a.started_at = 1'764'201'600'010;
  a.finished_at = 1'764'201'600'042;
  a.status = 503;
  a.latency_ms = 31.75;
  a.response = std::string{"busy \xff\x00 \"quoted\"", 17};
  d.attempts.push_back(a);
  a.number = 7;
  a.status = 0;
  a.finished_at = 0; // interrupted by a crash
  a.latency_ms = 0;
  a.response.clear();
  a.error = "timeout: no answer within 10 s";
  d.attempts.push_back(a);
  return d;
}

void check_same(const delivery& a, const delivery& b) {
  BOOST_TEST(a.id == b.id);
  BOOST_TEST(a.event_id == b.event_id);
  BOOST_TEST(a.endpoint_id == b.endpoint_id);
  BOOST_TEST((a.state == b.state));
  BOOST_TEST(a.created_at == b.created_at);
  BOOST_TEST(a.window_start == b.window_start);
  BOOST_TEST(a.attempt_base == b.attempt_base);
  BOOST_TEST(a.next_attempt_at == b.next_attempt_at);
  BOOST_TEST(a.finished_at == b.finished_at);
  BOOST_TEST(a.reason == b.reason);
  BOOST_REQUIRE_EQUAL(a.attempts.size(), b.attempts.size());
  for (std::size_t i = 0; i < a.attempts.size(); ++i) {
    auto &x = a.attempts[i], &y = b.attempts[i];
    BOOST_TEST(x.number == y.number);
    BOOST_TEST(x.started_at == y.started_at);
    BOOST_TEST(x.finished_at == y.finished_at);
    BOOST_TEST(x.status == y.status);
    BOOST_TEST(x.latency_ms == y.latency_ms);
    BOOST_TEST(x.response == y.response);
    BOOST_TEST(x.error == y.error);
    BOOST_TEST(x.node == y.node);
  }
  BOOST_TEST((a.news == b.news));
  BOOST_TEST(a.receipt == b.receipt);
}

event_record sample_event() {
  event_record e;
  e.id = "evt_01JD0000000000000000000001";
  e.body = R"({"id":"evt_01JD0000000000000000000001","type":"policy.denied",)"
           R"("severity":"high","details":{"b":2,"a":1}})";
  e.accepted_at = 1'764'201'600'000;
  e.delivery_ids = {"dlv_1", "dlv_2"};
  e.fields = event_fields{"policy.denied",
                          "high",
                          "agent-7",
                          "agent-7 tried file.delete",
                          "2026-11-27T05:10:00Z",
                          "https://audit.example/r/1"};
  return e;
}

} // namespace

BOOST_AUTO_TEST_SUITE(records)

BOOST_AUTO_TEST_CASE(deliveries_round_trip_in_the_binary_form) {
  auto d = sample_delivery();
  auto stored = encode(d);
  BOOST_TEST(stored.front() != '{');
  auto back = decode_delivery(stored);
  BOOST_REQUIRE(back.has_value());
  check_same(d, *back);
  // Extremes of every integer field survive too.
  d.created_at = std::numeric_limits<std::int64_t>::max();
  d.window_start = std::numeric_limits<std::int64_t>::min();
  d.attempt_base = std::numeric_limits<int>::min();
  d.attempts.clear();
  back = decode_delivery(encode(d));
  BOOST_REQUIRE(back.has_value());
  check_same(d, *back);
}

BOOST_AUTO_TEST_CASE(events_round_trip_with_and_without_fields) {
  auto e = sample_event();
  auto back = decode_event(encode(e));
  BOOST_REQUIRE(back.has_value());
  BOOST_TEST(back->id == e.id);
  BOOST_TEST(back->body == e.body); // byte for byte: key order kept
  BOOST_TEST(back->accepted_at == e.accepted_at);
  BOOST_TEST(back->delivery_ids == e.delivery_ids);
  BOOST_TEST((back->fields == e.fields));
  e.fields.reset();
  back = decode_event(encode(e));
  BOOST_REQUIRE(back.has_value());
  BOOST_TEST(!back->fields.has_value());
}

BOOST_AUTO_TEST_CASE(notices_and_answers_round_trip) {
  auto d = sample_delivery();
  d.news = notice{event_state::acknowledged, "U123 (alice)", 1'764'201'700'000,
                  "https://hooks.slack.com/actions/T1/2/abc"};
  auto back = decode_delivery(encode(d));
  BOOST_REQUIRE(back.has_value());
  check_same(d, *back);
  d.news = notice{event_state::resolved, "", 7, ""};
  back = decode_delivery(encode(d));
  BOOST_REQUIRE(back.has_value());
  check_same(d, *back);

  auto e = sample_event();
  e.answers = {{event_state::acknowledged, "alice", "slack", "", 100},
               {event_state::resolved, "bob", "api", "fixed the rule", 200}};
  auto ev = decode_event(encode(e));
  BOOST_REQUIRE(ev.has_value());
  BOOST_TEST((ev->answers == e.answers));
  BOOST_TEST((ev->state() == event_state::resolved));
  BOOST_TEST(ev->body == e.body);
  // A record without answers is the form of earlier versions, unchanged.
  e.answers.clear();
  BOOST_TEST(encode(e) == encode(sample_event()));
  BOOST_TEST((decode_event(encode(e))->state() == event_state::open));
  // Every cut inside the answers reads as nothing.
  e.answers = {{event_state::acknowledged, "alice", "slack", "n", 100}};
  auto full = encode(e), bare = encode(sample_event());
  for (auto n = bare.size() + 1; n < full.size(); ++n)
    BOOST_TEST(!decode_event(std::string_view{full}.substr(0, n)).has_value());
  // An answer that is neither acknowledged nor resolved is damage.
  auto open_answer = full;
  open_answer[bare.size() + 1] = '\x00';
  BOOST_TEST(!decode_event(open_answer).has_value());
}

BOOST_AUTO_TEST_CASE(receipts_and_episodes_round_trip_as_tagged_fields) {
  // A delivered trigger keeps its receipt; a notice carries it, and how
  // many events went with its answer.
  auto d = sample_delivery();
  auto plain = encode(d);
  d.receipt = R"({"channel":"C0123456789","ts":"1700000000.000100"})";
  auto back = decode_delivery(encode(d));
  BOOST_REQUIRE(back.has_value());
  check_same(d, *back);
  d.news = notice{event_state::acknowledged, "alice", 5, "", d.receipt, 50};
  back = decode_delivery(encode(d));
  BOOST_REQUIRE(back.has_value());
  check_same(d, *back);
  BOOST_TEST(back->news.along == 50u);
  // Without them, the record earlier versions wrote, and it reads.
  d = sample_delivery();
  BOOST_TEST(encode(d) == plain);
  // Every cut inside the tagged fields reads as nothing; so does an
  // unknown tag or one out of order.
  d.receipt = "{}";
  d.news = notice{event_state::resolved, "bob", 6, "", "{}", 3};
  auto full = encode(d);
  // The tags: receipt (tag, length, "{}"), the notice's receipt, along.
  auto tags = full.size() - 10;
  for (auto n = tags; n < full.size(); ++n) {
    bool whole = n == tags || n == tags + 4 || n == tags + 8;
    BOOST_TEST(
        decode_delivery(std::string_view{full}.substr(0, n)).has_value() ==
            whole,
        n - tags);
  }
  BOOST_TEST(!decode_delivery(plain + '\x13').has_value());
  BOOST_TEST(!decode_delivery(plain + "\x11\x00\x10\x00").has_value());

  // An answer that came through another event says which.
  auto e = sample_event();
  e.answers = {{event_state::acknowledged, "alice", "slack", "", 100,
                "evt_01JDQ8Z3V6X2K9M4T7B5N1C0PA"},
               {event_state::resolved, "bob", "api", "", 200, ""}};
  auto ev = decode_event(encode(e));
  BOOST_REQUIRE(ev.has_value());
  BOOST_TEST((ev->answers == e.answers));
  // Without any, the answers end the record as before.
  e.answers[0].via.clear();
  auto bare = encode(e);
  BOOST_TEST((decode_event(bare)->answers == e.answers));
  BOOST_TEST(!decode_event(bare + '\x11').has_value());
}

BOOST_AUTO_TEST_CASE(attempts_keep_the_node_that_made_them) {
  // Attempts made in a cluster name their node; those made alone (and
  // every record of earlier versions) have none, and their record is the
  // one earlier versions wrote.
  auto d = sample_delivery();
  auto alone = encode(d);
  d.attempts[0].node = "node-a";
  d.attempts[1].node = "node-\xff\x01";
  auto stored = encode(d);
  BOOST_TEST(stored != alone);
  auto back = decode_delivery(stored);
  BOOST_REQUIRE(back.has_value());
  check_same(d, *back);
  d.attempts[0].node.clear(); // some, not all
  back = decode_delivery(encode(d));
  BOOST_REQUIRE(back.has_value());
  check_same(d, *back);
  auto old = decode_delivery(alone);
  BOOST_REQUIRE(old.has_value());
  BOOST_TEST(old->attempts[0].node.empty());
  BOOST_TEST(old->attempts[1].node.empty());
  d.attempts[0].node.clear();
  d.attempts[1].node.clear();
  BOOST_TEST(encode(d) == alone);
  // With the other tagged fields, in their order; a count that is not the
  // attempts' is damage, as is every cut.
  d.receipt = "{}";
  d.attempts[1].node = "b";
  back = decode_delivery(encode(d));
  BOOST_REQUIRE(back.has_value());
  check_same(d, *back);
  auto full = encode(d);
  auto nodes = full.size() - 5; // tag 19, count 2, "", "b"
  BOOST_TEST(full.substr(nodes) == std::string("\x13\x02\x00\x01"
                                               "b",
                                               5));
  for (auto n = nodes; n < full.size(); ++n)
    BOOST_TEST(
        decode_delivery(std::string_view{full}.substr(0, n)).has_value() ==
            (n == nodes),
        n - nodes);
  auto miscounted = full;
  miscounted[nodes + 1] = '\x01';
  BOOST_TEST(!decode_delivery(miscounted).has_value());
}

// Exactly what versions before the binary form wrote.
BOOST_AUTO_TEST_CASE(json_records_of_older_versions_are_read) {
  auto d = decode_delivery(
      R"({"id":"dlv_1","event_id":"evt_1","endpoint_id":"ep","state":)"
      R"("pending","created_at":1000,"window_start":1001,"attempt_base":0,)"
      R"("next_attempt_at":2000,"finished_at":0,"reason":"","attempts":[)"
      R"({"number":1,"started_at":1001,"finished_at":1040,"status":500,)"
      R"("latency_ms":39.5,"response":"oops"}]})");
  BOOST_REQUIRE(d.has_value());
  BOOST_TEST(d->id == "dlv_1");
  BOOST_TEST(d->next_attempt_at == 2000);
  BOOST_REQUIRE_EQUAL(d->attempts.size(), 1u);
  BOOST_TEST(d->attempts[0].status == 500);
  BOOST_TEST(d->attempts[0].latency_ms == 39.5);
  BOOST_TEST(d->attempts[0].response == "oops");

  auto e = decode_event(
      R"({"id":"evt_1","accepted_at":1000,"delivery_ids":["dlv_1"],)"
      R"("body":{"id":"evt_1","type":"x","details":{"z":1,"a":2}}})");
  BOOST_REQUIRE(e.has_value());
  BOOST_TEST(e->body == R"({"id":"evt_1","type":"x","details":{"z":1,"a":2}})");
  BOOST_TEST(e->delivery_ids == std::vector<std::string>{"dlv_1"});
  BOOST_TEST(!e->fields.has_value());
}

// Every prefix of a record, and random damage to it, reads as nothing or as
// a whole record — never a crash, never past the end (ASan watches).
BOOST_AUTO_TEST_CASE(damaged_records_read_as_nothing) {
  auto d = encode(sample_delivery());
  auto e = encode(sample_event());
  for (std::size_t n = 0; n < d.size(); ++n)
    BOOST_TEST(!decode_delivery(std::string_view{d}.substr(0, n)).has_value());
  for (std::size_t n = 0; n < e.size(); ++n)
    BOOST_TEST(!decode_event(std::string_view{e}.substr(0, n)).has_value());
  BOOST_TEST(!decode_delivery(d + "x").has_value());
  BOOST_TEST(!decode_event(e + "x").has_value());
  // A count far beyond what the record holds is refused before it is used.
  BOOST_TEST(!decode_delivery(std::string{"\x01\x00\x00\x00\x00\x00\x00\x00"
                                          "\x00\x00\x00\x00\xff\xff\xff\xff"
                                          "\xff\xff\xff\xff\x7f",
                                          21})
                  .has_value());
  std::mt19937 rng{42};
  for (int i = 0; i < 20000; ++i) {
    auto damaged = i % 2 ? d : e;
    auto flips = 1 + rng() % 4;
    for (unsigned f = 0; f < flips; ++f)
      damaged[1 + rng() % (damaged.size() - 1)] = static_cast<char>(rng());
    (void)decode_delivery(damaged);
    (void)decode_event(damaged);
  }
}

BOOST_AUTO_TEST_SUITE_END()
