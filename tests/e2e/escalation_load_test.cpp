// Escalations under load, through the real daemon (issue 24, item 3):
// - a rule with threshold 1,000 over 1,000 agents, whose last batch makes
//   all 1,000 fire in one commit, costs the daemon at most 100 MiB more
//   RSS (peak); each derived event lists the newest 100 of its 1,000 events
//   and counts all of them; acknowledging one acknowledges all 1,000;
// - a flood of new groups from another token does not make a group one
//   event short of its threshold forget its count; the forgetting is
//   counted in /metrics and logged.
// The time the firing commit takes is measured (printed), not asserted:
// see README, "Escalation rules", for the numbers and how to take them.
#include "tests/e2e/fixture.hpp"

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <fstream>
#include <set>
#include <string>
#include <vector>

using namespace tocsin::test;
using nlohmann::json;

namespace {

/// A field of /proc/<pid>/status in kB ("VmRSS", "VmHWM").
long proc_kb(pid_t pid, const std::string& field) {
  std::ifstream in{"/proc/" + std::to_string(pid) + "/status"};
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(field + ":", 0) == 0)
      return std::stol(line.substr(field.size() + 1));
  BOOST_FAIL("no " << field << " in /proc/" << pid << "/status");
  return 0;
}

/// Resets the peak RSS (VmHWM) of `pid` to its current RSS.
void reset_peak(pid_t pid) {
  std::ofstream out{"/proc/" + std::to_string(pid) + "/clear_refs"};
  out << "5";
  out.close();
  BOOST_REQUIRE_MESSAGE(out, "cannot reset the peak RSS of " << pid);
}

json small_denial(const std::string& agent) {
  return {{"type", "policy.denied"},
          {"agent_id", agent},
          {"severity", "high"},
          {"summary", "denied"}};
}

std::string metrics_text(daemon_fixture& f) {
  auto r = f.get("/metrics", f.admin_token());
  BOOST_REQUIRE_EQUAL(r.status, 200);
  return r.body;
}

} // namespace

BOOST_AUTO_TEST_SUITE(escalation_load)

BOOST_AUTO_TEST_CASE(a_thousand_escalations_in_one_commit_cost_little) {
  constexpr int groups = 1000;
#ifdef TOCSIN_TESTS_SANITIZED
  // Under ASan (CI) 200 denials per agent: 200,000 events instead of a
  // million (about 70 s less), still past the 100 an escalation lists. The
  // memory bound below is the product's only in a plain build, which posts
  // the full million.
  constexpr int threshold = 200;
#else
  constexpr int threshold = 1000;
#endif
  daemon_fixture f;
  auto pager = f.make_receiver();
  // Only the escalations are delivered: the 1,000,000 denials go nowhere.
  endpoint_spec hook{"pager", daemon_fixture::url_of(*pager)};
  hook.extra = "min_severity = \"critical\"\n";
  f.start({hook}, {},
          "[[escalation]]\nname = \"burst\"\ntype = \"policy.denied\"\n"
          "threshold = " +
              std::to_string(threshold) +
              "\nwindow = 3600\ngroup_by = \"agent_id\"\n"
              "severity = \"critical\"\n");

  // Batch k holds the k-th denial of each agent: the last one fires all.
  json batch = json::array();
  for (int g = 0; g < groups; ++g)
    batch.push_back(small_denial("agent-" + std::to_string(g)));
  json body{{"events", batch}};
  // Per agent, the ids of its newest 100 events (what its escalation lists)
  // and a few older ones.
  std::vector<std::vector<std::string>> ids(groups);
  std::vector<std::string> first_of(groups);
  auto before_last = std::chrono::steady_clock::duration{};
  for (int k = 0; k < threshold - 1; ++k) {
    auto t = std::chrono::steady_clock::now();
    auto got = f.post_events(body);
    before_last = std::chrono::steady_clock::now() - t;
    BOOST_REQUIRE_EQUAL(got.size(), static_cast<std::size_t>(groups));
    for (int g = 0; g < groups; ++g) {
      if (k == 0)
        first_of[g] = got[g];
      if (k >= threshold - 100)
        ids[g].push_back(got[g]);
    }
  }
  BOOST_TEST(pager->count() == 0u);

  auto pid = f.process().pid();
  auto rss_before = proc_kb(pid, "VmRSS");
  reset_peak(pid);
  auto t0 = std::chrono::steady_clock::now();
  auto last = f.post_events(body);
  auto took = std::chrono::steady_clock::now() - t0;
  for (int g = 0; g < groups; ++g)
    ids[g].push_back(last[g]);
  BOOST_REQUIRE_MESSAGE(pager->wait_for(groups, std::chrono::seconds{60}),
                        "the endpoint got " << pager->count() << " of "
                                            << groups << " escalations");
  auto peak = proc_kb(pid, "VmHWM");
  auto rss_after = proc_kb(pid, "VmRSS");
  auto ms = [](auto d) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  };
  BOOST_TEST_MESSAGE("the batch that fired "
                     << groups << " escalations: " << ms(took)
                     << " ms (the one before it: " << ms(before_last)
                     << " ms); RSS " << rss_before / 1024 << " MiB before, "
                     << rss_after / 1024 << " MiB after, peak " << peak / 1024
                     << " MiB");
  // Under ASan the daemon keeps 256 MB of freed memory in quarantine and pads
  // every allocation: the bound is the product's only in a plain build. The
  // code before this bound took +1,063 MiB in a plain build, far over
  // either.
