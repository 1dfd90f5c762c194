// The intake's answers and escalations against a real store (RocksDB in a
// temp dir): an acknowledgement is recorded once and tells exactly the
// endpoints that follow events' state and were sent the event; escalation
// rules fire once per episode, in the same commit as the event that made
// them fire, and their counts survive a restart (a new intake on the same
// store).
#include "delivery/intake.hpp"

#include "common/event_types.hpp"
#include "common/ids.hpp"
#include "common/time.hpp"
#include "tests/support/temp_dir.hpp"

#include <boost/test/unit_test.hpp>

#include <nlohmann/json.hpp>

using namespace tocsin;
using namespace tocsin::delivery;
using nlohmann::json;
using storage::event_state;

namespace {

route make_route(std::string id, std::string transport, bool follows_state,
                 int min_severity = 0) {
  route r;
  r.endpoint_id = std::move(id);
  r.filter.min_severity = min_severity;
  r.posts_messages = transport == "slack";
  r.transport = std::move(transport);
  r.follows_state = follows_state;
  return r;
}

std::string receipt_of(const std::string& delivery_id);

escalation_rule denials_rule() {
  escalation_rule r;
  r.name = "repeated-denials";
  r.event_types = {"policy.denied"};
  r.threshold = 5;
  r.window = 600'000;
  r.suppress_for = 600'000;
  r.severity = "critical";
  return r;
}

struct store_fixture {
  test::temp_dir dir;
  std::unique_ptr<storage::store> log = [this] {
    auto l = storage::open_store({(dir.path() / "store").string()});
    BOOST_REQUIRE(l);
    return std::move(*l);
  }();

  static new_event denial(const std::string& agent = "agent-7") {
    new_event e;
    e.id = new_id("evt");
    e.type = "policy.denied";
    e.severity = 3;
    e.severity_name = "high";
    e.agent_id = agent;
    e.summary = agent + " tried file.delete";
    e.timestamp = format_rfc3339(now_ms());
    e.body = R"({"id":")" + e.id + R"(","type":"policy.denied","timestamp":")" +
             e.timestamp + R"(","agent_id":")" + agent +
             R"(","severity":"high","summary":"s","details":{}})";
    return e;
  }

  /// Accepts `n` denials of `agent` in one commit; the hand-off.
  static handoff accept(intake& in, int n,
                        const std::string& agent = "agent-7") {
    ingest_batch b;
    for (int i = 0; i < n; ++i)
      b.events.push_back(denial(agent));
    auto answer = in.add(b, now_ms());
    BOOST_REQUIRE(answer);
    BOOST_REQUIRE(in.commit().ok());
    return in.take_handoff();
  }

  /// Marks every delivery of `h` delivered, as an endpoint would; those
  /// to `with_receipts` keep a receipt naming a message of their own.
  void deliver_all(const handoff& h, const std::string& with_receipts = {}) {
    storage::changes ws;
    for (auto& [endpoint, jobs] : h.jobs)
      for (auto& j : jobs) {
        auto d = j.state;
        d.state = storage::delivery_state::delivered;
        d.finished_at = now_ms();
        if (endpoint == with_receipts)
          d.receipt = receipt_of(d.id);
        ws.delivery_changed(d, storage::record_kind::delivery_delivered,
                            storage::standing_of(j.state));
      }
    BOOST_REQUIRE(log->commit(ws, storage::durability::buffered).ok());
  }

  storage::event_record event(const std::string& id) {
    auto e = log->get_event(id);
    BOOST_REQUIRE(e);
    BOOST_REQUIRE(e->has_value());
    return **e;
  }

  static std::size_t count(const handoff& h, const std::string& endpoint) {
    auto it = h.jobs.find(endpoint);
    return it == h.jobs.end() ? 0 : it->second.size();
  }
};

/// The receipt a Slack app endpoint keeps for a delivery (its own "ts").
std::string receipt_of(const std::string& delivery_id) {
  return json{{"channel", "C0123456789"}, {"ts", delivery_id}}.dump();
}

