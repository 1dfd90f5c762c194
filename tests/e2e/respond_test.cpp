// Answers to an alert through the real daemon: a click on "Acknowledge" in a
// Slack message (signed as Slack signs, forged, stale and replayed ones
// refused), a PagerDuty webhook, and POST /v1/events/{id}/ack|resolve; each
// answer recorded once, told to the endpoints that follow an event's state
// (the clicked Slack message replaced, the PagerDuty incident acknowledged
// and resolved), and kept across a SIGKILL.
#include "tests/e2e/answering.hpp"

#include "common/ids.hpp"

#include <boost/test/unit_test.hpp>

#include <cctype>
#include <ctime>
#include <thread>

using namespace tocsin::test;
using nlohmann::json;

BOOST_AUTO_TEST_SUITE(respond)

BOOST_AUTO_TEST_CASE(
    a_slack_click_acknowledges_replaces_the_message_and_acknowledges_pagerduty) {
  daemon_fixture f;
  auto slack = f.make_receiver(always(slack_ok()));
  auto pagerduty = f.make_receiver(always(pagerduty_accepted()));
  auto reply = f.make_receiver(always(response_url_ok()));
  f.start({}, "", slack_config());
  auto ep_slack =
      create_endpoint(f, slack_endpoint(*slack))["id"].get<std::string>();
  auto ep_pd = create_endpoint(f, pagerduty_endpoint(*pagerduty))["id"]
                   .get<std::string>();
  std::vector<const https_receiver*> all{slack.get(), pagerduty.get(),
                                         reply.get()};

  auto id = f.post_events(sample_event()).at(0);
  auto ev = wait_deliveries(f, id, 2);
  BOOST_REQUIRE_EQUAL(ev["deliveries"].size(), 2u);
  for (auto& d : ev["deliveries"])
    BOOST_REQUIRE_MESSAGE(d["state"] == "delivered", d.dump());
  BOOST_TEST(ev["state"] == "open");
  BOOST_TEST(!ev.contains("acknowledged"));
  BOOST_REQUIRE_EQUAL(slack->count(), 1u);
  BOOST_REQUIRE_EQUAL(pagerduty->count(), 1u);
  // The message has the button the click comes from.
  BOOST_TEST(has_ack_button(body_of(slack->requests()[0])));
  BOOST_TEST(body_of(pagerduty->requests()[0])["event_action"] == "trigger");

  auto body = click_body(id, response_url_of(*reply));
  auto still_open = [&](const std::string& what) {
    auto now = f.event(id);
    BOOST_TEST(now["state"] == "open", what << ": " << now.dump());
    BOOST_TEST(!now.contains("acknowledged"), what << ": " << now.dump());
    expect_quiet(all, {1, 1, 0}, what);
  };

  // Forged: signed with another secret.
  {
    auto ts = unix_seconds();
    auto r = post_slack(
        f, body, ts, slack_signature("not-the-slack-signing-secret", ts, body));
    BOOST_TEST(r.status == 401, r.body);
    BOOST_TEST(error_code(r) == "invalid_signature");
    still_open("a forged click");
  }
  // Stale: correctly signed 301 s ago.
  {
    auto ts = unix_seconds(-301);
    auto r = post_slack(f, body, ts, slack_signature(slack_secret, ts, body));
    BOOST_TEST(r.status == 401, r.body);
    BOOST_TEST(error_code(r) == "stale_request");
    still_open("a stale click");
  }
  // Replayed: a valid signature of another body (another user's click on
  // another message) sent with this body.
  {
    auto ts = unix_seconds();
    auto other = click_body(tocsin::new_id("evt"), response_url_of(*reply),
                            "mallory", "U666");
    auto r = post_slack(f, body, ts, slack_signature(slack_secret, ts, other));
    BOOST_TEST(r.status == 401, r.body);
    BOOST_TEST(error_code(r) == "invalid_signature");
    still_open("a replayed signature");
  }
  // No signature at all.
  {
    auto r = f.client().request(
        "POST", "/v1/integrations/slack/interactions", body,
        {{"content-type", "application/x-www-form-urlencoded"}});
    BOOST_TEST(r.status == 401, r.body);
    still_open("an unsigned click");
  }

  // Alice clicks: answered at once, with nothing to show.
  auto clicked = click(f, body);
  BOOST_TEST(clicked.status == 200, clicked.body << clicked.error);
  BOOST_TEST(clicked.body.empty(), clicked.body);

  // The clicked message is replaced through its response_url: the same
  // message, no button, who acknowledged it.
  BOOST_REQUIRE_MESSAGE(reply->wait_for(1, wait_time),
                        "no request to the response_url");
  auto replaced = reply->requests().at(0);
  BOOST_TEST(replaced.method == "POST");
  BOOST_TEST(replaced.target == "/actions/T1/2/abc");
  auto msg = body_of(replaced);
  BOOST_TEST(msg["replace_original"] == true, msg.dump());
  BOOST_TEST(!has_ack_button(msg), msg.dump());
  BOOST_TEST(contains(context_text(msg), "acknowledged by alice"), msg.dump());
  BOOST_TEST(contains(context_text(msg), id), msg.dump());

  // PagerDuty is told to acknowledge the incident the trigger opened.
  BOOST_REQUIRE_MESSAGE(pagerduty->wait_for(2, wait_time),
                        "no acknowledge to PagerDuty");
  auto pd_ack = body_of(pagerduty->requests().at(1));
  BOOST_TEST(pd_ack["event_action"] == "acknowledge", pd_ack.dump());
  BOOST_TEST(pd_ack["dedup_key"] == "tocsin-" + id, pd_ack.dump());
  BOOST_TEST(pd_ack["routing_key"] == routing_key, pd_ack.dump());

  ev = wait_state(f, id, "acknowledged");
  ev = wait_deliveries(f, id, 4);
  BOOST_TEST(ev["state"] == "acknowledged");
  auto acknowledged = ev["acknowledged"];
  BOOST_TEST(contains(acknowledged.value("by", ""), "alice"), ev.dump());
  BOOST_TEST(acknowledged["source"] == "slack", ev.dump());
  BOOST_TEST(acknowledged["at"].is_string(), ev.dump());
  BOOST_TEST(!ev.contains("resolved"), ev.dump());
  BOOST_REQUIRE_EQUAL(ev["deliveries"].size(), 4u);
  for (auto& ep : {ep_slack, ep_pd}) {
    auto notices = deliveries_to(ev, ep, "acknowledged");
    BOOST_REQUIRE_MESSAGE(notices.size() == 1u, ep << ": " << ev.dump());
    BOOST_TEST(notices[0]["state"] == "delivered", notices[0].dump());
  }
  // The Slack endpoint's own URL got nothing new: the news went to the
  // clicked message.
  expect_quiet(all, {1, 2, 1}, "the click");

  // A second click (freshly signed): answered, and nothing changes.
  auto again = click(f, body);
  BOOST_TEST(again.status == 200, again.body << again.error);
  BOOST_TEST(eventually([&] {
               return contains(f.process().log(),
                               "Slack answer to an event already in that "
                               "state");
             }),
             "the second click was not seen");
  expect_quiet(all, {1, 2, 1}, "a second click");
  auto after_again = f.event(id);
  BOOST_TEST(after_again["state"] == "acknowledged");
  BOOST_TEST(after_again["acknowledged"] == acknowledged, after_again.dump());
  BOOST_TEST(after_again["deliveries"].size() == 4u, after_again.dump());

  // Bob resolves it through the API.
  auto resolved = f.call("POST", "/v1/events/" + id + "/resolve",
                         {{"by", "bob"}, {"note", "rule fixed"}});
  BOOST_TEST(resolved.status == 200, resolved.body);
  auto out = answer_of(resolved);
  BOOST_TEST(out["id"] == id);
  BOOST_TEST(out["state"] == "resolved", out.dump());
  BOOST_TEST(out["changed"] == true, out.dump());
  BOOST_TEST(out["notices"] == 2, out.dump());
  BOOST_TEST(out["resolved"]["by"] == "bob", out.dump());
  BOOST_TEST(out["resolved"]["note"] == "rule fixed", out.dump());
  BOOST_TEST(out["resolved"]["source"] == "api", out.dump());
  BOOST_TEST(out["acknowledged"] == acknowledged, out.dump());

  // PagerDuty resolves the incident; Slack gets a new message that says so.
  BOOST_REQUIRE_MESSAGE(pagerduty->wait_for(3, wait_time),
                        "no resolve to PagerDuty");
  auto pd_resolve = body_of(pagerduty->requests().at(2));
  BOOST_TEST(pd_resolve["event_action"] == "resolve", pd_resolve.dump());
  BOOST_TEST(pd_resolve["dedup_key"] == "tocsin-" + id, pd_resolve.dump());
  BOOST_TEST(pd_resolve["routing_key"] == routing_key, pd_resolve.dump());
  BOOST_REQUIRE_MESSAGE(slack->wait_for(2, wait_time),
                        "no resolved message to Slack");
  auto news = slack->requests().at(1);
  BOOST_TEST(news.target == "/hook");
  auto news_msg = body_of(news);
  BOOST_TEST(!news_msg.contains("replace_original"), news_msg.dump());
  BOOST_TEST(!has_ack_button(news_msg), news_msg.dump());
  BOOST_TEST(contains(context_text(news_msg), "resolved by bob"),
             news_msg.dump());

  ev = wait_deliveries(f, id, 6);
  BOOST_TEST(ev["state"] == "resolved", ev.dump());
  BOOST_TEST(ev["resolved"]["by"] == "bob", ev.dump());
  BOOST_TEST(ev["resolved"]["note"] == "rule fixed", ev.dump());
  BOOST_TEST(ev["resolved"]["source"] == "api", ev.dump());
  BOOST_TEST(ev["acknowledged"] == acknowledged, ev.dump());
  BOOST_TEST(ev["deliveries"].size() == 6u, ev.dump());
  for (auto& ep : {ep_slack, ep_pd}) {
    auto notices = deliveries_to(ev, ep, "resolved");
    BOOST_REQUIRE_MESSAGE(notices.size() == 1u, ep << ": " << ev.dump());
    BOOST_TEST(notices[0]["state"] == "delivered", notices[0].dump());
  }
  expect_quiet(all, {2, 3, 1}, "the resolve");

  // Acknowledging a resolved event changes nothing.
  auto late = f.call("POST", "/v1/events/" + id + "/ack", json::object());
  BOOST_TEST(late.status == 200, late.body);
  auto late_out = answer_of(late);
  BOOST_TEST(late_out["changed"] == false, late_out.dump());
  BOOST_TEST(late_out["state"] == "resolved", late_out.dump());
  BOOST_TEST(late_out["notices"] == 0, late_out.dump());
  BOOST_TEST(late_out["acknowledged"] == acknowledged, late_out.dump());
  expect_quiet(all, {2, 3, 1}, "an ack of a resolved event");
  BOOST_TEST(f.event(id)["deliveries"].size() == 6u);
}

