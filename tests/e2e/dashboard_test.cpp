// The dashboard in a real browser (Debian's chromium, headless, driven over
// the DevTools protocol): opened from a link with the token in the URL
// fragment (taken, then removed from the address bar), it shows events as
// they are posted, Acknowledge works end to end, a Replay from the page
// delivers, an event's attempts show on click. Screenshots are saved under
// the build's tests/screenshots.
#include "tests/e2e/fixture.hpp"
#include "tests/support/headless_browser.hpp"

#include <boost/test/unit_test.hpp>

#include <algorithm>

using namespace tocsin::test;
using nlohmann::json;

namespace {

std::filesystem::path screenshots() {
  auto dir = std::filesystem::path{TOCSIN_TEST_OUTPUT_DIR} / "screenshots";
  std::filesystem::create_directories(dir);
  return dir;
}

std::string js_string(const std::string& s) {
  return json(s).dump();
}

} // namespace

BOOST_AUTO_TEST_SUITE(dashboard)

BOOST_AUTO_TEST_CASE(
    the_dashboard_shows_acknowledges_and_replays_in_a_browser) {
  daemon_fixture f;
  auto ok = f.make_receiver();
  // Refuses the first delivery for good (a dead letter), takes the replay.
  auto flaky = f.make_receiver(first_then(answer(400, "no"), answer(200)));
  f.start({{"ops", daemon_fixture::url_of(*ok)},
           {"flaky", daemon_fixture::url_of(*flaky), "[0.05]",
            R"(event_types = ["anomaly.detected"])"}});
  // The page itself needs no token and loads nothing from elsewhere.
  auto page = f.get("/");
  BOOST_TEST(page.status == 200);
  BOOST_TEST(page.headers["content-type"].rfind("text/html", 0) == 0u);
  auto& csp = page.headers["content-security-policy"];
  BOOST_TEST(csp.find("default-src 'self'") != std::string::npos, csp);
  // The page may open connections to this host only (its stream included:
  // 'self' covers ws:// to the same host), not to any ws: or wss: host.
  BOOST_TEST(csp.find("connect-src 'self';") != std::string::npos, csp);
  BOOST_TEST(csp.find("ws:") == std::string::npos, csp);
  BOOST_TEST(page.body.find("http") == std::string::npos); // no CDN
  BOOST_TEST(f.get("/dashboard/chart.js").body.find("Chart.js v") !=
             std::string::npos);

  headless_browser b{f.dir() / "browser"};
  BOOST_REQUIRE_MESSAGE(b.ok(), b.error());
  auto base = "http://127.0.0.1:" + std::to_string(f.api_port());
  b.navigate(base + "/#token=" + f.admin_token());
  BOOST_REQUIRE_MESSAGE(b.wait_for("document.querySelector('.conn.up')"),
                        "not connected: " << b.error() << b.console());
  // The token left the address bar (it stays in this tab's session).
  BOOST_TEST(b.eval("location.href").get<std::string>() == base + "/");
  BOOST_TEST(b.eval("sessionStorage.getItem('tocsin.token')") ==
             f.admin_token());

  // Events posted now appear, with their severity's colour.
  auto critical = sample_event("agent-9");
  critical["severity"] = "critical";
  critical["summary"] = "agent-9 tried to exfiltrate credentials";
  auto id = f.post_events(critical).at(0);
  auto anomaly = sample_event("agent-3");
  anomaly["type"] = "anomaly.detected";
  auto dead_id = f.post_events(anomaly).at(0);
  auto row =
      "document.querySelector('#feed tr[data-id=" + js_string(id) + "]')";
  BOOST_REQUIRE_MESSAGE(b.wait_for(row), b.error() << b.console());
  BOOST_TEST(b.eval(row + ".querySelector('.sev').className") ==
             "sev sev-critical");
  BOOST_TEST(
      b.eval(row + ".textContent").get<std::string>().find("exfiltrate") !=
      std::string::npos);
  // The charts are drawn (Chart.js from the binary).
  BOOST_TEST(b.eval("typeof Chart") == "function");
  f.wait_finished(id);
  f.wait_finished(dead_id);
  BOOST_REQUIRE(b.wait_for("document.querySelector('#dead tr[data-id]')",
                           std::chrono::seconds{20}));
  BOOST_REQUIRE(b.wait_for("document.querySelector('#endpoints tr[data-id]')"));
  // Each endpoint's in-flight limit, as its receiver's answers set it: the
  // limit starts at 16 (nothing was ever queued long enough to move it).
  BOOST_REQUIRE_MESSAGE(
      b.wait_for("document.querySelector('#endpoints tr[data-id] "
                 "td.in-flight').textContent.endsWith(' / 16')"),
      b.eval("document.querySelector('#endpoints').textContent").dump());
  BOOST_TEST(b.screenshot(screenshots() / "dashboard.png"));

  // Acknowledge from the page: recorded by the API, shown from the stream.
  b.eval(row + ".querySelector('.ack').click()");
  BOOST_REQUIRE_MESSAGE(
      b.wait_for(row + ".querySelector('.state').textContent.startsWith("
                       "'acknowledged')"),
      b.console());
  auto ev = f.event(id);
  BOOST_TEST(ev["state"] == "acknowledged");
  BOOST_TEST(ev["acknowledged"]["source"] == "api");

  // An event's attempts on click.
  b.eval(row + ".click()");
  BOOST_REQUIRE(b.wait_for("document.querySelector('#detail tr.attempt')"));
  BOOST_TEST(b.eval("document.querySelector('#detail').textContent")
                 .get<std::string>()
                 .find("200") != std::string::npos);

  // Replay the dead letter from the page: delivered this time.
  BOOST_REQUIRE(b.wait_for("document.querySelector('#dead button.replay')"));
  b.eval("document.querySelector('#dead button.replay').click()");
  BOOST_REQUIRE(flaky->wait_for(2, std::chrono::seconds{20}));
  auto replayed = f.wait_finished(dead_id);
  for (auto& d : replayed["deliveries"])
    if (d["endpoint_id"] == "flaky")
      BOOST_TEST(d["state"] == "delivered", d.dump());
  BOOST_TEST(b.screenshot(screenshots() / "dashboard-after.png"));
  BOOST_TEST(b.console().find("Error") == std::string::npos, b.console());
}