#ifdef TOCSIN_TESTS_SANITIZED
  constexpr long bound_kib = 400 * 1024;
#else
  constexpr long bound_kib = 100 * 1024;
#endif
  BOOST_TEST(peak - rss_before <= bound_kib,
             "the firing commit took " << (peak - rss_before) / 1024
                                       << " MiB more RSS at its peak");

  // Each escalation: its agent's newest 100 events listed, 1,000 counted.
  std::set<std::string> agents;
  std::string escalation;
  int agent_of_it = -1;
  for (auto& req : pager->requests()) {
    auto ev = json::parse(req.body, nullptr, false);
    auto& esc = ev["details"]["escalation"];
    BOOST_REQUIRE_MESSAGE(esc.is_object(), req.body.substr(0, 500));
    auto agent = esc["group"].get<std::string>();
    agents.insert(agent);
    auto g = std::stoi(agent.substr(6));
    BOOST_TEST(esc["count"] == threshold);
    BOOST_TEST(esc["event_ids_truncated"] == true);
    BOOST_TEST(esc["event_ids"] == json(ids[g]), agent);
    if (escalation.empty()) {
      escalation = ev["id"].get<std::string>();
      agent_of_it = g;
    }
  }
  BOOST_TEST(agents.size() == static_cast<std::size_t>(groups));

  // Acknowledging one escalation acknowledges all 1,000 of its events, the
  // 900 it does not list included.
  auto r =
      f.call("POST", "/v1/events/" + escalation + "/ack", {{"by", "dana"}});
  BOOST_REQUIRE_MESSAGE(r.status == 200, r.status << " " << r.body);
  auto answer = json::parse(r.body);
  BOOST_TEST(answer["changed"] == true);
  std::size_t changed = 0;
  for (auto& e : answer["episode"])
    changed += e["changed"] == true ? 1 : 0;
  BOOST_TEST(changed == static_cast<std::size_t>(threshold));
  for (auto& id : {first_of[agent_of_it], ids[agent_of_it].front(),
                   ids[agent_of_it].back()}) {
    auto shown = f.event(id);
    BOOST_TEST(shown["state"] == "acknowledged", shown.dump());
  }
  // Another agent's events are not.
  auto other = f.event(first_of[(agent_of_it + 1) % groups]);
  BOOST_TEST(other["state"] == "open", other.dump());
}

BOOST_AUTO_TEST_CASE(a_flood_of_new_groups_does_not_reset_a_nearly_full_one) {
  daemon_fixture f;
  auto pager = f.make_receiver();
  endpoint_spec hook{"pager", daemon_fixture::url_of(*pager)};
  hook.extra = "min_severity = \"critical\"\n";
  const std::string flooder = "flooder-token-0123456789abcdef";
  f.use_admin_token("admin-token-0123456789abcdef");
  f.start({hook}, {},
          token_toml("admin", f.admin_token(), "admin") +
              token_toml("flooder", flooder, "ingest") +
              "[[escalation]]\nname = \"repeated-denials\"\n"
              "type = \"policy.denied\"\nthreshold = 5\nwindow = 600\n"
              "group_by = \"agent_id\"\nseverity = \"critical\"\n"
              "max_groups = 1000\n");

  for (int i = 0; i < 4; ++i)
    f.post_events(small_denial("victim"));
  // 5,000 agents nobody has seen, from another token: five times the limit.
  for (int k = 0; k < 5; ++k) {
    json batch = json::array();
    for (int g = 0; g < 1000; ++g)
      batch.push_back(small_denial("flood-" + std::to_string(k * 1000 + g)));
    auto r = f.post("/v1/events", json{{"events", batch}}.dump(), flooder);
    BOOST_REQUIRE_MESSAGE(r.status == 202, r.status << " " << r.body);
  }
  BOOST_TEST(pager->count() == 0u);
  f.post_events(small_denial("victim"));
  BOOST_REQUIRE_MESSAGE(pager->wait_for(1, std::chrono::seconds{20}),
                        "the fifth denial of victim did not escalate");
  auto esc = json::parse(pager->requests().at(0).body)["details"]["escalation"];
  BOOST_TEST(esc["group"] == "victim");
  BOOST_TEST(esc["count"] == 5);

  // 4,001 groups forgotten: 5,001 seen, 1,000 kept (victim's among them).
  auto m = metrics_text(f);
  BOOST_TEST(contains(m, "tocsin_escalation_groups_forgotten_total{rule="
                         "\"repeated-denials\"} 4001"),
             m);
  BOOST_TEST(contains(f.process().log(), "escalation groups forgotten"));
}

BOOST_AUTO_TEST_SUITE_END()