BOOST_AUTO_TEST_CASE(a_pagerduty_webhook_acknowledges_the_event_it_opened) {
  daemon_fixture f;
  auto slack = f.make_receiver(always(slack_ok()));
  auto pagerduty = f.make_receiver(always(pagerduty_accepted()));
  f.start({}, "", pagerduty_config());
  auto ep_pd = create_endpoint(f, pagerduty_endpoint(*pagerduty))["id"]
                   .get<std::string>();
  auto ep_slack =
      create_endpoint(f, slack_endpoint(*slack))["id"].get<std::string>();
  std::vector<const https_receiver*> all{slack.get(), pagerduty.get()};

  auto id = f.post_events(sample_event()).at(0);
  auto ev = wait_deliveries(f, id, 2);
  for (auto& d : ev["deliveries"])
    BOOST_REQUIRE_MESSAGE(d["state"] == "delivered", d.dump());
  BOOST_REQUIRE_EQUAL(slack->count(), 1u);
  BOOST_REQUIRE_EQUAL(pagerduty->count(), 1u);
  auto incident_key = "tocsin-" + id;
  BOOST_TEST(body_of(pagerduty->requests()[0])["dedup_key"] == incident_key);

  // A bad signature: refused, nothing recorded.
  auto acked = pagerduty_body("incident.acknowledged", incident_key);
  for (auto& sig :
       {pagerduty_signature("not-the-pagerduty-webhook-secret", acked),
        pagerduty_signature(pagerduty_secret, acked + " "), std::string{""}}) {
    auto r = post_pagerduty(f, acked, sig);
    BOOST_TEST(r.status == 401, sig << ": " << r.body);
    BOOST_TEST(error_code(r) == "invalid_signature", r.body);
  }
  BOOST_TEST(f.event(id)["state"] == "open");
  expect_quiet(all, {1, 1}, "badly signed webhooks");

  // Bob acknowledges the incident in PagerDuty.
  auto r =
      post_pagerduty(f, acked, pagerduty_signature(pagerduty_secret, acked));
  BOOST_TEST(r.status == 200, r.body << r.error);
  auto out = answer_of(r);
  BOOST_TEST(out["recorded"] == 1, out.dump());
  BOOST_TEST(out["event"]["id"] == id, out.dump());
  BOOST_TEST(out["event"]["state"] == "acknowledged", out.dump());
  BOOST_TEST(out["event"]["changed"] == true, out.dump());
  BOOST_TEST(out["event"]["acknowledged"]["by"] == "Bob Oncall", out.dump());
  // Answered once durable: the event shows it at once.
  ev = f.event(id);
  BOOST_TEST(ev["state"] == "acknowledged", ev.dump());
  BOOST_TEST(ev["acknowledged"]["by"] == "Bob Oncall", ev.dump());
  BOOST_TEST(ev["acknowledged"]["source"] == "pagerduty", ev.dump());
  auto acknowledged = ev["acknowledged"];

  // Slack gets a new message that says so.
  BOOST_REQUIRE_MESSAGE(slack->wait_for(2, wait_time),
                        "no acknowledged message to Slack");
  auto news = slack->requests().at(1);
  BOOST_TEST(news.target == "/hook");
  auto news_msg = body_of(news);
  BOOST_TEST(!news_msg.contains("replace_original"), news_msg.dump());
  BOOST_TEST(!has_ack_button(news_msg), news_msg.dump());
  BOOST_TEST(contains(context_text(news_msg), "acknowledged by Bob Oncall"),
             news_msg.dump());
  // Every notice the answer announced is delivered.
  auto notices = out["event"]["notices"].get<std::size_t>();
  ev = wait_deliveries(f, id, 2 + notices);
  BOOST_TEST(notice_count(ev) == notices, ev.dump());
  BOOST_TEST(deliveries_to(ev, ep_slack, "acknowledged").size() == 1u,
             ev.dump());
  for (auto& d : ev["deliveries"])
    BOOST_TEST(d["state"] == "delivered", d.dump());
  // (PagerDuty is told too when its endpoint follows the event's state: an
  // acknowledge of an acknowledged incident changes nothing there.)
  BOOST_TEST_MESSAGE("pagerduty webhook: " << notices << " notices, "
                                           << pagerduty->count()
                                           << " requests to PagerDuty");
  auto pd_count = pagerduty->count();
  for (std::size_t i = 1; i < pd_count; ++i) {
    auto pd = body_of(pagerduty->requests().at(i));
    BOOST_TEST(pd["event_action"] == "acknowledge", pd.dump());
    BOOST_TEST(pd["dedup_key"] == incident_key, pd.dump());
  }
  expect_quiet(all, {2, pd_count}, "the acknowledgement");

  // An incident tocsin did not open, or of an event it does not have:
  // answered, nothing recorded.
  for (auto& key : {std::string{"PD-4f2a9c"}, "tocsin-" + tocsin::new_id("evt"),
                    std::string{"tocsin-nonsense"}}) {
    auto other = pagerduty_body("incident.resolved", key);
    auto ro =
        post_pagerduty(f, other, pagerduty_signature(pagerduty_secret, other));
    BOOST_TEST(ro.status == 200, key << ": " << ro.body);
    BOOST_TEST(answer_of(ro)["recorded"] == 0, key << ": " << ro.body);
  }
  // Other event types are answered and ignored.
  auto reassigned = pagerduty_body("incident.reassigned", incident_key);
  auto rr = post_pagerduty(f, reassigned,
                           pagerduty_signature(pagerduty_secret, reassigned));
  BOOST_TEST(rr.status == 200, rr.body);
  BOOST_TEST(answer_of(rr)["recorded"] == 0, rr.body);
  ev = f.event(id);
  BOOST_TEST(ev["state"] == "acknowledged", ev.dump());
  expect_quiet(all, {2, pd_count}, "webhooks of other incidents");

  // The same webhook again (PagerDuty retries), signed while the secret is
  // rotated: accepted, and nothing changes.
  auto rotated =
      pagerduty_signature("the-old-pagerduty-webhook-secret", acked) + "," +
      pagerduty_signature(pagerduty_secret, acked);
  auto ra = post_pagerduty(f, acked, rotated);
  BOOST_TEST(ra.status == 200, ra.body);
  auto again = answer_of(ra);
  BOOST_TEST(again["recorded"] == 1, again.dump());
  BOOST_TEST(again["event"]["changed"] == false, again.dump());
  BOOST_TEST(again["event"]["notices"] == 0, again.dump());
  BOOST_TEST(f.event(id)["acknowledged"] == acknowledged);
  expect_quiet(all, {2, pd_count}, "a repeated webhook");

  // Resolved in PagerDuty (signature listed second of two).
  auto res = pagerduty_body("incident.resolved", incident_key, "Carol Lead");
  auto rs = post_pagerduty(
      f, res,
      pagerduty_signature("the-old-pagerduty-webhook-secret", res) + ", " +
          pagerduty_signature(pagerduty_secret, res));
  BOOST_TEST(rs.status == 200, rs.body);
  auto res_out = answer_of(rs);
  BOOST_TEST(res_out["recorded"] == 1, res_out.dump());
  BOOST_TEST(res_out["event"]["state"] == "resolved", res_out.dump());
  BOOST_TEST(res_out["event"]["changed"] == true, res_out.dump());
  ev = f.event(id);
  BOOST_TEST(ev["state"] == "resolved", ev.dump());
  BOOST_TEST(ev["resolved"]["by"] == "Carol Lead", ev.dump());
  BOOST_TEST(ev["resolved"]["source"] == "pagerduty", ev.dump());
  BOOST_TEST(ev["acknowledged"] == acknowledged, ev.dump());
  BOOST_REQUIRE_MESSAGE(slack->wait_for(3, wait_time),
                        "no resolved message to Slack");
  auto resolved_msg = body_of(slack->requests().at(2));
  BOOST_TEST(contains(context_text(resolved_msg), "resolved by Carol Lead"),
             resolved_msg.dump());
  BOOST_TEST(!has_ack_button(resolved_msg), resolved_msg.dump());
  auto res_notices = res_out["event"]["notices"].get<std::size_t>();
  ev = wait_deliveries(f, id, 2 + notices + res_notices);
  BOOST_TEST(deliveries_to(ev, ep_slack, "resolved").size() == 1u, ev.dump());
  for (auto& d : ev["deliveries"])
    BOOST_TEST(d["state"] == "delivered", d.dump());
  BOOST_TEST(deliveries_to(ev, ep_pd).size() == 1u, ev.dump());
}

