// The escalation rules on explicit time: episodes, windows, suppression,
// grouping, no loops, restore after a restart, bounded memory.
#include "delivery/escalation.hpp"

#include "common/time.hpp"

#include <boost/test/unit_test.hpp>

#include <map>
#include <random>
#include <set>

using namespace tocsin::delivery;
using tocsin::unix_ms;
using json = nlohmann::json;

namespace {

constexpr unix_ms t0 = 1'700'000'000'000; // 2023-11-14T22:13:20.000Z
constexpr unix_ms s = 1000;

/// An accepted event as the log holds it.
struct stored_event {
  std::string id;
  std::string type;
  std::string agent;
  std::string body;
  unix_ms at = 0;

  observed_event view() const { return {id, type, agent, body, at}; }
};

std::string body_of(const std::string& id, const std::string& type,
                    const std::string& agent, unix_ms at,
                    const std::string& details) {
  // The shape api/event_validation writes: details as nlohmann dumps it.
  json b = {{"id", id},
            {"type", type},
            {"timestamp", tocsin::format_rfc3339(at)},
            {"severity", "high"},
            {"summary", "something"},
            {"details", json::parse(details)}};
  if (!agent.empty())
    b["agent_id"] = agent;
  return b.dump();
}

stored_event event(std::string id, unix_ms at, std::string agent = "agent-1",
                   std::string type = "policy.denied",
                   std::string details = "{}") {
  auto body = body_of(id, type, agent, at, details);
  return {std::move(id), std::move(type), std::move(agent), std::move(body),
          at};
}

/// What the daemon makes of an escalation: an event of its own.
stored_event accepted(const derived_event& d, std::string id, unix_ms at) {
  return event(std::move(id), at, d.agent_id, d.type, d.details.dump());
}

escalation_rule denials(int threshold = 5, unix_ms window = 600 * s,
                        unix_ms suppress_for = 600 * s) {
  escalation_rule r;
  r.name = "repeated-denials";
  r.event_types = {"policy.denied"};
  r.threshold = threshold;
  r.window = window;
  r.suppress_for = suppress_for;
  r.summary = "{agent_id}: {count} policy denials in {window}s";
  return r;
}

std::vector<std::string> ids_of(const derived_event& d) {
  std::vector<std::string> out;
  for (auto& id : d.details["escalation"]["event_ids"])
    out.push_back(id.get<std::string>());
  return out;
}

/// Observes the events; returns what fired, keyed by the event that made it.
std::map<std::string, derived_event> run(escalator& e,
                                         const std::vector<stored_event>& evs) {
  std::map<std::string, derived_event> out;
  for (auto& ev : evs)
    for (auto& d : e.observe(ev.view()))
      out.emplace(ev.id + "/" + d.rule, std::move(d));
  return out;
}

/// A daemon in miniature: accepts producer events; makes each escalation an
/// event of its own, accepted right after the one that caused it, and
/// observes that too, as it observes everything it accepts.
struct daemon_sim {
  escalator esc;
  std::vector<stored_event> log;
  /// What fired, with the index of the producer event that made it.
  std::vector<std::pair<std::size_t, derived_event>> raised;

  void accept(std::size_t i, const stored_event& ev) {
    log.push_back(ev);
    for (auto& d : esc.observe(ev.view())) {
      auto own = accepted(d, "der_" + d.rule + "_" + ev.id, ev.at);
      raised.emplace_back(i, std::move(d));
      log.push_back(own);
      if (!esc.observe(own.view()).empty())
        BOOST_ERROR("an escalation escalated: " << own.id);
    }
  }
};

std::vector<escalation_rule> mixed_rules() {
  auto r1 = denials(3, 10 * s, 20 * s);
  r1.name = "r1";
  auto r2 = denials(4, 8 * s, 0);
  r2.name = "r2";
  r2.event_types = {"policy.denied", "content.detected"};
  r2.group_by = "details.session";
  auto r3 = denials(2, 5 * s, 2 * s);
  r3.name = "r3";
  r3.event_types = {"anomaly.detected"};
  auto r4 = denials(2, 3 * s, 30 * s); // suppression longer than the window
  r4.name = "r4";
  return {r1, r2, r3, r4};
}

std::vector<stored_event> random_events(std::size_t n, unsigned seed) {
  std::mt19937 rng{seed};
  auto pick = [&](int below) {
    return std::uniform_int_distribution<int>{0, below - 1}(rng);
  };
  static const char* types[] = {"policy.denied",    "policy.denied",
                                "policy.denied",    "content.detected",
                                "anomaly.detected", "system.health"};
  std::vector<stored_event> out;
  unix_ms at = t0;
  for (std::size_t i = 0; i < n; ++i) {
    at += pick(1500);
    auto session = pick(3)
                       ? R"({"session":"s)" + std::to_string(pick(3)) + "\"}"
                       : std::string{"{}"};
    out.push_back(event("e" + std::to_string(i), at,
                        "agent-" + std::to_string(pick(4)), types[pick(6)],
                        session));
  }
  return out;
}

} // namespace

