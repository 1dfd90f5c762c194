// The dashboard in a real browser (Debian's chromium, headless, driven over
// the DevTools protocol): opened from a link with the token in the URL
// fragment (taken, then removed from the address bar), it shows events as
// they are posted, Acknowledge works end to end, a Replay from the page
// delivers, an event's attempts show on click. Screenshots are saved under
// the build's tests/screenshots.
#include "tests/e2e/fixture.hpp"
#include "tests/support/headless_browser.hpp"

#include <boost/test/unit_test.hpp>

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

BOOST_AUTO_TEST_SUITE_END()
