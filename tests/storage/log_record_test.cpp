// The log's stored records: the binary forms render to exactly the JSON the
// log showed when it stored every record as JSON (field for field, in the
// same order, escaped the same way), retention reads when a record was
// written from either form, and a damaged binary record reads as nothing.
#include "storage/log_record.hpp"

#include "common/json_writer.hpp"

#include <boost/test/unit_test.hpp>

using namespace tocsin;
using namespace tocsin::storage;

namespace {

/// The JSON record as the log wrote it before the binary forms: the header,
/// then the fields as written by the code of that version (kept here).
std::string as_json_record(std::uint64_t seq, unix_ms at, record_kind kind,
                           const delivery& d) {
  json_writer fields;
  fields.begin_object()
      .field("delivery_id", d.id)
      .field("event_id", d.event_id)
      .field("endpoint_id", d.endpoint_id)
      .field("state", to_string(d.state));
  if (d.news.state != event_state::open)
    fields.field("notice", to_string(d.news.state));
  if (carries_attempt(kind) && !d.attempts.empty())
    write_json(fields.key("attempt"), d.attempts.back());
  if (d.state == delivery_state::pending)
    fields.field("next_attempt_at", d.next_attempt_at);
  if (!d.reason.empty())
    fields.field("reason", d.reason);
  fields.end_object();
  return stored_log_record(seq, at, kind, log_form::json, fields.take());
}

std::string rendered(std::uint64_t seq, const std::string& stored) {
  std::string scratch;
  auto text = render_log_record(seq, stored, scratch);
  BOOST_REQUIRE(text.has_value());
  return std::string{*text};
}

delivery sample() {
  delivery d;
  d.id = "dlv_01JD0000000000000000000001";
  d.event_id = "evt_01JD0000000000000000000001";
  d.endpoint_id = "ep \"quoted\"\n";
  d.created_at = 1000;
  d.next_attempt_at = 1500;
  d.news.by = "someone"; // not shown: only the state is
  attempt a;
  a.number = 1;
  a.started_at = 1100;
  a.finished_at = 1200;
  a.status = 503;
  a.latency_ms = 12.25;
  a.response = "busy \xe2\x9c\x93 \x01";
  a.error = "tls: handshake";
  d.attempts = {attempt{}, a};
  return d;
}

} // namespace

BOOST_AUTO_TEST_SUITE(log_records)

