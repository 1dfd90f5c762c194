// What transports see of an event is the same whether it comes straight from
// validation or is read back from the store (recovery, replay).
#include "delivery/event_content.hpp"

#include <boost/test/unit_test.hpp>

using namespace tocsin::delivery;

BOOST_AUTO_TEST_SUITE(event_content_suite)

BOOST_AUTO_TEST_CASE(fresh_and_stored_events_give_the_same_content) {
  new_event e;
  e.id = "evt_01JD0000000000000000000000";
  e.type = "policy.denied";
  e.severity = 3;
  e.severity_name = "high";
  e.agent_id = "agent-7";
  e.summary = "agent-7 tried file.delete on /etc";
  e.timestamp = "2026-11-27T05:10:00.123Z";
  e.audit_url = "https://audit.example/receipts/rcpt_1";
  e.body = R"({"id":"evt_01JD0000000000000000000000","type":"policy.denied",)"
           R"("timestamp":"2026-11-27T05:10:00.123Z","agent_id":"agent-7",)"
           R"("severity":"high","summary":"agent-7 tried file.delete on /etc",)"
           R"("details":{"rule":"block-delete"},)"
           R"("links":{"audit":"https://audit.example/receipts/rcpt_1"}})";
  auto fresh = make_event_content(e, 4096);
  auto stored = make_event_content(e.body, 4096);
  // As stored since the binary records: the fields beside the body.
  tocsin::storage::event_record rec{
      e.id,
      e.body,
      1000,
      {},
      tocsin::storage::event_fields{e.type, e.severity_name, e.agent_id,
                                    e.summary, e.timestamp, e.audit_url}};
  auto record = make_event_content(rec, 4096);
  // A record of an older version has no fields: they come from the body.
  rec.fields.reset();
  auto older = make_event_content(rec, 4096);
  for (auto* c : {fresh.get(), stored.get(), record.get(), older.get()}) {
    BOOST_TEST(c->id == e.id);
    BOOST_TEST(c->type == e.type);
    BOOST_TEST(c->severity == "high");
    BOOST_TEST(c->agent_id == e.agent_id);
    BOOST_TEST(c->summary == e.summary);
    BOOST_TEST(c->timestamp == e.timestamp);
    BOOST_TEST(c->audit_url == e.audit_url);
    BOOST_TEST(c->payload == e.body);
  }
}

BOOST_AUTO_TEST_CASE(the_payload_is_cut_to_the_limit) {
  new_event e;
  e.id = "evt_1";
  e.body =
      R"({"id":"evt_1","type":"system.health","summary":"s","details":{"x":")" +
      std::string(10000, 'x') + R"("}})";
  auto c = make_event_content(e, 4096);
  BOOST_TEST(c->payload.size() <= 4096u);
  BOOST_TEST(c->payload.find("\"truncated\":true") != std::string::npos);
  BOOST_TEST(make_event_content(e.body, 4096)->payload == c->payload);
}

BOOST_AUTO_TEST_SUITE_END()
