// An answer to one event of an escalation episode (issue 23), through the
// real daemon: a click answers the escalation and its members, and the one
// message that was clicked is replaced once through its response_url (with
// what went along with it, and a Resolve button); the other events of the
// episode post nothing of their own to Slack incoming webhooks. An answer
// from the API to an episode of 50 fans out bounded: one message per Slack
// endpoint, and one acknowledge per PagerDuty incident that was opened.
#include "tests/e2e/answering.hpp"

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

using namespace tocsin::test;
using nlohmann::json;

namespace {

/// A rule that escalates `threshold` denials from one agent within a minute
/// into one critical event, its summary "<agent>: <n> policy denials in 60s".
std::string escalation_rule(int threshold) {
  return "[[escalation]]\nname = \"repeated-denials\"\n"
         "type = \"policy.denied\"\nthreshold = " +
         std::to_string(threshold) +
         "\nwindow = 60\ngroup_by = \"agent_id\"\nseverity = \"critical\"\n"
         "summary = \"{agent_id}: {count} policy denials in {window}s\"\n";
}

/// Alerts only (no system.health), and no rate limit worth the name: an
/// episode is many messages at once.
json fast(json endpoint) {
  endpoint["event_types"] = {"policy.denied"};
  endpoint["rate_limit"] = {{"per_second", 1000}, {"burst", 1000}};
  return endpoint;
}

/// PagerDuty for what is critical only.
json pagerduty_critical(const https_receiver& r) {
  auto ep = fast(pagerduty_endpoint(r));
  ep["min_severity"] = "critical";
  return ep;
}

json denial(const std::string& agent, const std::string& severity = "high") {
  auto e = sample_event(agent);
  e["severity"] = severity;
  return e;
}

struct episode {
  std::vector<std::string> members;
  std::string escalation;