BOOST_AUTO_TEST_CASE(
    the_integration_routes_are_off_without_their_secrets_and_ack_needs_admin) {
  daemon_fixture f;
  auto receiver = f.make_receiver();
  std::string admin = "admin-token", reader = "reader-token";
  f.use_admin_token(admin);
  // Only the alerts (not what tocsin raises about endpoints' health).
  f.start({{"ops", daemon_fixture::url_of(*receiver),
            "[0.05, 0.05, 0.05, 0.05]", "event_types = [\"policy.denied\"]\n"}},
          "",
          token_toml("admin", admin, "admin") +
              token_toml("reader", reader, "read"));

  auto id = f.post_events(sample_event()).at(0);
  auto ev = wait_deliveries(f, id, 1);
  BOOST_REQUIRE_EQUAL(ev["deliveries"].size(), 1u);
  BOOST_REQUIRE(ev["deliveries"][0]["state"] == "delivered");
  BOOST_REQUIRE_EQUAL(receiver->count(), 1u);

  // Without [slack] and [pagerduty]: no such routes, whatever is signed.
  auto reply = "https://127.0.0.1:" + std::to_string(receiver->port()) +
               "/actions/T1/2/abc";
  auto body = click_body(id, reply);
  auto ts = unix_seconds();
  auto s = post_slack(f, body, ts, slack_signature(slack_secret, ts, body));
  BOOST_TEST(s.status == 404, s.body);
  BOOST_TEST(error_code(s) == "not_found", s.body);
  auto acked = pagerduty_body("incident.acknowledged", "tocsin-" + id);
  auto p =
      post_pagerduty(f, acked, pagerduty_signature(pagerduty_secret, acked));
  BOOST_TEST(p.status == 404, p.body);
  BOOST_TEST(error_code(p) == "not_found", p.body);

  auto unchanged = [&](const std::string& what) {
    auto now = f.event(id);
    BOOST_TEST(now["state"] == "open", what << ": " << now.dump());
    BOOST_TEST(!now.contains("acknowledged"), what << ": " << now.dump());
    BOOST_TEST(!now.contains("resolved"), what << ": " << now.dump());
    BOOST_TEST(now["deliveries"].size() == 1u, what << ": " << now.dump());
  };
  unchanged("the integration routes");

  // Acknowledging needs an admin.
  auto target = "/v1/events/" + id + "/ack";
  auto none = f.post(target, R"({"by":"eve"})", "");
  BOOST_TEST(none.status == 401, none.body);
  auto read = f.post(target, R"({"by":"eve"})", reader);
  BOOST_TEST(read.status == 403, read.body);
  auto read_resolve = f.post("/v1/events/" + id + "/resolve", "{}", reader);
  BOOST_TEST(read_resolve.status == 403, read_resolve.body);
  auto wrong = f.post(target, R"({"by":"eve"})", "not-a-token");
  BOOST_TEST(wrong.status == 401, wrong.body);
  unchanged("answers without an admin token");

  // Events it does not have.
  for (auto& other : {tocsin::new_id("evt"), std::string{"evt_nope"},
                      tocsin::new_id("dlv")}) {
    auto r = f.post("/v1/events/" + other + "/ack", "{}", admin);
    BOOST_TEST(r.status == 404, other << ": " << r.body);
    BOOST_TEST(error_code(r) == "not_found", other << ": " << r.body);
    auto rr = f.post("/v1/events/" + other + "/resolve", "", admin);
    BOOST_TEST(rr.status == 404, other << ": " << rr.body);
  }

  // Bad bodies.
  struct bad {
    std::string body, code;
  };
  for (auto& b : std::vector<bad>{
           {R"({"by":5})", "invalid_field"},
           {R"({"by":""})", "invalid_field"},
           {R"({"note":["x"]})", "invalid_field"},
           {R"({"x":1})", "unknown_field"},
           {R"({"by":"bob","x":1})", "unknown_field"},
           {"{", "invalid_json"},
           {"[]", ""},
           {R"({"by":")" + std::string(201, 'b') + "\"}", "invalid_field"},
           // Text that reads other than it was sent (issue 24).
           {R"({"by":"bob\u202e"})", "invalid_field"},
           {R"({"by":"bob\nalice"})", "invalid_field"},
           {R"({"note":"fixed\r\u001b[2K"})", "invalid_field"}}) {
    auto r = f.post(target, b.body, admin);
    BOOST_TEST(r.status == 400, b.body << ": " << r.body);
    if (!b.code.empty())
      BOOST_TEST(error_code(r) == b.code, b.body << ": " << r.body);
  }
  unchanged("bad answers");

  // An admin acknowledges an event only a plain webhook was sent: recorded,
  // nobody to tell.
  auto ok = f.post(target, "", admin);
  BOOST_TEST(ok.status == 200, ok.body);
  auto out = answer_of(ok);
  BOOST_TEST(out["id"] == id, out.dump());
  BOOST_TEST(out["state"] == "acknowledged", out.dump());
  BOOST_TEST(out["changed"] == true, out.dump());
  BOOST_TEST(out["notices"] == 0, out.dump());
  BOOST_TEST(out["acknowledged"]["by"] == "admin", out.dump());
  BOOST_TEST(out["acknowledged"]["source"] == "api", out.dump());
  BOOST_TEST(!out["acknowledged"].contains("note"), out.dump());
  ev = f.event(id);
  BOOST_TEST(ev["state"] == "acknowledged", ev.dump());
  BOOST_TEST(ev["acknowledged"] == out["acknowledged"], ev.dump());
  BOOST_TEST(ev["deliveries"].size() == 1u, ev.dump());
  expect_quiet({receiver.get()}, {1}, "an ack of a webhook-only event");
  // Reading it is for readers too.
  auto seen = f.get("/v1/events/" + id, reader);
  BOOST_TEST(seen.status == 200);
  BOOST_TEST(answer_of(seen)["state"] == "acknowledged");

  // An endpoint that follows the event's state but never got the event (its
  // trigger was refused) is not told either: it has nothing to acknowledge.
  auto refusing = f.make_receiver(always(
      answer(400, R"({"status":"invalid event","message":"Event object is )"
                  R"(invalid"})")));
  auto ep_pd = create_endpoint(f, pagerduty_endpoint(*refusing))["id"]
                   .get<std::string>();
  auto second = f.post_events(sample_event("agent-8")).at(0);
  auto ev2 = wait_deliveries(f, second, 2);
  BOOST_REQUIRE_EQUAL(ev2["deliveries"].size(), 2u);
  auto refused = deliveries_to(ev2, ep_pd);
  BOOST_REQUIRE_EQUAL(refused.size(), 1u);
  BOOST_REQUIRE_MESSAGE(refused[0]["state"] == "dead_lettered",
                        refused[0].dump());
  BOOST_REQUIRE(receiver->wait_for(2, wait_time));
  BOOST_REQUIRE_EQUAL(refusing->count(), 1u);
  auto resolved = f.post("/v1/events/" + second + "/resolve",
                         R"({"by":"bob","note":"not for PagerDuty"})", admin);
  BOOST_TEST(resolved.status == 200, resolved.body);
  auto resolved_out = answer_of(resolved);
  BOOST_TEST(resolved_out["state"] == "resolved", resolved_out.dump());
  BOOST_TEST(resolved_out["changed"] == true, resolved_out.dump());
  BOOST_TEST(resolved_out["notices"] == 0, resolved_out.dump());
  BOOST_TEST(!resolved_out.contains("acknowledged"), resolved_out.dump());
  expect_quiet({receiver.get(), refusing.get()}, {2, 1},
               "a resolve of an event PagerDuty refused");
  ev2 = f.event(second);
  BOOST_TEST(ev2["state"] == "resolved", ev2.dump());
  BOOST_TEST(ev2["deliveries"].size() == 2u, ev2.dump());
  BOOST_TEST(notice_count(ev2) == 0u, ev2.dump());
  // The first event is as it was.
  BOOST_TEST(f.event(id)["acknowledged"] == out["acknowledged"]);
}