BOOST_AUTO_TEST_SUITE(escalation_rules)

BOOST_AUTO_TEST_CASE(five_denials_in_the_window_raise_one_escalation) {
  escalator e{{denials()}};
  for (int i = 1; i <= 4; ++i)
    BOOST_TEST(
        e.observe(event("e" + std::to_string(i), t0 + (i - 1) * s).view())
            .empty());
  auto out = e.observe(event("e5", t0 + 4 * s).view());
  BOOST_REQUIRE_EQUAL(out.size(), 1u);
  auto& d = out[0];
  BOOST_TEST(d.rule == "repeated-denials");
  BOOST_TEST(d.group == "agent-1");
  BOOST_TEST(d.type == "policy.denied");
  BOOST_TEST(d.severity == "critical");
  BOOST_TEST(d.agent_id == "agent-1");
  BOOST_TEST(d.summary == "agent-1: 5 policy denials in 600s");
  BOOST_TEST(d.details.dump() ==
             R"({"escalation":{"rule":"repeated-denials","group":"agent-1",)"
             R"("count":5,"window":600,"first_at":"2023-11-14T22:13:20.000Z",)"
             R"("last_at":"2023-11-14T22:13:24.000Z",)"
             R"("event_ids":["e1","e2","e3","e4","e5"]}})");
}

BOOST_AUTO_TEST_CASE(four_are_not_enough) {
  escalator e{{denials()}};
  for (int i = 1; i <= 4; ++i)
    BOOST_TEST(
        e.observe(event("e" + std::to_string(i), t0 + i * 100 * s).view())
            .empty());
}

BOOST_AUTO_TEST_CASE(five_spread_over_two_windows_raise_nothing) {
  escalator e{{denials(5, 10 * s)}};
  std::vector<stored_event> evs;
  for (unix_ms at : {0, 3, 6, 11, 14, 17, 22, 25})
    evs.push_back(event("e" + std::to_string(at), t0 + at * s));
  BOOST_TEST(run(e, evs).empty());
}

BOOST_AUTO_TEST_CASE(the_window_is_open_at_its_old_end) {
  // (t - window, t]: an event exactly `window` old no longer counts.
  escalator e{{denials(5, 10 * s)}};
  BOOST_TEST(run(e, {event("e1", t0), event("e2", t0 + 1), event("e3", t0 + 2),
                     event("e4", t0 + 3), event("e5", t0 + 10 * s),
                     event("e6", t0 + 10 * s + 1)})
                 .empty());
  auto out = e.observe(event("e7", t0 + 10 * s + 1).view());
  BOOST_REQUIRE_EQUAL(out.size(), 1u);
  BOOST_TEST(ids_of(out[0]) ==
                 (std::vector<std::string>{"e3", "e4", "e5", "e6", "e7"}),
             boost::test_tools::per_element());
  BOOST_TEST(out[0].details["escalation"]["first_at"] ==
             tocsin::format_rfc3339(t0 + 2));
}