  std::vector<std::string> all() const {
    auto out = members;
    out.push_back(escalation);
    return out;
  }
};

/// The value of each Acknowledge button the receiver's messages carry.
std::vector<std::string> acknowledgeable(const https_receiver& slack) {
  std::vector<std::string> out;
  for (auto& msg : bodies_of(slack))
    if (auto b = button(msg, "tocsin.ack"); b.is_object())
      out.push_back(b.value("value", ""));
  return out;
}

/// Posts `events` (one request) and waits until the Slack incoming webhook
/// `slack` has a message for each and for the escalation they raise; the
/// episode.
episode raise_episode(daemon_fixture& f, const json& events,
                      const https_receiver& slack) {
  episode ep;
  ep.members = f.post_events({{"events", events}});
  BOOST_REQUIRE_EQUAL(ep.members.size(), events.size());
  BOOST_REQUIRE_MESSAGE(slack.wait_for(events.size() + 1, wait_time),
                        "Slack got " << slack.count() << " messages, not "
                                     << events.size() + 1);
  std::set<std::string> members{ep.members.begin(), ep.members.end()};
  for (auto& id : acknowledgeable(slack))
    if (!members.count(id)) {
      BOOST_REQUIRE_MESSAGE(ep.escalation.empty(),
                            "two escalations: " << ep.escalation << ", " << id);
      ep.escalation = id;
    }
  BOOST_REQUIRE_MESSAGE(!ep.escalation.empty(), "no escalation's message");
  auto esc = f.event(ep.escalation);
  BOOST_REQUIRE_MESSAGE(esc["event"]["details"]["escalation"]["count"] ==
                            events.size(),
                        esc.dump());
  return ep;
}

/// Waits until every event of `ids` is in `state`.
void wait_all_state(daemon_fixture& f, const std::vector<std::string>& ids,
                    const std::string& state) {
  std::vector<std::string> behind;
  bool reached = eventually([&] {
    behind.clear();
    for (auto& id : ids)
      if (f.event(id)["state"] != state)
        behind.push_back(id);
    return behind.empty();
  });
  BOOST_TEST(reached, behind.size() << " of " << ids.size() << " events never "
                                    << state << ", the first "
                                    << (behind.empty() ? "" : behind[0]));
}

/// Waits until no delivery of the events `ids` is pending (what an answer
/// was going to send has been sent, or given up).
void wait_settled(daemon_fixture& f, const std::vector<std::string>& ids) {
  std::string pending;
  bool settled = eventually([&] {
    for (auto& id : ids) {
      auto ev = f.event(id); // outlives the loop over its deliveries
      for (auto& d : ev["deliveries"])
        if (d["state"] == "pending") {
          pending = d.dump();
          return false;
        }
    }
    return true;
  });
  BOOST_TEST(settled, "still pending: " << pending);
}

/// The dedup_keys of the PagerDuty requests with `action`.
std::multiset<std::string> dedup_keys(const https_receiver& pager,
                                      const std::string& action) {
  std::multiset<std::string> out;
  for (auto& b : bodies_of(pager))
    if (b.value("event_action", "") == action) {
      out.insert(b.value("dedup_key", ""));
      BOOST_TEST(b["routing_key"] == routing_key, b.dump());
    }
  return out;
}

/// The text of the message's first section: the event's summary.
std::string summary_text(const json& msg) {
  if (msg.contains("blocks") && msg["blocks"].is_array())
    for (auto& block : msg["blocks"])
      if (block.value("type", "") == "section" && block.contains("text") &&
          block["text"].is_object())
        return block["text"].value("text", "");
  return {};
}

/// The message is still the event `id`'s message: its type in the header,
/// its id in the context, its summary.
void shows_event(const json& msg, const std::string& id,
                 const std::string& summary, const std::string& what) {
  bool blocks = msg.contains("blocks") && msg["blocks"].is_array();
  BOOST_TEST(blocks, what << ": " << msg.dump());
  if (blocks && !msg["blocks"].empty())
    BOOST_TEST(contains(msg["blocks"][0].dump(), "policy.denied"),
               what << ": no header with the type: " << msg.dump());
  BOOST_TEST(contains(context_text(msg), id), what << ": " << msg.dump());
  BOOST_TEST(contains(summary_text(msg), summary), what << ": " << msg.dump());
}

/// No Acknowledge or Resolve button is left: nothing but a link.
void only_links(const json& msg, const std::string& what) {
  BOOST_TEST(!has_ack_button(msg), what << ": " << msg.dump());
  BOOST_TEST(button(msg, "tocsin.resolve").is_null(),
             what << ": " << msg.dump());
  for (auto& b : buttons_of(msg))
    BOOST_TEST(
        (b.value("action_id", "") == "tocsin.investigate" || b.contains("url")),
        what << ": a button that is not a link: " << b.dump());
}

/// The message has a Resolve button for the event `id`.
void resolvable(const json& msg, const std::string& id,
                const std::string& what) {
  auto b = button(msg, "tocsin.resolve");
  BOOST_TEST(b.is_object(), what << ": no Resolve button: " << msg.dump());
  if (b.is_object())
    BOOST_TEST(b.value("value", "") == id, what << ": " << b.dump());
  BOOST_TEST(!has_ack_button(msg), what << ": " << msg.dump());
}

} // namespace

BOOST_AUTO_TEST_SUITE(episode)