BOOST_AUTO_TEST_CASE(
    the_dashboard_opens_with_the_stored_events_and_their_states) {
  daemon_fixture f;
  f.start({});
  // 50 events before the page is opened: every seventh critical; some
  // acknowledged, one resolved.
  json batch = json::array();
  for (int i = 0; i < 50; ++i) {
    auto e = sample_event("agent-" + std::to_string(i % 4));
    e["severity"] = i % 7 == 0 ? "critical" : "medium";
    e["summary"] = "stored event " + std::to_string(i);
    batch.push_back(e);
  }
  auto ids = f.post_events(json{{"events", batch}});
  BOOST_REQUIRE_EQUAL(ids.size(), 50u);
  std::vector<std::size_t> acked{0, 3, 14, 20, 41}; // 0 and 14 critical
  for (auto i : acked)
    BOOST_REQUIRE(
        f.call("POST", "/v1/events/" + ids[i] + "/ack", json{{"by", "alice"}})
            .status == 200);
  BOOST_REQUIRE(f.call("POST", "/v1/events/" + ids[20] + "/resolve",
                       json{{"by", "alice"}})
                    .status == 200);
  auto state_of = [&](std::size_t i) -> std::string {
    if (i == 20)
      return "resolved";
    return std::find(acked.begin(), acked.end(), i) != acked.end()
               ? "acknowledged"
               : "open";
  };

  headless_browser b{f.dir() / "browser"};
  BOOST_REQUIRE_MESSAGE(b.ok(), b.error());
  auto base = "http://127.0.0.1:" + std::to_string(f.api_port());
  b.navigate(base + "/#token=" + f.admin_token());
  auto rows = std::string{"document.querySelectorAll('#feed tbody tr')"};
  BOOST_REQUIRE_MESSAGE(
      b.wait_for("document.querySelector('#feed[data-loaded]') && "
                 "document.querySelector('.conn.up')"),
      b.error() << b.console());
  // All of them, newest first, each with its state.
  BOOST_TEST(b.eval(rows + ".length") == 50);
  BOOST_TEST(b.eval(rows + "[0].dataset.id") == ids[49]);
  BOOST_TEST(b.eval(rows + "[49].dataset.id") == ids[0]);
  auto states = b.eval("[..." + rows +
                       "].map(r => r.querySelector('.state').textContent)");
  BOOST_REQUIRE(states.is_array());
  for (std::size_t i = 0; i < 50; ++i) {
    auto expected = state_of(i);
    if (expected != "open")
      expected += " by alice";
    BOOST_TEST(states[49 - i] == expected, "event " << i);
  }
  auto row = [&](const std::string& id) {
    return "document.querySelector('#feed tr[data-id=" + js_string(id) + "]')";
  };
  BOOST_TEST(b.eval(row(ids[3]) + ".querySelector('.ack').disabled") == true);
  BOOST_TEST(b.eval(row(ids[20]) + ".querySelector('.resolve').disabled") ==
             true);
  BOOST_TEST(b.eval(row(ids[7]) + ".querySelector('.sev').className") ==
             "sev sev-critical");

  // Live from here on: a new event shows once, a later answer changes the
  // stored event's row.
  auto live = f.post_events(sample_event("agent-live")).at(0);
  BOOST_REQUIRE_MESSAGE(b.wait_for(row(live)), b.console());
  BOOST_REQUIRE(
      f.call("POST", "/v1/events/" + ids[7] + "/ack", json{{"by", "bob"}})
          .status == 200);
  BOOST_REQUIRE_MESSAGE(b.wait_for(row(ids[7]) +
                                   ".querySelector('.state').textContent == "
                                   "'acknowledged by bob'"),
                        b.console());
  BOOST_TEST(b.eval(rows + ".length") == 51);
  BOOST_TEST(b.eval(rows + "[0].dataset.id") == live);
  BOOST_TEST(b.eval("document.querySelectorAll('#feed tr[data-id=" +
                    js_string(ids[10]) + "]').length") == 1);

  // A stream that starts over (resumed from the log's first record) brings
  // every event and answer again: each event still shows once, and no
  // state goes back (event 20's acknowledgement comes before its
  // resolution again).
  b.eval("state.lastSeq = 0; state.ws.close()");
  auto marker = f.post_events(sample_event("agent-marker")).at(0);
  BOOST_REQUIRE_MESSAGE(b.wait_for(row(marker)), b.console());
  BOOST_TEST(b.eval(rows + ".length") == 52);
  BOOST_TEST(b.eval(rows + "[0].dataset.id") == marker);
  auto again = b.eval("[..." + rows +
                      "].map(r => r.querySelector('.state').textContent)");
  BOOST_REQUIRE(again.is_array());
  for (std::size_t i = 0; i < 50; ++i) {
    auto expected = i == 7 ? std::string{"acknowledged by bob"} : state_of(i);
    if (expected == "acknowledged" || expected == "resolved")
      expected += " by alice";
    BOOST_TEST(again[51 - i] == expected, "event " << i);
  }

  // Open events only.
  b.eval("document.getElementById('f-open').click()");
  std::size_t open = 2; // the live one and the marker
  for (std::size_t i = 0; i < 50; ++i)
    open += i != 7 && state_of(i) == "open";
  BOOST_TEST(b.eval("[..." + rows + "].filter(r => !r.hidden).length") == open);
  BOOST_TEST(b.eval(row(ids[3]) + ".hidden") == true);
  BOOST_TEST(b.eval(row(ids[49]) + ".hidden") == false);
  BOOST_TEST(b.screenshot(screenshots() / "dashboard-open-only.png"));

  // 200 more: the first 50 are past the latest 200 the page loads, but
  // their open critical ones still show (and the answered ones do not).
  json more = json::array();
  for (int i = 0; i < 200; ++i)
    more.push_back(sample_event("agent-later"));
  f.post_events(json{{"events", more}});
  // From a link to one of the events that are not in the feed any more:
  // its details.
  b.navigate("about:blank");
  BOOST_REQUIRE(b.wait_for("location.href == 'about:blank'"));
  b.navigate(base + "/#event=" + ids[14]);
  BOOST_REQUIRE_MESSAGE(
      b.wait_for("document.querySelector('#feed[data-loaded]')"), b.console());
  BOOST_REQUIRE_MESSAGE(
      b.wait_for("document.querySelector('#detail:not([hidden]) .summary')"),
      b.error() << b.console());
  auto detail = b.eval("document.querySelector('#detail').textContent")
                    .get<std::string>();
  BOOST_TEST(contains(detail, ids[14]), detail);
  BOOST_TEST(contains(detail, "acknowledged"), detail);
  BOOST_TEST(contains(detail, "stored event 14"), detail);
  BOOST_TEST(contains(detail, "acknowledged by alice (api)"), detail);
  BOOST_TEST(contains(detail, "critical"), detail);
  BOOST_TEST(b.eval(row(ids[14])).is_null());
  std::size_t open_critical = 0;
  for (std::size_t i = 0; i < 50; ++i) {
    bool shown = !b.eval(row(ids[i])).is_null();
    bool expected = i % 7 == 0 && i != 7 && state_of(i) == "open";
    open_critical += expected;
    BOOST_TEST(shown == expected, "event " << i);
  }
  BOOST_TEST(open_critical == 5u);
  BOOST_TEST(b.eval(rows + ".length") == 200 + open_critical);
  BOOST_TEST(b.screenshot(screenshots() / "dashboard-event-link.png"));
  BOOST_TEST(b.console().find("Error") == std::string::npos, b.console());
}

BOOST_AUTO_TEST_SUITE_END()