BOOST_AUTO_TEST_CASE(receivers_answer_only_for_what_they_were_sent) {
  // A signed PagerDuty webhook and a signed Slack click about an event that
  // was only ever sent to a plain webhook: answered 200, nothing changes,
  // counted.
  daemon_fixture f;
  auto hook = f.make_receiver(always(answer(200, "")));
  auto reply = f.make_receiver(always(response_url_ok()));
  f.start({}, "", slack_config() + pagerduty_config());
  create_endpoint(f, {{"url", daemon_fixture::url_of(*hook)},
                      {"retry_schedule", fast_schedule}});
  auto id = f.post_events(sample_event()).at(0);
  auto ev = wait_deliveries(f, id, 1);
  BOOST_REQUIRE(ev["deliveries"][0]["state"] == "delivered");

  auto pd = pagerduty_body("incident.resolved", "tocsin-" + id);
  auto r = post_pagerduty(f, pd, pagerduty_signature(pagerduty_secret, pd));
  BOOST_TEST(r.status == 200, r.body);
  BOOST_TEST(nlohmann::json::parse(r.body)["recorded"] == 0, r.body);
  auto clicked = click(f, click_body(id, response_url_of(*reply)));
  BOOST_TEST(clicked.status == 200, clicked.body);
  BOOST_TEST(eventually([&] {
    return contains(f.process().log(),
                    "Slack click about an event never sent to Slack");
  }));
  auto after = f.event(id);
  BOOST_TEST(after["state"] == "open", after.dump());
  BOOST_TEST(after["deliveries"].size() == 1u, after.dump());
  expect_quiet({reply.get()}, {0}, "answers for what was never sent");
  auto metrics = f.get("/metrics", f.admin_token());
  BOOST_TEST(contains(metrics.body,
                      "tocsin_answers_ignored_total{source=\"pagerduty\"} 1"),
             metrics.body);
  BOOST_TEST(contains(metrics.body,
                      "tocsin_answers_ignored_total{source=\"slack\"} 1"));
}