BOOST_AUTO_TEST_CASE(a_click_on_the_escalation_replaces_only_that_message) {
  daemon_fixture f;
  auto slack = f.make_receiver(always(slack_ok()));
  auto reply = f.make_receiver(always(response_url_ok()));
  f.start({}, "", slack_config() + escalation_rule(5));
  create_endpoint(f, fast(slack_endpoint(*slack)));
  std::vector<const https_receiver*> all{slack.get(), reply.get()};

  auto ep = raise_episode(
      f,
      json::array({denial("agent-1"), denial("agent-1"), denial("agent-1"),
                   denial("agent-1"), denial("agent-1")}),
      *slack);
  wait_settled(f, ep.all());
  expect_quiet(all, {6, 0}, "the episode");

  // Alice acknowledges the escalation: it and its five members are
  // acknowledged, and the message she clicked is replaced once.
  auto url = response_url_of(*reply);
  auto clicked = click(f, click_body(ep.escalation, url));
  BOOST_TEST(clicked.status == 200, clicked.body << clicked.error);
  BOOST_REQUIRE_MESSAGE(reply->wait_for(1, wait_time),
                        "no request to the response_url");
  wait_all_state(f, ep.all(), "acknowledged");
  wait_settled(f, ep.all());
  expect_quiet(all, {6, 1}, "the click on the escalation");
  auto esc = f.event(ep.escalation);
  BOOST_TEST(esc["acknowledged"]["source"] == "slack", esc.dump());
  BOOST_TEST(contains(esc["acknowledged"].value("by", ""), "alice"),
             esc.dump());

  auto replaced = reply->requests().at(0);
  BOOST_TEST(replaced.method == "POST");
  BOOST_TEST(replaced.target == "/actions/T1/2/abc");
  auto msg = body_of(replaced);
  BOOST_TEST(msg["replace_original"] == true, msg.dump());
  // Still the escalation's message (its summary, its id) ...
  shows_event(msg, ep.escalation, "agent-1: 5 policy denials in 60s",
              "the acknowledged escalation");
  for (auto& m : ep.members)
    BOOST_TEST(!contains(context_text(msg), m), msg.dump());
  // ... saying who and what went with it, and it can be resolved now.
  auto context = context_text(msg);
  BOOST_TEST(contains(context, "acknowledged by alice"), context);
  BOOST_TEST(contains(context, "with 5 events"), context);
  resolvable(msg, ep.escalation, "the acknowledged escalation");
  BOOST_REQUIRE_MESSAGE(reply->count() == 1u, "the response_url got "
                                                  << reply->count()
                                                  << " posts, not one");

  // A second click (Slack users click twice) changes nothing: no post.
  auto again = click(f, click_body(ep.escalation, url));
  BOOST_TEST(again.status == 200, again.body << again.error);
  expect_quiet(all, {6, 1}, "a second click");

  // Alice resolves it from the replaced message: one more post, no button
  // left to click.
  click_spec resolve;
  resolve.action_id = "tocsin.resolve";
  auto resolved = click(f, click_body(ep.escalation, url, resolve));
  BOOST_TEST(resolved.status == 200, resolved.body << resolved.error);
  BOOST_REQUIRE_MESSAGE(reply->wait_for(2, wait_time),
                        "no post to the response_url after Resolve");
  wait_all_state(f, ep.all(), "resolved");
  wait_settled(f, ep.all());
  expect_quiet(all, {6, 2}, "the click on Resolve");
  esc = f.event(ep.escalation);
  BOOST_TEST(esc["resolved"]["source"] == "slack", esc.dump());
  BOOST_TEST(contains(esc["resolved"].value("by", ""), "alice"), esc.dump());
  auto final_msg = body_of(reply->requests().at(1));
  BOOST_TEST(final_msg["replace_original"] == true, final_msg.dump());
  shows_event(final_msg, ep.escalation, "agent-1: 5 policy denials in 60s",
              "the resolved escalation");
  BOOST_TEST(contains(context_text(final_msg), "resolved by alice"),
             final_msg.dump());
  only_links(final_msg, "the resolved escalation");
}

BOOST_AUTO_TEST_CASE(a_click_on_a_member_replaces_only_that_message) {
  daemon_fixture f;
  auto slack = f.make_receiver(always(slack_ok()));
  auto pager = f.make_receiver(always(pagerduty_accepted()));
  auto reply = f.make_receiver(always(response_url_ok()));
  f.start({}, "", slack_config() + escalation_rule(5));
  create_endpoint(f, fast(slack_endpoint(*slack)));
  create_endpoint(f, pagerduty_critical(*pager));
  std::vector<const https_receiver*> all{slack.get(), pager.get(), reply.get()};

  auto ep = raise_episode(
      f,
      json::array({denial("agent-2"), denial("agent-2"), denial("agent-2"),
                   denial("agent-2"), denial("agent-2")}),
      *slack);
  BOOST_REQUIRE(pager->wait_for(1, wait_time));
  wait_settled(f, ep.all());
  expect_quiet(all, {6, 1, 0}, "the episode");
  BOOST_TEST(dedup_keys(*pager, "trigger") ==
             std::multiset<std::string>{"tocsin-" + ep.escalation});

  // Alice acknowledges the third denial: it and the escalation are
  // acknowledged (the escalation's incident too), the other four are not.
  auto member = ep.members.at(2);
  auto clicked = click(f, click_body(member, response_url_of(*reply)));
  BOOST_TEST(clicked.status == 200, clicked.body << clicked.error);
  BOOST_REQUIRE_MESSAGE(reply->wait_for(1, wait_time),
                        "no request to the response_url");
  wait_all_state(f, {member, ep.escalation}, "acknowledged");
  BOOST_REQUIRE_MESSAGE(pager->wait_for(2, wait_time),
                        "the escalation's incident was not acknowledged");
  wait_settled(f, ep.all());
  // The clicked message is replaced once; the escalation posts nothing of
  // its own, neither to the response_url nor to the incoming webhook.
  expect_quiet(all, {6, 2, 1}, "the click on a member");
  BOOST_TEST(dedup_keys(*pager, "acknowledge") ==
             std::multiset<std::string>{"tocsin-" + ep.escalation});
  for (auto& m : ep.members)
    if (m != member)
      BOOST_TEST(f.event(m)["state"] == "open", m);

  auto msg = body_of(reply->requests().at(0));
  BOOST_TEST(msg["replace_original"] == true, msg.dump());
  shows_event(msg, member, "agent-2 tried file.delete on /etc",
              "the acknowledged member");
  BOOST_TEST(contains(context_text(msg), "acknowledged by alice"), msg.dump());
  resolvable(msg, member, "the acknowledged member");
}

