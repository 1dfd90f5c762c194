// What a node of a cluster takes from the shared log: deliveries made
// pending, accepted events, endpoint changes; nothing else. The records are
// made by the store's own writers and rendered as readers see them.
#include "actors/cluster_actors.hpp"
#include "storage/log_record.hpp"

#include <boost/test/unit_test.hpp>

using namespace tocsin;

namespace {

std::string rendered(std::uint64_t seq, storage::record_kind kind,
                     storage::log_form form, std::string_view fields) {
  auto stored = storage::stored_log_record(seq, 1000, kind, form, fields);
  std::string scratch;
  auto text = storage::render_log_record(seq, stored, scratch);
  BOOST_REQUIRE(text);
  return std::string{*text};
}

storage::delivery a_delivery(std::string id, std::string endpoint) {
  storage::delivery d;
  d.id = std::move(id);
  d.event_id = "evt_1";
  d.endpoint_id = std::move(endpoint);
  return d;
}

} // namespace

BOOST_AUTO_TEST_SUITE(log_follower)

BOOST_AUTO_TEST_CASE(deliveries_events_and_endpoint_changes_are_taken) {
  using storage::log_form;
  using storage::record_kind;
  actors::follow_batch b;
  auto created = a_delivery("dlv_1", "ops");
  actors::read_into(b, 7,
                    rendered(7, record_kind::delivery_created,
                             log_form::delivery_change,
                             storage::compact_delivery_change(
                                 created, record_kind::delivery_created)));
  // An id with an escape in it is read by parsing the record.
  auto odd = a_delivery("dlv_2", "we\"ird");
  actors::read_into(b, 8,
                    rendered(8, record_kind::delivery_replayed,
                             log_form::delivery_change,
                             storage::compact_delivery_change(
                                 odd, record_kind::delivery_replayed)));
  // Steps of a delivery its owner takes: not news for anyone.
  actors::read_into(
      b, 9,
      rendered(9, record_kind::attempt_started, log_form::delivery_change,
               storage::compact_delivery_change(created,
                                                record_kind::attempt_started)));
  storage::event_record e;
  e.id = "evt_1";
  e.delivery_ids = {"dlv_1"};
  actors::read_into(b, 10,
                    rendered(10, record_kind::event_accepted,
                             log_form::event_accepted,
                             storage::compact_event_accepted(e)));
  storage::changes put;
  put.endpoint_put("ops", R"({"url":"https://x/"})",
                   record_kind::endpoint_updated);
  actors::read_into(b, 11,
                    rendered(11, record_kind::endpoint_updated, log_form::json,
                             put.list().front().log_fields));
  storage::changes gone;
  gone.endpoint_deleted("old");
  actors::read_into(b, 12,
                    rendered(12, record_kind::endpoint_deleted, log_form::json,
                             gone.list().front().log_fields));
  BOOST_REQUIRE(b.pending.size() == 2u);
  BOOST_TEST(b.pending[0].delivery_id == "dlv_1");
  BOOST_TEST(b.pending[0].endpoint_id == "ops");
  BOOST_TEST(b.pending[0].seq == 7u);
  BOOST_TEST(b.pending[1].delivery_id == "dlv_2");
  BOOST_TEST(b.pending[1].endpoint_id == "we\"ird");
  BOOST_TEST(b.accepted == std::vector<std::string>{"evt_1"},
             boost::test_tools::per_element());
  BOOST_REQUIRE(b.endpoints.size() == 2u);
  BOOST_TEST(b.endpoints[0].first == "ops");
  BOOST_REQUIRE(b.endpoints[0].second.has_value());
  BOOST_TEST(*b.endpoints[0].second == R"({"url":"https://x/"})");
  BOOST_TEST(b.endpoints[1].first == "old");
  BOOST_TEST(!b.endpoints[1].second.has_value());
}

BOOST_AUTO_TEST_SUITE_END()