BOOST_AUTO_TEST_CASE(answers_survive_kill_9) {
  daemon_fixture f;
  // The trigger is answered at once; a notice only after a while, so that
  // the daemon is killed while it waits for it.
  auto slow_after_first = [](canned_response r) -> responder {
    return [r](const received_request&, std::size_t i) {
      auto out = r;
      if (i > 0)
        out.delay = std::chrono::milliseconds{1500};
      return out;
    };
  };
  auto slack = f.make_receiver(slow_after_first(slack_ok()));
  auto pagerduty = f.make_receiver(slow_after_first(pagerduty_accepted()));
  f.start({}, "", slack_config());
  auto ep_slack =
      create_endpoint(f, slack_endpoint(*slack))["id"].get<std::string>();
  auto ep_pd = create_endpoint(f, pagerduty_endpoint(*pagerduty))["id"]
                   .get<std::string>();

  auto id = f.post_events(sample_event()).at(0);
  auto ev = wait_deliveries(f, id, 2);
  for (auto& d : ev["deliveries"])
    BOOST_REQUIRE_MESSAGE(d["state"] == "delivered", d.dump());

  auto r = f.call("POST", "/v1/events/" + id + "/ack",
                  {{"by", "dana"}, {"note", "looking"}});
  BOOST_REQUIRE_MESSAGE(r.status == 200, r.status << " " << r.body);
  auto out = answer_of(r);
  BOOST_TEST(out["changed"] == true, out.dump());
  BOOST_TEST(out["notices"] == 2, out.dump());
  auto acknowledged = out["acknowledged"];
  BOOST_TEST(acknowledged["by"] == "dana", out.dump());
  // Killed while the notices are on their way (their receivers wait).
  BOOST_TEST(eventually([&] {
               return slack->count() >= 2 && pagerduty->count() >= 2;
             }),
             "the notices were not sent");
  f.kill9();
  f.restart();

  ev = f.event(id);
  BOOST_TEST(ev["state"] == "acknowledged", ev.dump());
  BOOST_TEST(ev["acknowledged"] == acknowledged, ev.dump());
  BOOST_TEST(ev["acknowledged"]["note"] == "looking", ev.dump());
  BOOST_TEST(ev["acknowledged"]["source"] == "api", ev.dump());
  BOOST_TEST(!ev.contains("resolved"), ev.dump());

  // The notices are delivered after the restart.
  ev = wait_deliveries(f, id, 4);
  BOOST_TEST(ev["deliveries"].size() == 4u, ev.dump());
  for (auto& ep : {ep_slack, ep_pd}) {
    BOOST_TEST(deliveries_to(ev, ep).size() == 1u, ev.dump());
    auto notices = deliveries_to(ev, ep, "acknowledged");
    BOOST_REQUIRE_MESSAGE(notices.size() == 1u, ep << ": " << ev.dump());
    BOOST_TEST(notices[0]["state"] == "delivered", notices[0].dump());
  }
  BOOST_TEST(notice_count(ev) == 2u, ev.dump());
  // Sent again after the restart (at least once), and what was sent says so.
  BOOST_TEST(slack->count() >= 3u);
  BOOST_TEST(pagerduty->count() >= 3u);
  for (auto& req : pagerduty->requests()) {
    auto pd = body_of(req);
    if (pd["event_action"] != "trigger")
      BOOST_TEST(pd["event_action"] == "acknowledge", pd.dump());
    BOOST_TEST(pd["dedup_key"] == "tocsin-" + id, pd.dump());
  }
  auto slack_reqs = slack->requests();
  for (std::size_t i = 1; i < slack_reqs.size(); ++i) {
    auto msg = body_of(slack_reqs[i]);
    BOOST_TEST(contains(context_text(msg), "acknowledged by dana"), msg.dump());
    BOOST_TEST(!has_ack_button(msg), msg.dump());
  }

  // Still idempotent after the restart.
  auto again = f.call("POST", "/v1/events/" + id + "/ack", json::object());
  BOOST_TEST(again.status == 200, again.body);
  BOOST_TEST(answer_of(again)["changed"] == false, again.body);
  BOOST_TEST(answer_of(again)["notices"] == 0, again.body);
  BOOST_TEST(f.event(id)["deliveries"].size() == 4u);
}