BOOST_AUTO_TEST_CASE(delivery_changes_render_as_the_json_they_replace) {
  for (auto kind :
       {record_kind::delivery_created, record_kind::attempt_started,
        record_kind::attempt_finished, record_kind::attempt_interrupted,
        record_kind::delivery_replayed}) {
    for (auto state : {delivery_state::pending, delivery_state::delivered,
                       delivery_state::dead_lettered}) {
      for (auto news : {event_state::open, event_state::resolved}) {
        auto d = sample();
        d.state = state;
        d.news.state = news;
        d.reason = state == delivery_state::dead_lettered ? "gone: 410" : "";
        auto stored = stored_log_record(42, 1'764'201'600'123, kind,
                                        log_form::delivery_change,
                                        compact_delivery_change(d, kind));
        BOOST_TEST(stored.size() < as_json_record(42, 0, kind, d).size());
        BOOST_TEST(rendered(42, stored) ==
                   as_json_record(42, 1'764'201'600'123, kind, d));
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(an_attempt_names_its_node_when_it_has_one) {
  auto d = sample();
  d.attempts.back().node = "node-a";
  auto kind = record_kind::attempt_finished;
  auto stored = stored_log_record(5, 77, kind, log_form::delivery_change,
                                  compact_delivery_change(d, kind));
  auto text = rendered(5, stored);
  BOOST_TEST(text == as_json_record(5, 77, kind, d));
  BOOST_TEST(text.find(R"("error":"tls: handshake","node":"node-a"})") !=
                 std::string::npos,
             text);
  d.attempts.back().node.clear(); // alone: no "node" at all
  stored = stored_log_record(5, 77, kind, log_form::delivery_change,
                             compact_delivery_change(d, kind));
  BOOST_TEST(rendered(5, stored).find("node") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(outcomes_and_accepted_events_render_as_before) {
  auto d = sample();
  d.reason = "attempts exhausted";
  auto outcome = stored_log_record(7, 99, record_kind::delivery_dead_lettered,
                                   log_form::delivery_outcome,
                                   compact_delivery_outcome(d));
  BOOST_TEST(
      rendered(7, outcome) ==
      R"({"seq":7,"at":99,"kind":"delivery.dead_lettered",)"
      R"("delivery_id":"dlv_01JD0000000000000000000001",)"
      R"("event_id":"evt_01JD0000000000000000000001",)"
      R"("endpoint_id":"ep \"quoted\"\n","reason":"attempts exhausted"})");
  d.reason.clear();
  outcome = stored_log_record(8, 99, record_kind::delivery_delivered,
                              log_form::delivery_outcome,
                              compact_delivery_outcome(d));
  BOOST_TEST(rendered(8, outcome) ==
             R"({"seq":8,"at":99,"kind":"delivery.delivered",)"
             R"("delivery_id":"dlv_01JD0000000000000000000001",)"
             R"("event_id":"evt_01JD0000000000000000000001",)"
             R"("endpoint_id":"ep \"quoted\"\n"})");

  event_record e;
  e.id = "evt_1";
  for (auto ids : {std::vector<std::string>{},
                   std::vector<std::string>{"dlv_1", "dlv_2", "dlv_3"}}) {
    e.delivery_ids = ids;
    auto stored =
        stored_log_record(9, 5, record_kind::event_accepted,
                          log_form::event_accepted, compact_event_accepted(e));
    std::string list;
    for (auto& id : ids)
      list += (list.empty() ? "\"" : ",\"") + id + "\"";
    BOOST_TEST(rendered(9, stored) ==
               R"({"seq":9,"at":5,"kind":"event.accepted","event_id":"evt_1",)"
               R"("deliveries":[)" +
                   list + "]}");
  }
}

BOOST_AUTO_TEST_CASE(json_records_read_as_stored_and_both_forms_tell_when) {
  auto json =
      stored_log_record(3, 1'764'201'600'777, record_kind::endpoint_flagged,
                        log_form::json, R"({"endpoint_id":"ep"})");
  BOOST_TEST(json == R"({"seq":3,"at":1764201600777,"kind":"endpoint.flagged",)"
                     R"("endpoint_id":"ep"})");
  BOOST_TEST(rendered(3, json) == json);
  BOOST_TEST(log_record_at(json).value_or(0) == 1'764'201'600'777);
  auto binary = stored_log_record(
      4, 1'764'201'600'778, record_kind::delivery_delivered,
      log_form::delivery_outcome, compact_delivery_outcome(sample()));
  BOOST_TEST(log_record_at(binary).value_or(0) == 1'764'201'600'778);
}

BOOST_AUTO_TEST_CASE(a_damaged_binary_record_reads_as_nothing) {
  auto d = sample();
  event_record e;
  e.id = "evt_1";
  e.delivery_ids = {"dlv_1", "dlv_2"};
  for (auto& stored :
       {stored_log_record(
            1, 2, record_kind::attempt_finished, log_form::delivery_change,
            compact_delivery_change(d, record_kind::attempt_finished)),
        stored_log_record(1, 2, record_kind::delivery_delivered,
                          log_form::delivery_outcome,
                          compact_delivery_outcome(d)),
        stored_log_record(1, 2, record_kind::event_accepted,
                          log_form::event_accepted,
                          compact_event_accepted(e))}) {
    // Every cut short of the whole record fails; none crashes.
    for (std::size_t n = 1; n < stored.size(); ++n) {
      std::string scratch;
      BOOST_TEST(!render_log_record(1, stored.substr(0, n), scratch),
                 "cut at " << n);
    }
    auto unknown = stored;
    unknown[1] = 'z'; // a form this version does not know
    std::string scratch;
    BOOST_TEST(!render_log_record(1, unknown, scratch));
  }
}

BOOST_AUTO_TEST_SUITE_END()