BOOST_AUTO_TEST_CASE(an_answer_to_fifty_fans_out_bounded) {
  daemon_fixture f;
  auto slack_a = f.make_receiver(always(slack_ok()));
  auto slack_b = f.make_receiver(always(slack_ok()));
  auto pager = f.make_receiver(always(pagerduty_accepted()));
  f.start({}, "", escalation_rule(50));
  create_endpoint(f, fast(slack_endpoint(*slack_a)));
  create_endpoint(f, fast(slack_endpoint(*slack_b)));
  create_endpoint(f, pagerduty_critical(*pager));
  std::vector<const https_receiver*> all{slack_a.get(), slack_b.get(),
                                         pager.get()};

  // 50 denials, the first 10 critical: PagerDuty opens 11 incidents (those
  // 10 and the escalation), Slack gets 51 messages on each endpoint.
  json events = json::array();
  for (int i = 0; i < 50; ++i)
    events.push_back(denial("agent-9", i < 10 ? "critical" : "high"));
  auto ep = raise_episode(f, events, *slack_a);
  BOOST_REQUIRE(slack_b->wait_for(51, wait_time));
  BOOST_REQUIRE_MESSAGE(pager->wait_for(11, wait_time),
                        "PagerDuty got " << pager->count() << " of 11");
  wait_settled(f, ep.all());
  expect_quiet(all, {51, 51, 11}, "the episode");
  std::multiset<std::string> incidents{"tocsin-" + ep.escalation};
  for (int i = 0; i < 10; ++i)
    incidents.insert("tocsin-" + ep.members[static_cast<std::size_t>(i)]);
  BOOST_REQUIRE(dedup_keys(*pager, "trigger") == incidents);

  // Dana acknowledges the escalation through the API: all 51 events are.
  auto r =
      f.call("POST", "/v1/events/" + ep.escalation + "/ack", {{"by", "dana"}});
  BOOST_REQUIRE_MESSAGE(r.status == 200, r.status << " " << r.body);
  BOOST_TEST(answer_of(r)["changed"] == true, r.body);
  wait_all_state(f, ep.all(), "acknowledged");

  // PagerDuty: one acknowledge per incident it has, no more.
  BOOST_TEST(pager->wait_for(22, wait_time),
             "PagerDuty got " << pager->count() - 11 << " of 11 acknowledges");
  // Slack: one message per endpoint, about the escalation.
  BOOST_TEST(slack_a->wait_for(52, wait_time));
  BOOST_TEST(slack_b->wait_for(52, wait_time));
  wait_settled(f, ep.all());
  expect_quiet(all, {52, 52, 22}, "the acknowledgement of 50");
  BOOST_TEST(dedup_keys(*pager, "acknowledge") == incidents);
  for (auto* slack : {slack_a.get(), slack_b.get()}) {
    auto reqs = slack->requests();
    BOOST_REQUIRE_GE(reqs.size(), 52u);
    auto news = body_of(reqs.at(51));
    BOOST_TEST(!news.contains("replace_original"), news.dump());
    shows_event(news, ep.escalation, "agent-9: 50 policy denials in 60s",
                "the news of the escalation");
    auto context = context_text(news);
    BOOST_TEST(contains(context, "acknowledged by dana"), context);
    BOOST_TEST(contains(context, "with 50 events"), context);
    BOOST_TEST(!has_ack_button(news), news.dump());
  }
}

BOOST_AUTO_TEST_SUITE_END()