BOOST_AUTO_TEST_CASE(
    suppression_holds_the_group_back_then_a_new_episode_fires) {
  escalator e{{denials(3, 10 * s, 60 * s)}};
  std::vector<stored_event> first{event("e1", t0), event("e2", t0 + s),
                                  event("e3", t0 + 2 * s)};
  auto fired = run(e, first);
  BOOST_REQUIRE_EQUAL(fired.size(), 1u);
  BOOST_TEST(fired.count("e3/repeated-denials") == 1u);
  // The 4th to 9th: three and more in the window again, but suppressed.
  std::vector<stored_event> more;
  for (int i = 4; i <= 9; ++i)
    more.push_back(event("e" + std::to_string(i), t0 + (i - 1) * s));
  BOOST_TEST(run(e, more).empty());
  // After suppress_for, three new events make a second escalation of them
  // alone.
  auto second = run(e, {event("e10", t0 + 62 * s), event("e11", t0 + 63 * s),
                        event("e12", t0 + 64 * s)});
  BOOST_REQUIRE_EQUAL(second.size(), 1u);
  auto& d = second.at("e12/repeated-denials");
  BOOST_TEST(ids_of(d) == (std::vector<std::string>{"e10", "e11", "e12"}),
             boost::test_tools::per_element());
  BOOST_TEST(d.details["escalation"]["count"] == 3);
}

BOOST_AUTO_TEST_CASE(the_first_event_after_suppression_fires_on_a_full_window) {
  escalator e{{denials(3, 10 * s, 60 * s)}};
  BOOST_REQUIRE_EQUAL(
      run(e, {event("e1", t0), event("e2", t0), event("e3", t0)}).size(), 1u);
  std::vector<stored_event> late;
  for (int i = 0; i < 5; ++i) // at 55 to 59 s, still suppressed
    late.push_back(event("l" + std::to_string(i), t0 + (55 + i) * s));
  BOOST_TEST(run(e, late).empty());
  // At 62 s the window holds six: the newest three are listed.
  auto out = e.observe(event("x", t0 + 62 * s).view());
  BOOST_REQUIRE_EQUAL(out.size(), 1u);
  BOOST_TEST(ids_of(out[0]) == (std::vector<std::string>{"l3", "l4", "x"}),
             boost::test_tools::per_element());
  BOOST_TEST(out[0].details["escalation"]["count"] == 3);
  // Those before it ended with the episode: nothing more.
  BOOST_TEST(e.observe(event("y", t0 + 63 * s).view()).empty());
}