// An answer given while the trigger is still being retried is sent once
// the trigger gets through: PagerDuty never keeps an incident open that
// tocsin shows resolved.
BOOST_AUTO_TEST_CASE(an_answer_during_the_triggers_retries_follows_it) {
  daemon_fixture f;
  auto pager = f.make_receiver(
      first_then(answer(500, "busy"), answer(202, R"({"status":"success"})")));
  endpoint_spec pd{"pager", daemon_fixture::url_of(*pager),
                   "[0.5, 0.5, 0.5, 0.5]"};
  pd.with_secret = false;
  pd.extra =
      "transport = \"pagerduty\"\n"
      "options = { routing_key = \"R0ut1ngKeyR0ut1ngKeyR0ut1ngKey32\" }\n";
  f.start({pd});
  auto id = f.post_events(sample_event()).at(0);
  BOOST_REQUIRE(pager->wait_for(1, std::chrono::seconds{15})); // the 500
  auto r = f.call("POST", "/v1/events/" + id + "/resolve", json{{"by", "bob"}});
  BOOST_REQUIRE_MESSAGE(r.status == 200, r.body);
  BOOST_TEST(json::parse(r.body)["notices"] == 0);
  BOOST_REQUIRE(pager->wait_for(3, std::chrono::seconds{15}));
  auto reqs = pager->requests();
  auto second = json::parse(reqs.at(1).body);
  auto third = json::parse(reqs.at(2).body);
  BOOST_TEST(second["event_action"] == "trigger");
  BOOST_TEST(third["event_action"] == "resolve");
  BOOST_TEST(third["dedup_key"] == second["dedup_key"]);
  auto ev = f.wait_finished(id);
  std::size_t notices = 0;
  for (auto& d : ev["deliveries"])
    if (d.value("notice", "") == "resolved") {
      ++notices;
      BOOST_TEST(d["state"] == "delivered", d.dump());
    }
  BOOST_TEST(notices == 1u, ev.dump());
  std::this_thread::sleep_for(std::chrono::milliseconds{300});
  BOOST_TEST(pager->count() == 3u);
}

