#include "delivery/payload.hpp"

#include <boost/test/unit_test.hpp>

#include <nlohmann/json.hpp>

using namespace tocsin::delivery;
using nlohmann::ordered_json;

namespace {

std::string event_with(const ordered_json& details, std::string summary = "s") {
  ordered_json ev{{"id", "evt_01JD0000000000000000000000"},
                  {"type", "policy.denied"},
                  {"timestamp", "2026-11-27T05:10:00.123Z"},
                  {"agent_id", "agent-7"},
                  {"severity", "high"},
                  {"summary", summary},
                  {"details", details}};
  return ev.dump();
}

} // namespace

BOOST_AUTO_TEST_SUITE(payload)

BOOST_AUTO_TEST_CASE(small_payloads_pass_unchanged) {
  auto ev = event_with({{"action", "file.delete"}});
  BOOST_TEST(fit_payload(ev, 4096) == ev);
}

BOOST_AUTO_TEST_CASE(largest_details_are_cut_and_marked) {
  auto ev = event_with({{"action", "file.delete"},
                        {"rule", "block-delete"},
                        {"prompt", std::string(6000, 'p')},
                        {"output", std::string(3000, 'o')},
                        {"nested", {{"a", std::string(2000, 'n')}}}});
  auto fitted = fit_payload(ev, 4096);
  BOOST_TEST(fitted.size() <= 4096u);
  auto j = ordered_json::parse(fitted); // valid JSON
  BOOST_TEST(j["truncated"] == true);
  BOOST_TEST(j["details"]["action"] == "file.delete"); // small values kept
  BOOST_TEST(j["details"]["rule"] == "block-delete");
  BOOST_TEST(j["id"] == "evt_01JD0000000000000000000000");
  BOOST_TEST(j["details"]["prompt"].get<std::string>().size() < 6000u);
  // Field order of the payload is kept.
  BOOST_TEST(j.begin().key() == "id");
}

BOOST_AUTO_TEST_CASE(cuts_on_utf8_boundaries_and_escapes) {
  std::string euros;
  for (int i = 0; i < 3000; ++i)
    euros += "\xe2\x82\xac";     // €
  std::string quotes(3000, '"'); // each doubles when escaped
  auto fitted = fit_payload(event_with({{"a", euros}, {"b", quotes}}), 4096);
  BOOST_TEST(fitted.size() <= 4096u);
  auto j = ordered_json::parse(fitted); // throws on broken UTF-8
  BOOST_TEST(j["truncated"] == true);
}

BOOST_AUTO_TEST_CASE(the_summary_is_cut_only_as_a_last_resort) {
  std::string long_summary;
  for (int i = 0; i < 1024; ++i)
    long_summary += "\xf0\x9f\x94\x94"; // 4-byte characters: 4 KiB
  auto fitted = fit_payload(
      event_with({{"x", std::string(1000, 'x')}}, long_summary), 4096);
  BOOST_TEST(fitted.size() <= 4096u);
  auto j = ordered_json::parse(fitted);
  BOOST_TEST(j["summary"].get<std::string>().size() < long_summary.size());
}

BOOST_AUTO_TEST_CASE(many_members_fit_too) {
  // 1000 members (the most an object may have): every value is cut, then
  // members are dropped from the last until the keys fit; the result is
  // under the limit and keeps the first members.
  ordered_json details = ordered_json::object();
  for (int i = 0; i < 1000; ++i)
    details["k" + std::to_string(1000 + i)] = std::string(1000, 'v');
  auto fitted = fit_payload(event_with(details), 4096);
  BOOST_TEST(fitted.size() <= 4096u);
  auto j = ordered_json::parse(fitted);
  BOOST_TEST(j["truncated"] == true);
  BOOST_TEST(j["summary"] == "s"); // the summary was not needed
  BOOST_TEST(!j["details"].empty());
  BOOST_TEST(j["details"].begin().key() == "k1000");
  // Nested values count as one value each and become a marker.
  ordered_json nested = ordered_json::object();
  for (int i = 0; i < 50; ++i)
    nested["n" + std::to_string(i)] = {{"a", {{"b", std::string(200, 'x')}}}};
  fitted = fit_payload(event_with(nested), 4096);
  BOOST_TEST(fitted.size() <= 4096u);
  BOOST_TEST(ordered_json::parse(fitted)["details"]["n0"] == "[truncated]");
}

BOOST_AUTO_TEST_SUITE_END()