BOOST_AUTO_TEST_CASE(without_suppression_each_new_episode_fires) {
  escalator e{{denials(3, 10 * s, 0)}};
  std::vector<stored_event> evs;
  for (int i = 1; i <= 7; ++i)
    evs.push_back(event("e" + std::to_string(i), t0 + i));
  auto out = run(e, evs);
  BOOST_REQUIRE_EQUAL(out.size(), 2u);
  BOOST_TEST(ids_of(out.at("e3/repeated-denials")) ==
                 (std::vector<std::string>{"e1", "e2", "e3"}),
             boost::test_tools::per_element());
  BOOST_TEST(ids_of(out.at("e6/repeated-denials")) ==
                 (std::vector<std::string>{"e4", "e5", "e6"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(agents_are_counted_separately) {
  escalator e{{denials()}};
  std::vector<stored_event> evs;
  for (int i = 0; i < 8; ++i)
    evs.push_back(event("e" + std::to_string(i), t0 + i * s,
                        i % 2 ? "agent-b" : "agent-a"));
  BOOST_TEST(run(e, evs).empty());
  auto out = e.observe(event("e8", t0 + 8 * s, "agent-a").view());
  BOOST_REQUIRE_EQUAL(out.size(), 1u);
  BOOST_TEST(out[0].group == "agent-a");
  BOOST_TEST(ids_of(out[0]) ==
                 (std::vector<std::string>{"e0", "e2", "e4", "e6", "e8"}),
             boost::test_tools::per_element());
  BOOST_TEST(e.groups() == 2u);
}

BOOST_AUTO_TEST_CASE(group_by_a_details_key) {
  auto rule = denials(3);
  rule.name = "session-denials";
  rule.group_by = "details.session";
  rule.summary = "";
  escalator e{{rule}};
  std::vector<stored_event> evs{
      event("a", t0, "agent-1", "policy.denied", R"({"session":"s1"})"),
      event("b", t0 + 1, "agent-2", "policy.denied", R"({"other":"s1"})"),
      event("c", t0 + 2, "agent-2", "policy.denied", R"({"session":7})"),
      event("d", t0 + 3, "agent-2", "policy.denied", R"({"session":""})"),
      event("e", t0 + 4, "agent-2", "policy.denied", R"({"session":"s2"})"),
      event("f", t0 + 5, "agent-3", "policy.denied",
            R"({"session":"s1","x":[1,2]})")};
  BOOST_TEST(run(e, evs).empty());
  BOOST_TEST(e.groups() == 2u);
  auto out = e.observe(
      event("g", t0 + 6, "agent-4", "policy.denied", R"({"session":"s1"})")
          .view());
  BOOST_REQUIRE_EQUAL(out.size(), 1u);
  BOOST_TEST(out[0].group == "s1");
  BOOST_TEST(out[0].agent_id == "agent-4"); // the last event's
  BOOST_TEST(ids_of(out[0]) == (std::vector<std::string>{"a", "f", "g"}),
             boost::test_tools::per_element());
  BOOST_TEST(out[0].summary ==
             "s1: 3 policy.denied events in 600s (rule session-denials)");
}

BOOST_AUTO_TEST_CASE(only_the_rules_types_count_and_the_last_one_names_it) {
  auto rule = denials(3, 1500, 1500);
  rule.event_types = {"content.detected", "anomaly.detected"};
  rule.summary = "{rule}/{group}/{type}/{count}/{window}/{agent_id}/{x";
  rule.severity = "high";
  escalator e{{rule}};
  auto out = run(e, {event("a", t0, "ag", "content.detected"),
                     event("b", t0 + 1, "ag", "policy.denied"),
                     event("c", t0 + 2, "ag", "system.health"),
                     event("d", t0 + 3, "ag", "anomaly.detected"),
                     event("e", t0 + 4, "ag", "anomaly.detected")});
  BOOST_REQUIRE_EQUAL(out.size(), 1u);
  auto& d = out.at("e/repeated-denials");
  BOOST_TEST(d.type == "anomaly.detected");
  BOOST_TEST(d.severity == "high");
  BOOST_TEST(ids_of(d) == (std::vector<std::string>{"a", "d", "e"}),
             boost::test_tools::per_element());
  BOOST_TEST(d.summary == "repeated-denials/ag/anomaly.detected/3/1.5/ag/{x");
  BOOST_TEST(d.details["escalation"]["window"] == 1.5);
}

BOOST_AUTO_TEST_CASE(events_without_a_group_value_are_not_counted) {
  auto rule = denials(2);
  rule.event_types = {"system.health"};
  escalator e{{rule}};
  auto out =
      run(e, {event("a", t0, "", "system.health"),
              event("b", t0 + 1, "", "system.health"),
              event("c", t0 + 2, std::string(257, 'x'), "system.health"),
              event("d", t0 + 3, std::string(257, 'x'), "system.health")});
  BOOST_TEST(out.empty());
  BOOST_TEST(e.groups() == 0u);
}

BOOST_AUTO_TEST_CASE(derived_events_are_never_counted) {
  // A rule that would escalate its own escalations if they counted.
  escalator e{{denials(2, 600 * s, 0)}};
  auto out = run(e, {event("e1", t0), event("e2", t0 + 1)});
  BOOST_REQUIRE_EQUAL(out.size(), 1u);
  auto& d = out.begin()->second;
  for (int i = 0; i < 5; ++i)
    BOOST_TEST(
        e.observe(accepted(d, "d" + std::to_string(i), t0 + 2 + i).view())
            .empty());
  // Nor those of another rule, nor anything that looks like one.
  auto other = d;
  other.details["escalation"]["rule"] = "another-rule";
  BOOST_TEST(e.observe(accepted(other, "o1", t0 + 10).view()).empty());
  BOOST_TEST(e.observe(accepted(other, "o2", t0 + 11).view()).empty());
  // One new event is one, not three.
  BOOST_TEST(e.observe(event("e3", t0 + 12).view()).empty());
  auto next = e.observe(event("e4", t0 + 13).view());
  BOOST_REQUIRE_EQUAL(next.size(), 1u);
  BOOST_TEST(ids_of(next[0]) == (std::vector<std::string>{"e3", "e4"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(horizon_and_no_rules) {
  escalator none{{}};
  BOOST_TEST(none.empty());
  BOOST_TEST(none.horizon() == 0);
  BOOST_TEST(none.observe(event("e1", t0).view()).empty());
  auto slow = denials(3, 10 * s, 60 * s);
  slow.name = "slow";
  escalator e{{denials(3, 30 * s, 5 * s), slow}};
  BOOST_TEST(!e.empty());
  BOOST_TEST(e.horizon() == 60 * s);
}

BOOST_AUTO_TEST_CASE(the_rules_are_checked) {
  BOOST_TEST(check_rule(denials()).ok());
  auto field_of = [](auto change) {
    auto r = denials();
    change(r);
    auto st = check_rule(r);
    return st ? std::string{} : st.error().field;
  };
  BOOST_TEST(field_of([](auto& r) { r.name = "a b"; }) == "name");
  BOOST_TEST(field_of([](auto& r) { r.name = std::string(65, 'a'); }) ==
             "name");
  BOOST_TEST(field_of([](auto& r) { r.event_types = {}; }) == "event_types");
  BOOST_TEST(field_of([](auto& r) { r.event_types = {"policy.approved"}; }) ==
             "event_types");
  BOOST_TEST(field_of([](auto& r) {
               r.event_types = {"policy.denied", "policy.denied"};
             }) == "event_types");
  BOOST_TEST(field_of([](auto& r) { r.threshold = 1; }) == "threshold");
  BOOST_TEST(field_of([](auto& r) { r.threshold = 1001; }) == "threshold");
  BOOST_TEST(field_of([](auto& r) { r.window = 0; }) == "window");
  BOOST_TEST(field_of([](auto& r) { r.suppress_for = -1; }) == "suppress_for");
  for (auto* g : {"agent", "details.", "details.a.b", "details.a b"})
    BOOST_TEST(field_of([&](auto& r) { r.group_by = g; }) == "group_by", g);
  BOOST_TEST(
      field_of([](auto& r) { r.group_by = "details.session_id"; }).empty());
  BOOST_TEST(field_of([](auto& r) { r.severity = "urgent"; }) == "severity");
  BOOST_TEST(field_of([](auto& r) { r.summary = "{agent}"; }) == "summary");
  BOOST_TEST(field_of([](auto& r) { r.summary = "{}"; }) == "summary");
  BOOST_TEST(field_of([](auto& r) { r.summary = "{count} {"; }).empty());
}

BOOST_AUTO_TEST_CASE(time_never_runs_backwards) {
  escalator e{{denials(2, 10 * s)}};
  BOOST_TEST(e.observe(event("e1", t0 + 20 * s).view()).empty());
  // Accepted "earlier" (a clock step): taken at the time already seen.
  auto out = e.observe(event("e2", t0).view());
  BOOST_REQUIRE_EQUAL(out.size(), 1u);
  BOOST_TEST(out[0].details["escalation"]["first_at"] ==
             out[0].details["escalation"]["last_at"]);
}

BOOST_AUTO_TEST_CASE(a_restart_at_any_point_neither_loses_nor_repeats) {
  auto rules = mixed_rules();
  auto producer = random_events(200, 7);
  daemon_sim whole{escalator{rules}, {}, {}};
  std::vector<std::size_t> log_before; // log size before producer event i
  for (std::size_t i = 0; i < producer.size(); ++i) {
    log_before.push_back(whole.log.size());
    whole.accept(i, producer[i]);
  }
  log_before.push_back(whole.log.size());
  // The sequence exercises every rule, more than once.
  std::map<std::string, int> per_rule;
  std::map<std::string, std::set<std::string>> counted;
  for (auto& [i, d] : whole.raised) {
    ++per_rule[d.rule];
    for (auto& id : ids_of(d))
      BOOST_TEST(counted[d.rule].insert(id).second,
                 id << " counted twice by " << d.rule);
  }
  for (auto& r : rules)
    BOOST_TEST(per_rule[r.name] >= 2, r.name << " fired " << per_rule[r.name]);

  auto horizon = escalator{rules}.horizon();
  for (std::size_t k = 0; k <= producer.size(); ++k) {
    // Restarted just after the last event before k, or just before event k:
    // the daemon restores what was accepted in the horizon before then.
    std::vector<unix_ms> restarts{k < producer.size() ? producer[k].at
                                                      : producer.back().at + 1};
    if (k > 0)
      restarts.push_back(producer[k - 1].at);
    for (auto restart : restarts) {
      daemon_sim after{escalator{rules}, {}, {}};
      for (std::size_t j = 0; j < log_before[k]; ++j)
        if (whole.log[j].at >= restart - horizon)
          after.esc.restore(whole.log[j].view());
      for (std::size_t i = k; i < producer.size(); ++i)
        after.accept(i, producer[i]);
      std::vector<std::pair<std::size_t, derived_event>> expected;
      for (auto& r : whole.raised)
        if (r.first >= k)
          expected.push_back(r);
      BOOST_TEST_REQUIRE(after.raised.size() == expected.size(),
                         "restart before event " << k << " at " << restart);
      for (std::size_t n = 0; n < expected.size(); ++n) {
        auto& [i, d] = after.raised[n];
        auto& [ei, ed] = expected[n];
        BOOST_TEST_REQUIRE(i == ei, "restart before event " << k);
        BOOST_TEST_REQUIRE(d.details.dump() == ed.details.dump(),
                           "restart before event " << k);
        BOOST_TEST_REQUIRE(d.summary == ed.summary);
        BOOST_TEST_REQUIRE(d.agent_id == ed.agent_id);
        BOOST_TEST_REQUIRE(d.type == ed.type);
        BOOST_TEST_REQUIRE(d.severity == ed.severity);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(a_reload_keeps_the_state_of_the_rules_it_leaves_alone) {
  auto before = mixed_rules(); // r1, r2, r3, r4
  auto after = before;
  after[2].threshold = 3;         // r3 changed
  after.erase(after.begin() + 3); // r4 removed
  auto r5 = denials(2, 4 * s, 0); // r5 new
  r5.name = "r5";
  after.push_back(r5);
  auto producer = random_events(200, 11);
  daemon_sim whole{escalator{before}, {}, {}};
  for (std::size_t i = 0; i < producer.size(); ++i)
    whole.accept(i, producer[i]);
  // What `raised` holds from producer event k on, of the rules named.
  auto from = [](const daemon_sim& sim, std::size_t k,
                 std::set<std::string> rules) {
    std::vector<std::pair<std::size_t, std::string>> out;
    for (auto& [i, d] : sim.raised)
      if (i >= k && rules.count(d.rule))
        out.emplace_back(i, d.details.dump());
    return out;
  };
  for (std::size_t k : {50u, 100u, 150u}) {
    daemon_sim reloaded{escalator{before}, {}, {}};
    for (std::size_t i = 0; i < k; ++i)
      reloaded.accept(i, producer[i]);
    escalator next{after};
    BOOST_TEST(next.adopt(std::move(reloaded.esc)) == 2u); // r1, r2
    reloaded.esc = std::move(next);
    for (std::size_t i = k; i < producer.size(); ++i)
      reloaded.accept(i, producer[i]);
    // The rules left alone raise what they raise without a reload.
    auto kept = from(whole, k, {"r1", "r2"});
    BOOST_TEST(!kept.empty());
    BOOST_TEST((from(reloaded, k, {"r1", "r2"}) == kept), "reload at " << k);
    // The new and changed ones count from the reload on, as rules of their
    // own would; the removed one raises nothing more.
    daemon_sim fresh{escalator{{after[2], r5}}, {}, {}};
    for (std::size_t i = k; i < producer.size(); ++i)
      fresh.accept(i, producer[i]);
    BOOST_TEST(
        (from(reloaded, k, {"r3", "r5"}) == from(fresh, k, {"r3", "r5"})),
        "reload at " << k);
    BOOST_TEST(from(reloaded, k, {"r4"}).empty());
  }
}

BOOST_AUTO_TEST_CASE(a_stored_escalation_is_not_raised_again_a_lost_one_is) {
  auto rule = denials(3, 10 * s, 60 * s);
  std::vector<stored_event> before{event("e1", t0), event("e2", t0 + s),
                                   event("e3", t0 + 2 * s)};
  escalator first{{rule}};
  auto fired = run(first, before);
  BOOST_REQUIRE_EQUAL(fired.size(), 1u);
  auto derived = accepted(fired.begin()->second, "d1", t0 + 2 * s);
  std::vector<stored_event> after{event("e4", t0 + 3 * s),
                                  event("e5", t0 + 4 * s),
                                  event("e6", t0 + 5 * s)};

  escalator stored{{rule}};
  for (auto& ev : before)
    stored.restore(ev.view());
  stored.restore(derived.view());
  BOOST_TEST(run(stored, after).empty());

  // The crash came between the events and their escalation: raised again by
  // the next event, from what the window still holds.
  escalator lost{{rule}};
  for (auto& ev : before)
    lost.restore(ev.view());
  auto again = run(lost, after);
  BOOST_REQUIRE_EQUAL(again.size(), 1u);
  BOOST_TEST(ids_of(again.at("e4/repeated-denials")) ==
                 (std::vector<std::string>{"e2", "e3", "e4"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_million_groups_stay_within_the_cap) {
  escalator e{{denials(3, 3600 * s)}, escalator_limits{1000}};
  const std::string body = R"({"details":{}})";
  for (int i = 0; i < 1'000'000; ++i) {
    auto id = "e" + std::to_string(i);
    auto agent = "agent-" + std::to_string(i);
    if (!e.observe({id, "policy.denied", agent, body, t0 + i}).empty())
      BOOST_FAIL("one event per group fired");
  }
  BOOST_TEST(e.groups() == 1000u);
  BOOST_TEST(e.forgotten_groups() == 999'000u);
}

BOOST_AUTO_TEST_CASE(expired_groups_are_forgotten_as_time_passes) {
  escalator e{{denials(3, 1 * s, 1 * s)}};
  const std::string body = R"({"details":{}})";
  std::size_t most = 0;
  const int n = 1'000'000;
  for (int i = 0; i < n; ++i) {
    auto id = "e" + std::to_string(i);
    auto agent = "agent-" + std::to_string(i);
    (void)e.observe({id, "policy.denied", agent, body, t0 + i});
    most = std::max(most, e.groups());
  }
  // Those of the last second, give or take the few pruned per event.
  BOOST_TEST(most <= 1001u);
  BOOST_TEST(e.forgotten_groups() == 0u);
  e.prune(t0 + n + e.horizon());
  BOOST_TEST(e.groups() == 0u);
}

BOOST_AUTO_TEST_CASE(a_forgotten_group_starts_again) {
  escalator e{{denials(3, 600 * s)}, escalator_limits{2}};
  // b (1 event) is further from firing than a (2): c takes b's place, then
  // b (back, 1 event) takes c's, the least recently seen of two with one.
  BOOST_TEST(run(e, {event("a1", t0, "a"), event("a2", t0 + 1, "a"),
                     event("b1", t0 + 2, "b"), event("c1", t0 + 3, "c"),
                     event("b2", t0 + 4, "b"), event("b3", t0 + 5, "b")})
                 .empty());
  BOOST_TEST(e.forgotten_groups() == 2u); // b, then c
  BOOST_TEST(e.forgotten_groups(0) == 2u);
  auto out = e.observe(event("b4", t0 + 6, "b").view());
  BOOST_REQUIRE_EQUAL(out.size(), 1u);
  BOOST_TEST(ids_of(out[0]) == (std::vector<std::string>{"b2", "b3", "b4"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_flood_of_new_groups_does_not_flush_one_a_step_short) {
  escalator e{{denials(5, 600 * s)}, escalator_limits{100}};
  std::vector<stored_event> evs;
  for (int i = 0; i < 4; ++i)
    evs.push_back(event("v" + std::to_string(i), t0 + i, "victim"));
  // 10,000 agents nobody has seen, one event each (another token's).
  for (int i = 0; i < 10'000; ++i)
    evs.push_back(event("f" + std::to_string(i), t0 + 10 + i,
                        "flood-" + std::to_string(i)));
  BOOST_TEST(run(e, evs).empty());
  BOOST_TEST(e.groups() == 100u);
  BOOST_TEST(e.forgotten_groups() == 9'901u); // 10,001 seen, 100 kept
  BOOST_TEST(e.forgotten_groups(0) == 9'901u);
  auto out = e.observe(event("v4", t0 + 20'000, "victim").view());
  BOOST_REQUIRE_EQUAL(out.size(), 1u);
  BOOST_TEST(ids_of(out[0]) ==
                 (std::vector<std::string>{"v0", "v1", "v2", "v3", "v4"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(forgetting_takes_the_lowest_count_then_the_oldest) {
  escalator e{{denials(5, 600 * s)}, escalator_limits{3}};
  // a: 3 events, b: 1, c: 2 (b seen last of all).
  BOOST_TEST(run(e, {event("a1", t0, "a"), event("c1", t0 + 1, "c"),
                     event("a2", t0 + 2, "a"), event("c2", t0 + 3, "c"),
                     event("a3", t0 + 4, "a"), event("b1", t0 + 5, "b")})
                 .empty());
  // d forgets b (1 of 5), not c (2) nor a (3), though both were seen
  // before it.
  BOOST_TEST(e.observe(event("d1", t0 + 6, "d").view()).empty());
  BOOST_TEST(e.forgotten_groups() == 1u);
  // The next new group forgets d, the only one with 1.
  BOOST_TEST(e.observe(event("x1", t0 + 7, "x").view()).empty());
  BOOST_TEST(e.forgotten_groups() == 2u);
  // a and c kept their counts: two more of a, three more of c fire.
  auto a = run(e, {event("a4", t0 + 8, "a"), event("a5", t0 + 9, "a")});
  BOOST_REQUIRE_EQUAL(a.size(), 1u);
  BOOST_TEST(ids_of(a.begin()->second) ==
                 (std::vector<std::string>{"a1", "a2", "a3", "a4", "a5"}),
             boost::test_tools::per_element());
  // a fired: its episode is empty now (0), so y forgets a, not x (1) nor
  // c (2).
  BOOST_TEST(e.observe(event("y1", t0 + 10, "y").view()).empty());
  BOOST_TEST(e.forgotten_groups() == 3u);
  auto c = run(e, {event("c3", t0 + 11, "c"), event("c4", t0 + 12, "c"),
                   event("c5", t0 + 13, "c")});
  BOOST_REQUIRE_EQUAL(c.size(), 1u);
  BOOST_TEST(ids_of(c.begin()->second).front() == "c1");
  // Ties go by recency: x and y hold one each, x seen before y.
  BOOST_TEST(e.observe(event("z1", t0 + 14, "z").view()).empty());
  auto y = run(e, {event("y2", t0 + 15, "y"), event("y3", t0 + 16, "y"),
                   event("y4", t0 + 17, "y"), event("y5", t0 + 18, "y")});
  BOOST_REQUIRE_EQUAL(y.size(), 1u); // y kept its first: x was forgotten
  BOOST_TEST(ids_of(y.begin()->second).front() == "y1");
}

BOOST_AUTO_TEST_CASE(a_derived_event_lists_the_newest_100_and_counts_all) {
  auto rule = denials(250, 600 * s, 0);
  escalator e{{rule}};
  std::vector<stored_event> evs;
  for (int i = 0; i < 250; ++i)
    evs.push_back(event("e" + std::to_string(1000 + i), t0 + i));
  std::vector<counted_in> where;
  std::vector<derived_event> out;
  for (auto& ev : evs) {
    out = e.observe(ev.view(), &where);
    BOOST_REQUIRE_EQUAL(where.size(), 1u);
    BOOST_TEST(where[0].rule == "repeated-denials");
    BOOST_TEST(where[0].group == "agent-1");
  }
  BOOST_REQUIRE_EQUAL(out.size(), 1u);
  auto& esc = out[0].details["escalation"];
  BOOST_TEST(esc["count"] == 250);
  BOOST_TEST(esc["event_ids_truncated"] == true);
  auto ids = ids_of(out[0]);
  BOOST_REQUIRE_EQUAL(ids.size(), max_listed_event_ids);
  BOOST_TEST(ids.front() == "e1150");
  BOOST_TEST(ids.back() == "e1249");
  BOOST_TEST(esc["first_at"] == tocsin::format_rfc3339(t0));
  std::string all;
  for (auto& ev : evs)
    all += ev.id + "\n";
  BOOST_TEST(out[0].members == all);

  // After a restart, its stored event ends the episode of all 250, not
  // only of the 100 it lists: 249 more do not fire.
  escalator again{{rule}};
  for (auto& ev : evs)
    again.restore(ev.view());
  again.restore(accepted(out[0], "d1", t0 + 249).view());
  std::vector<stored_event> more;
  for (int i = 0; i < 249; ++i)
    more.push_back(event("m" + std::to_string(1000 + i), t0 + 300 + i));
  BOOST_TEST(run(again, more).empty());
  BOOST_TEST(again.observe(event("m2000", t0 + 600, "agent-1").view()).size() ==
             1u);
}

BOOST_AUTO_TEST_SUITE_END()