// tocsin posts to a click's response_url: a click naming a host that
// slack.response_url_hosts does not list (by default only hooks.slack.com)
// is refused and changes nothing, although correctly signed.
BOOST_AUTO_TEST_CASE(a_click_whose_response_url_is_elsewhere_is_refused) {
  daemon_fixture f;
  auto slack = f.make_receiver(always(slack_ok()));
  auto reply = f.make_receiver(always(response_url_ok()));
  // The default list: hooks.slack.com only.
  f.start({}, "",
          std::string{"[slack]\nsigning_secret = \""} + slack_secret + "\"\n");
  create_endpoint(f, slack_endpoint(*slack));
  auto id = f.post_events(sample_event()).at(0);
  wait_deliveries(f, id, 1);
  for (auto& url :
       {response_url_of(*reply),
        "https://localhost:" + std::to_string(reply->port()) + "/x",
        std::string{"https://hooks.slack.com.evil.example/actions/1"}}) {
    auto r = click(f, click_body(id, url));
    BOOST_TEST(r.status == 400, url << ": " << r.body << r.error);
    BOOST_TEST(error_code(r) == "invalid_payload", r.body);
    BOOST_TEST(contains(r.body, "slack.response_url_hosts"), r.body);
  }
  auto ev = f.event(id);
  BOOST_TEST(ev["state"] == "open", ev.dump());
  BOOST_TEST(!ev.contains("acknowledged"), ev.dump());
  expect_quiet({slack.get(), reply.get()}, {1, 0}, "refused clicks");
  BOOST_TEST(f.event(id)["deliveries"].size() == 1u);
}

BOOST_AUTO_TEST_SUITE_END()