answer_request ack(std::string id, std::string by = "alice") {
  answer_request r;
  r.event_id = std::move(id);
  r.state = event_state::acknowledged;
  r.by = std::move(by);
  r.source = "api";
  return r;
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(intake_answers, store_fixture)

BOOST_AUTO_TEST_CASE(an_acknowledgement_tells_the_endpoints_that_follow_state) {
  intake in{*log,
            {make_route("pd", "pagerduty", true),
             make_route("slack", "slack", true),
             make_route("hook", "webhook", false)},
            4096};
  auto sent = accept(in, 1);
  auto id = sent.jobs.at("pd").at(0).state.event_id;
  deliver_all(sent);

  auto req = ack(id);
  req.source = "slack";
  req.reply_url = "https://hooks.slack.com/actions/T1/2/abc";
  req.reply_transport = "slack";
  auto out = in.answer(req, now_ms());
  BOOST_REQUIRE(out);
  BOOST_REQUIRE_EQUAL(out->events.size(), 1u);
  BOOST_TEST(out->events[0].changed);
  BOOST_TEST(out->events[0].notices == 2u);
  BOOST_TEST((out->events[0].state == event_state::acknowledged));
  // Nothing is handed over before the commit.
  BOOST_TEST(in.take_handoff().jobs.empty());
  BOOST_REQUIRE(in.commit().ok());
  auto notices = in.take_handoff();
  BOOST_TEST(count(notices, "hook") == 0u); // a webhook follows no state
  BOOST_REQUIRE_EQUAL(count(notices, "pd"), 1u);
  BOOST_REQUIRE_EQUAL(count(notices, "slack"), 1u);
  auto& pd = notices.jobs.at("pd")[0].state;
  BOOST_TEST((pd.news.state == event_state::acknowledged));
  BOOST_TEST(pd.news.by == "alice");
  BOOST_TEST(pd.news.reply_url.empty()); // the reply URL is Slack's
  BOOST_TEST(notices.jobs.at("slack")[0].state.news.reply_url == req.reply_url);
  BOOST_TEST(notices.jobs.at("pd")[0].event->id == id);

  // Stored: the answer, and the notices among the event's deliveries.
  auto stored = event(id);
  BOOST_TEST((stored.state() == event_state::acknowledged));
  BOOST_REQUIRE_EQUAL(stored.answers.size(), 1u);
  BOOST_TEST(stored.answers[0].by == "alice");
  BOOST_TEST(stored.answers[0].source == "slack");
  BOOST_TEST(stored.delivery_ids.size() == 5u);
  auto notice = log->get_delivery(pd.id);
  BOOST_REQUIRE(notice);
  BOOST_REQUIRE(notice->has_value());
  BOOST_TEST(((*notice)->news.state == event_state::acknowledged));

  // A second click changes nothing and says so.
  auto again = in.answer(ack(id, "bob"), now_ms());
  BOOST_REQUIRE(again);
  BOOST_TEST(!again->events[0].changed);
  BOOST_TEST(again->events[0].notices == 0u);
  BOOST_TEST(again->events[0].answers.at(0).by == "alice");
  BOOST_REQUIRE(in.commit().ok());
  BOOST_TEST(in.take_handoff().jobs.empty());

  // Resolving tells them again; acknowledging a resolved event does not.
  auto resolve = ack(id, "bob");
  resolve.state = event_state::resolved;
  auto resolved = in.answer(resolve, now_ms());
  BOOST_REQUIRE(resolved);
  BOOST_TEST(resolved->events[0].changed);
  BOOST_TEST(resolved->events[0].notices == 2u);
  auto late = in.answer(ack(id, "carol"), now_ms());
  BOOST_REQUIRE(late);
  BOOST_TEST(!late->events[0].changed); // seen within the same batch
  BOOST_REQUIRE(in.commit().ok());
  auto second = in.take_handoff();
  BOOST_TEST(
      (second.jobs.at("pd")[0].state.news.state == event_state::resolved));
  BOOST_TEST(second.jobs.at("slack")[0].state.news.reply_url.empty());
  stored = event(id);
  BOOST_TEST((stored.state() == event_state::resolved));
  BOOST_TEST(stored.answers.size() == 2u);
}

BOOST_AUTO_TEST_CASE(a_trigger_not_yet_delivered_gets_no_notice) {
  intake in{*log, {make_route("pd", "pagerduty", true)}, 4096};
  auto sent = accept(in, 1); // still pending: never delivered
  auto id = sent.jobs.at("pd").at(0).state.event_id;
  auto out = in.answer(ack(id), now_ms());
  BOOST_REQUIRE(out);
  BOOST_TEST(out->events[0].changed);
  BOOST_TEST(out->events[0].notices == 0u);
  BOOST_REQUIRE(in.commit().ok());
  BOOST_TEST(in.take_handoff().jobs.empty());
}

BOOST_AUTO_TEST_CASE(a_trigger_delivered_after_the_answer_is_followed_by_it) {
  intake in{*log,
            {make_route("pd", "pagerduty", true),
             make_route("hook", "webhook", false)},
            4096};
  auto sent = accept(in, 1);
  auto id = sent.jobs.at("pd").at(0).state.event_id;
  // Answered while the trigger is still being retried: no notice yet.
  auto resolve = ack(id, "bob");
  resolve.state = event_state::resolved;
  BOOST_REQUIRE(in.answer(resolve, now_ms()));
  BOOST_REQUIRE(in.commit().ok());
  BOOST_TEST(in.take_handoff().jobs.empty());
  // The trigger goes through: the resolution follows it, once.
  deliver_all(sent);
  auto followed = in.follow_up(id, "pd", now_ms());
  BOOST_REQUIRE(followed);
  BOOST_TEST(*followed);
  BOOST_REQUIRE(in.commit().ok());
  auto notices = in.take_handoff();
  BOOST_REQUIRE_EQUAL(count(notices, "pd"), 1u);
  auto& n = notices.jobs.at("pd")[0].state.news;
  BOOST_TEST((n.state == event_state::resolved));
  BOOST_TEST(n.by == "bob");
  BOOST_TEST(*in.follow_up(id, "pd", now_ms()) == false);
  // Endpoints that follow no state, and open events, get nothing.
  BOOST_TEST(*in.follow_up(id, "hook", now_ms()) == false);
  auto other = accept(in, 1).jobs.at("pd").at(0).state.event_id;
  BOOST_TEST(*in.follow_up(other, "pd", now_ms()) == false);
  BOOST_TEST(!in.dirty());
}

BOOST_AUTO_TEST_CASE(a_receiver_answers_only_for_what_it_was_sent) {
  intake in{*log,
            {make_route("pd", "pagerduty", true, *severity_rank("critical")),
             make_route("slack", "slack", true)},
            4096};
  auto high = accept(in, 1); // high: Slack only
  auto id = high.jobs.at("slack").at(0).state.event_id;
  auto from_pagerduty = ack(id, "PagerDuty");
  from_pagerduty.source = "pagerduty";
  from_pagerduty.only_if_sent_by = "pagerduty";
  auto from_slack = ack(id);
  from_slack.source = "slack";
  from_slack.only_if_sent_by = "slack";
  // Not delivered anywhere yet: neither may answer it.
  for (auto* req : {&from_pagerduty, &from_slack}) {
    auto out = in.answer(*req, now_ms());
    BOOST_REQUIRE(!out);
    BOOST_TEST(out.error().code == "not_sent_there");
  }
  deliver_all(high);
  // Delivered to Slack, never to PagerDuty.
  auto out = in.answer(from_pagerduty, now_ms());
  BOOST_REQUIRE(!out);
  BOOST_TEST(out.error().code == "not_sent_there");
  BOOST_TEST(!in.dirty()); // nothing recorded
  BOOST_REQUIRE(in.answer(from_slack, now_ms()));
  BOOST_REQUIRE(in.commit().ok());
  BOOST_TEST((event(id).state() == event_state::acknowledged));
}

BOOST_AUTO_TEST_CASE(unknown_events_are_not_found_and_nothing_is_written) {
  intake in{*log, {make_route("pd", "pagerduty", true)}, 4096};
  auto before = log->last_sequence();
  auto out = in.answer(ack(new_id("evt")), now_ms());
  BOOST_REQUIRE(!out);
  BOOST_TEST(out.error().code == "not_found");
  BOOST_TEST(!in.dirty());
  BOOST_REQUIRE(in.commit().ok());
  BOOST_TEST(log->last_sequence() == before);
}

BOOST_AUTO_TEST_CASE(five_denials_escalate_once_in_the_same_commit) {
  intake in{*log,
            {make_route("pd", "pagerduty", true, *severity_rank("critical")),
             make_route("all", "slack", true)},
            4096,
            {denials_rule()}};
  auto four = accept(in, 4);
  BOOST_TEST(count(four, "pd") == 0u);
  BOOST_TEST(count(four, "all") == 4u);
  auto fifth = accept(in, 1);
  // The escalation, critical, routed to the critical-only endpoint; the
  // other endpoint gets the fifth denial and the escalation.
  BOOST_REQUIRE_EQUAL(count(fifth, "pd"), 1u);
  BOOST_TEST(count(fifth, "all") == 2u);
  auto& derived = *fifth.jobs.at("pd")[0].event;
  BOOST_TEST(derived.severity == "critical");
  BOOST_TEST(derived.type == "policy.denied");
  BOOST_TEST(derived.agent_id == "agent-7");
  auto stored = event(derived.id);
  auto body = json::parse(stored.body);
  auto& esc = body["details"]["escalation"];
  BOOST_TEST(esc["rule"] == "repeated-denials");
  BOOST_TEST(esc["group"] == "agent-7");
  BOOST_TEST(esc["count"] == 5);
  BOOST_TEST(esc["event_ids"].size() == 5u);
  BOOST_TEST(body["severity"] == "critical");
  // More denials inside suppress_for: no second escalation.
  auto more = accept(in, 7);
  BOOST_TEST(count(more, "pd") == 0u);

  // Acknowledging the escalation acknowledges its episode.
  deliver_all(fifth);
  auto out = in.answer(ack(derived.id), now_ms());
  BOOST_REQUIRE(out);
  BOOST_REQUIRE_EQUAL(out->events.size(), 6u);
  for (auto& e : out->events)
    BOOST_TEST(e.changed);
  BOOST_REQUIRE(in.commit().ok());
  for (auto& id : esc["event_ids"])
    BOOST_TEST(
        (event(id.get<std::string>()).state() == event_state::acknowledged));
}

BOOST_AUTO_TEST_CASE(acknowledging_a_counted_event_reaches_its_escalation) {
  intake in{*log,
            {make_route("pd", "pagerduty", true, *severity_rank("critical"))},
            4096,
            {denials_rule()}};
  accept(in, 4);
  auto fired = accept(in, 1);
  BOOST_REQUIRE_EQUAL(count(fired, "pd"), 1u);
  auto escalation = fired.jobs.at("pd")[0].event->id;
  deliver_all(fired); // the incident is open in PagerDuty
  auto body = json::parse(event(escalation).body);
  auto counted = body["details"]["escalation"]["event_ids"];
  auto first = counted[0].get<std::string>();
  auto linked = log->escalations_of(first);
  BOOST_REQUIRE(linked);
  BOOST_TEST(*linked == std::vector<std::string>{escalation});

  auto out = in.answer(ack(first), now_ms());
  BOOST_REQUIRE(out);
  // The event and the escalation; not the escalation's other events.
  BOOST_REQUIRE_EQUAL(out->events.size(), 2u);
  BOOST_TEST(out->events[1].event_id == escalation);
  BOOST_TEST(out->events[1].notices == 1u);
  BOOST_REQUIRE(in.commit().ok());
  auto notices = in.take_handoff();
  BOOST_REQUIRE_EQUAL(count(notices, "pd"), 1u);
  BOOST_TEST(notices.jobs.at("pd")[0].event->id == escalation);
  BOOST_TEST(
      (notices.jobs.at("pd")[0].state.news.state == event_state::acknowledged));
  BOOST_TEST((event(escalation).state() == event_state::acknowledged));
  BOOST_TEST(
      (event(counted[1].get<std::string>()).state() == event_state::open));
}

BOOST_AUTO_TEST_CASE(an_escalation_of_more_than_it_lists_is_answered_whole) {
  auto rule = denials_rule();
  rule.threshold = 300;
  intake in{*log,
            {make_route("pd", "pagerduty", true, *severity_rank("critical"))},
            4096,
            {rule}};
  accept(in, 299);
  auto fired = accept(in, 1);
  BOOST_REQUIRE_EQUAL(count(fired, "pd"), 1u);
  auto escalation = fired.jobs.at("pd")[0].event->id;
  auto esc = json::parse(event(escalation).body)["details"]["escalation"];
  BOOST_TEST(esc["count"] == 300);
  BOOST_TEST(esc["event_ids"].size() == 100u);
  auto members = log->members_of(escalation);
  BOOST_REQUIRE(members);
  BOOST_REQUIRE_EQUAL(members->size(), 300u);
  BOOST_TEST(members->back() == esc["event_ids"].back().get<std::string>());
  BOOST_TEST(log->members_of(members->front())->empty());

  // The oldest member, which the body does not list, reaches it.
  auto linked = log->escalations_of(members->front());
  BOOST_REQUIRE(linked);
  BOOST_TEST(*linked == std::vector<std::string>{escalation});

  // Acknowledging the escalation acknowledges all 300.
  auto out = in.answer(ack(escalation), now_ms());
  BOOST_REQUIRE(out);
  BOOST_REQUIRE_EQUAL(out->events.size(), 301u);
  for (auto& e : out->events)
    BOOST_TEST(e.changed);
  BOOST_REQUIRE(in.commit().ok());
  for (auto& id : *members)
    BOOST_TEST((event(id).state() == event_state::acknowledged));
}

BOOST_AUTO_TEST_CASE(a_restart_inside_the_window_keeps_the_count) {
  auto routes = [] {
    return std::vector<route>{
        make_route("pd", "pagerduty", true, *severity_rank("critical"))};
  };
  {
    intake first{*log, routes(), 4096, {denials_rule()}};
    BOOST_REQUIRE(first.restore_escalations(now_ms()).ok());
    accept(first, 3);
  }
  // Restarted: the 3 still count; 2 more make 5.
  intake second{*log, routes(), 4096, {denials_rule()}};
  BOOST_REQUIRE(second.restore_escalations(now_ms()).ok());
  BOOST_TEST(count(accept(second, 1), "pd") == 0u);
  BOOST_TEST(count(accept(second, 1), "pd") == 1u);
  // Restarted after the escalation: it is not raised again, and the events
  // it counted are not counted again.
  intake third{*log, routes(), 4096, {denials_rule()}};
  BOOST_REQUIRE(third.restore_escalations(now_ms()).ok());
  BOOST_TEST(count(accept(third, 4), "pd") == 0u);
  // Other agents are counted apart.
  BOOST_TEST(count(accept(third, 4, "agent-9"), "pd") == 0u);
}

BOOST_AUTO_TEST_CASE(a_reload_changes_every_endpoint_or_none) {
  auto config = [](const std::string& id, std::int64_t revision) {
    endpoint_config c;
    c.id = id;
    c.revision = revision;
    return c;
  };
  auto route_at = [&](const std::string& id, std::int64_t revision) {
    return route::of(config(id, revision));
  };
  intake in{*log, {route_at("a", 1), route_at("b", 1)}, 4096};
  using kind = endpoint_change::kind;
  auto change = [&](kind what, const std::string& id, std::int64_t revision,
                    std::int64_t based_on) {
    endpoint_change c;
    c.what = what;
    c.id = id;
    c.based_on = based_on;
    if (what != kind::remove) {
      c.config = config(id, revision);
      c.definition = R"({"id":")" + id + R"("})";
    }
    return c;
  };
  reconfiguration r;
  r.endpoints = {change(kind::create, "c", 1, 0),
                 change(kind::update, "a", 2, 1),
                 change(kind::remove, "b", 0, 1)};
  auto before = log->last_sequence();
  BOOST_REQUIRE(in.reconfigure(r, now_ms()).ok());
  BOOST_TEST(log->last_sequence() == before + 3); // one write, three records
  BOOST_TEST(in.routes_to("a"));
  BOOST_TEST(!in.routes_to("b"));
  BOOST_TEST(in.routes_to("c"));
  // One change made from a stale revision: none of them is made.
  before = log->last_sequence();
  r.endpoints = {change(kind::create, "d", 1, 0),
                 change(kind::update, "a", 3, 1)};
  auto refused = in.reconfigure(r, now_ms());
  BOOST_REQUIRE(!refused);
  BOOST_TEST(refused.error().code == "conflict");
  BOOST_TEST(!in.routes_to("d"));
  BOOST_TEST(log->last_sequence() == before);
  BOOST_TEST(!log->get_endpoint("d")->has_value());
  // Each change is checked against the table the ones before it leave.
  r.endpoints = {change(kind::remove, "c", 0, 1),
                 change(kind::create, "c", 1, 0)};
  BOOST_TEST(in.reconfigure(r, now_ms()).ok());
  r.endpoints = {change(kind::remove, "c", 0, 1),
                 change(kind::update, "c", 2, 1)};
  BOOST_TEST(in.reconfigure(r, now_ms()).error().code == "not_found");
  BOOST_TEST(in.routes_to("c"));
}

BOOST_AUTO_TEST_CASE(a_reload_keeps_unchanged_rules_and_rebuilds_new_ones) {
  auto routes = [] {
    return std::vector<route>{
        make_route("pd", "pagerduty", true, *severity_rank("critical"))};
  };
  intake in{*log, routes(), 4096, {denials_rule()}};
  BOOST_REQUIRE(in.restore_escalations(now_ms()).ok());
  accept(in, 3);
  // A new rule that fires on two denials, and the first one unchanged.
  auto twice = denials_rule();
  twice.name = "twice";
  twice.threshold = 2;
  reconfiguration r;
  r.escalation = std::vector<escalation_rule>{denials_rule(), twice};
  BOOST_REQUIRE(in.reconfigure(r, now_ms()).ok());
  auto rule_of = [&](const handoff& h) {
    BOOST_REQUIRE_EQUAL(count(h, "pd"), 1u);
    auto body = json::parse(event(h.jobs.at("pd")[0].event->id).body);
    return body["details"]["escalation"]["rule"].get<std::string>();
  };
  // The new rule counted the 3 denials from the log: the 4th fires it. The
  // unchanged one kept its 3 and the 4th: the 5th fires it.
  BOOST_TEST(rule_of(accept(in, 1)) == "twice");
  BOOST_TEST(rule_of(accept(in, 1)) == "repeated-denials");
  // Removed: it counts nothing more.
  r.escalation = std::vector<escalation_rule>{};
  BOOST_REQUIRE(in.reconfigure(r, now_ms()).ok());
  BOOST_TEST(!in.has_escalation_rules());
  BOOST_TEST(count(accept(in, 6), "pd") == 0u);
}

BOOST_AUTO_TEST_SUITE_END()

// How far the news of an answer to an episode goes (issue: a click on an
// escalation sent six replace_original posts to one response_url).
BOOST_FIXTURE_TEST_SUITE(episode_answers, store_fixture)

namespace {

/// The deliveries to `endpoint` handed over, by event id.
std::map<std::string, storage::delivery> by_event(const handoff& h,
                                                  const std::string& endpoint) {
  std::map<std::string, storage::delivery> out;
  if (auto it = h.jobs.find(endpoint); it != h.jobs.end())
    for (auto& j : it->second)
      out.emplace(j.state.event_id, j.state);
  return out;
}

answer_request click(std::string id, std::string channel = {},
                     std::string ts = {}) {
  auto r = ack(std::move(id), "alice");
  r.source = "slack";
  r.reply_url = "https://hooks.slack.com/actions/T1/2/abc";
  r.reply_transport = "slack";
  r.clicked_channel = std::move(channel);
  r.clicked_ts = std::move(ts);
  return r;
}

struct episode {
  std::string escalation;
  std::vector<std::string> members;
};

/// `n` denials that escalate, every delivery delivered (those to
/// `with_receipts` with a receipt).
episode escalate(store_fixture& f, intake& in, int n,
                 const std::string& with_receipts = {}) {
  auto first = store_fixture::accept(in, n - 1);
  auto last = store_fixture::accept(in, 1);
  f.deliver_all(first, with_receipts);
  f.deliver_all(last, with_receipts);
  episode e;
  for (auto& [endpoint, jobs] : last.jobs)
    for (auto& j : jobs)
      if (json::parse(f.event(j.state.event_id).body)["details"].contains(
              "escalation"))
        e.escalation = j.state.event_id;
  BOOST_REQUIRE(!e.escalation.empty());
  auto body = json::parse(f.event(e.escalation).body);
  for (auto& id : body["details"]["escalation"]["event_ids"])
    e.members.push_back(id.get<std::string>());
  BOOST_REQUIRE_EQUAL(e.members.size(), static_cast<std::size_t>(n));
  return e;
}

escalation_rule rule_of(int threshold) {
  auto r = denials_rule();
  r.threshold = threshold;
  return r;
}

} // namespace

BOOST_AUTO_TEST_CASE(a_click_on_an_escalation_replaces_that_message_once) {
  intake in{*log,
            {make_route("pd", "pagerduty", true, *severity_rank("critical")),
             make_route("slack", "slack", true)},
            4096,
            {denials_rule()}};
  auto e = escalate(*this, in, 5);
  auto out = in.answer(click(e.escalation), now_ms());
  BOOST_REQUIRE(out);
  BOOST_REQUIRE_EQUAL(out->events.size(), 6u);
  BOOST_REQUIRE(in.commit().ok());
  auto h = in.take_handoff();
  // Slack: one message, about the escalation, through the response_url,
  // saying five went with it.
  auto slack = by_event(h, "slack");
  BOOST_REQUIRE_EQUAL(slack.size(), 1u);
  auto& n = slack.begin()->second;
  BOOST_TEST(n.event_id == e.escalation);
  BOOST_TEST(n.news.reply_url == "https://hooks.slack.com/actions/T1/2/abc");
  BOOST_TEST(n.news.along == 5u);
  // PagerDuty: the one incident it was sent.
  BOOST_TEST(by_event(h, "pd").size() == 1u);
  // Every member is acknowledged, through the escalation.
  for (auto& m : e.members) {
    auto rec = event(m);
    BOOST_TEST((rec.state() == event_state::acknowledged));
    BOOST_TEST(rec.answers.back().via == e.escalation);
  }
  BOOST_TEST(event(e.escalation).answers.back().via.empty());
  // The same click again changes nothing and posts nothing.
  auto again = in.answer(click(e.escalation), now_ms());
  BOOST_REQUIRE(again);
  BOOST_TEST(!again->events[0].changed);
  BOOST_REQUIRE(in.commit().ok());
  BOOST_TEST(in.take_handoff().jobs.empty());
}

BOOST_AUTO_TEST_CASE(a_click_on_a_member_replaces_the_member_only) {
  intake in{*log,
            {make_route("pd", "pagerduty", true, *severity_rank("critical")),
             make_route("slack", "slack", true)},
            4096,
            {denials_rule()}};
  auto e = escalate(*this, in, 5);
  auto member = e.members[2];
  auto out = in.answer(click(member), now_ms());
  BOOST_REQUIRE(out);
  BOOST_REQUIRE_EQUAL(out->events.size(), 2u); // the member, its escalation
  BOOST_REQUIRE(in.commit().ok());
  auto h = in.take_handoff();
  auto slack = by_event(h, "slack");
  BOOST_REQUIRE_EQUAL(slack.size(), 1u);
  BOOST_TEST(slack.begin()->first == member);
  BOOST_TEST(!slack.begin()->second.news.reply_url.empty());
  BOOST_TEST(slack.begin()->second.news.along == 1u);
  // PagerDuty's incident is the escalation's: acknowledged with it.
  auto pd = by_event(h, "pd");
  BOOST_REQUIRE_EQUAL(pd.size(), 1u);
  BOOST_TEST(pd.begin()->first == e.escalation);
}

BOOST_AUTO_TEST_CASE(an_answer_to_fifty_sends_one_message_per_slack_endpoint) {
  intake in{*log,
            {make_route("pd", "pagerduty", true),
             make_route("slack-a", "slack", true),
             make_route("slack-b", "slack", true)},
            4096,
            {rule_of(50)}};
  auto e = escalate(*this, in, 50);
  auto out = in.answer(ack(e.escalation), now_ms());
  BOOST_REQUIRE(out);
  BOOST_REQUIRE_EQUAL(out->events.size(), 51u);
  BOOST_REQUIRE(in.commit().ok());
  auto h = in.take_handoff();
  for (auto* ep : {"slack-a", "slack-b"}) {
    auto slack = by_event(h, ep);
    BOOST_REQUIRE_EQUAL(slack.size(), 1u);
    BOOST_TEST(slack.begin()->first == e.escalation);
    BOOST_TEST(slack.begin()->second.news.along == 50u);
    BOOST_TEST(slack.begin()->second.news.reply_url.empty());
  }
  // PagerDuty was sent all 51 (no severity filter): each incident hears.
  BOOST_TEST(by_event(h, "pd").size() == 51u);
}

BOOST_AUTO_TEST_CASE(messages_with_receipts_are_edited_each_in_place) {
  intake in{*log,
            {make_route("pd", "pagerduty", true, *severity_rank("critical")),
             make_route("app", "slack", true),
             make_route("hook", "slack", true)},
            4096,
            {denials_rule()}};
  auto e = escalate(*this, in, 5, "app");
  // The click came from the app's message of the escalation.
  std::string clicked_ts;
  for (auto& id : event(e.escalation).delivery_ids) {
    auto d = log->get_delivery(id);
    BOOST_REQUIRE(d);
    if (*d && (*d)->endpoint_id == "app")
      clicked_ts = (*d)->id;
  }
  BOOST_REQUIRE(!clicked_ts.empty());
  auto out =
      in.answer(click(e.escalation, "C0123456789", clicked_ts), now_ms());
  BOOST_REQUIRE(out);
  BOOST_REQUIRE(in.commit().ok());
  auto h = in.take_handoff();
  // The app's six messages are each edited, carrying their receipts.
  auto app = by_event(h, "app");
  BOOST_REQUIRE_EQUAL(app.size(), 6u);
  for (auto& [id, n] : app) {
    BOOST_TEST(!n.news.receipt.empty());
    BOOST_TEST(n.news.reply_url.empty());
    BOOST_TEST(n.news.along == (id == e.escalation ? 5u : 0u));
  }
  BOOST_TEST(app.at(e.escalation).news.receipt == receipt_of(clicked_ts));
  // The clicked message was the app's: the other Slack endpoint posts a
  // message of its own, and the response_url is left alone.
  auto hook = by_event(h, "hook");
  BOOST_REQUIRE_EQUAL(hook.size(), 1u);
  BOOST_TEST(hook.begin()->second.news.reply_url.empty());
}

BOOST_AUTO_TEST_CASE(a_late_trigger_of_a_member_posts_no_message) {
  intake in{
      *log,
      {make_route("slack", "slack", true), make_route("app", "slack", true)},
      4096,
      {denials_rule()}};
  // Four members delivered; the fifth and the escalation still on their way
  // when the escalation is acknowledged.
  auto four = accept(in, 4);
  deliver_all(four, "app");
  auto last = accept(in, 1);
  std::string escalation, fifth;
  for (auto& [id, d] : by_event(last, "slack")) {
    auto body = json::parse(event(id).body);
    (body["details"].contains("escalation") ? escalation : fifth) = id;
  }
  BOOST_REQUIRE(!escalation.empty() && !fifth.empty());
  BOOST_REQUIRE(in.answer(ack(escalation), now_ms()));
  BOOST_REQUIRE(in.commit().ok());
  in.take_handoff();
  deliver_all(last, "app");
  // The webhook was told of nothing about the fifth (it went along with
  // the escalation); the app edits the message it just posted.
  BOOST_TEST(*in.follow_up(fifth, "slack", now_ms()) == false);
  BOOST_TEST(*in.follow_up(fifth, "app", now_ms()) == true);
  // The escalation itself was answered: its late message is followed.
  BOOST_TEST(*in.follow_up(escalation, "slack", now_ms()) == true);
  BOOST_REQUIRE(in.commit().ok());
  auto h = in.take_handoff();
  BOOST_TEST(by_event(h, "app").at(fifth).news.receipt ==
             receipt_of(by_event(last, "app").at(fifth).id));
}

BOOST_AUTO_TEST_SUITE_END()
