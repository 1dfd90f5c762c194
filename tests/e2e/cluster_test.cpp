// Cluster mode with real processes: three tocsin nodes on one PostgreSQL
// database, the same config but for node_id, port and data_dir. Any node
// takes events; each endpoint is driven by one live node (its lease); a
// node killed or paused past its lease loses its endpoints to the others
// within lease_ttl, a node that stops (SIGTERM) hands them over at once, a
// node that joins gets some; a paused owner that wakes up is fenced out;
// the database restarting under load loses nothing answered 202; an
// escalation rule fires once for events taken by several nodes, and once
// more after the node that evaluates the rules is killed; an endpoint a
// node's config reload adds or removes reaches the others through the log.
// Every event answered 202 arrives; repeats are bounded by what was in
// flight on a node that died, and counted.
//
// lease_ttl is 3 s (30 s where a handover must be told apart from expiry).
#include "tests/e2e/cluster.hpp"

#include "tests/postgres/pg_fixture.hpp"
#include "tests/support/pg_cluster.hpp"
#include "tests/support/ws_client.hpp"

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <map>
#include <mutex>
#include <set>
#include <sstream>

using namespace tocsin::test;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

void require_postgres() {
  BOOST_TEST_REQUIRE(postgres_installed(),
                     "PostgreSQL 15 is not installed: apt-get install "
                     "postgresql (scripts/install-deps.sh --test)");
}

/// A database of its own in the test binary's PostgreSQL.
std::string database(const std::string& name) {
  return fresh_database("cluster_" + name);
}

/// Per node and for every request to it in flight at once, at most this many
/// deliveries per endpoint (delivery.max_in_flight in cluster_options).
constexpr std::size_t in_flight = 4;

/// The agents a0..a<n-1>: one event per endpoint of spread_endpoints(n).
std::vector<std::string> agents(int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i)
    out.push_back("a" + std::to_string(i));
  return out;
}

std::string joined(const std::vector<std::string>& v) {
  std::string out;
  for (auto& s : v)
    out += (out.empty() ? "" : ", ") + s;
  return out;
}

/// Polls `done` every 20 ms; fails the test with `what` and the nodes' logs
/// when it is still false after `limit`.
void wait_until(cluster_fixture& c, const std::function<bool()>& done,
                std::chrono::milliseconds limit, const std::string& what) {
  auto deadline = clock_type::now() + limit;
  while (!done()) {
    BOOST_REQUIRE_MESSAGE(clock_type::now() < deadline,
                          what << " (waited " << limit.count() << " ms)\n"
                               << c.logs());
    std::this_thread::sleep_for(20ms);
  }
}

/// Waits until every id of `accepted` has reached the receiver; the ledger
/// then. Fails with the number missing otherwise.
ledger wait_delivered(cluster_fixture& c,
                      const std::vector<std::string>& accepted,
                      std::chrono::seconds limit) {
  auto deadline = clock_type::now() + limit;
  ledger l;
  std::vector<std::string> missing;
  for (;;) {
    auto seen = c.receiver().count();
    l = ledger_of(c.receiver());
    missing = l.missing(accepted);
    if (missing.empty() || clock_type::now() > deadline)
      break;
    c.receiver().wait_for(seen + 1, 200ms);
  }
  // What a running node says of the first one missing, and of the cluster.
  std::string state;
  for (auto* f : c.nodes())
    if (!missing.empty() && state.empty() && f->process().running()) {
      state = f->get("/v1/events/" + missing.front(), f->admin_token()).body +
              "\n" + f->get("/v1/cluster", f->admin_token()).body;
    }
  BOOST_TEST(missing.empty(), missing.size()
                                  << " of " << accepted.size()
                                  << " events answered 202 never reached the "
                                     "receiver within "
                                  << limit.count() << " s, e.g. "
                                  << (missing.empty() ? "" : missing.front())
                                  << ": " << state << "\n"
                                  << c.logs());
  BOOST_TEST(l.unsigned_requests == 0u);
  return l;
}

/// Prints the repeats of `l` (at most `shown`, with the nodes that made
/// their attempts as `via` reads them); their number.
std::size_t report_repeats(const ledger& l, daemon_fixture& via,
                           std::size_t shown = 5) {
  auto repeats = l.repeated();
  std::ostringstream text;
  for (std::size_t i = 0; i < repeats.size() && i < shown; ++i) {
    auto& [endpoint, id] = repeats[i];
    text << "\n  " << endpoint << " " << id << " x" << l.times.at(repeats[i])
         << ", attempts by " << joined(attempt_nodes(via, id));
  }
  BOOST_TEST_MESSAGE(l.requests << " requests, " << l.delivered.size()
                                << " events, " << l.duplicates() << " repeats"
                                << text.str());
  return l.duplicates();
}

/// Every answer was 202 or 503 with Retry-After (none other); the numbers.
void check_answers(const producers& p, const std::set<std::size_t>& killed) {
  std::size_t accepted = 0, refused = 0, without_retry_after = 0, to_killed = 0;
  std::vector<std::string> other;
  std::map<std::string, std::size_t> codes;
  for (auto& a : p.answers()) {
    if (a.status == 202) {
      ++accepted;
    } else if (a.status == 503) {
      ++refused;
      ++codes[a.code];
      without_retry_after += !a.retry_after;
    } else if (killed.count(a.node) > 0) {
      ++to_killed; // cut off by the kill
    } else {
      other.push_back(a.text);
    }
  }
  std::ostringstream by_code;
  for (auto& [code, n] : codes)
    by_code << " " << (code.empty() ? "(no code)" : code) << ": " << n;
  BOOST_TEST_MESSAGE(p.answers().size()
                     << " requests: " << accepted << " 202 (" << p.accepted()
                     << " events), " << refused << " 503 (" << by_code.str()
                     << " ), " << to_killed << " cut off by a kill, "
                     << other.size() << " other");
  BOOST_TEST(without_retry_after == 0u, without_retry_after
                                            << " of " << refused
                                            << " 503s without Retry-After");
  BOOST_TEST(other.empty(), other.size() << " answers neither 202 nor 503, "
                                            "the first: "
                                         << (other.empty() ? "" : other[0]));
}

/// The node of `c` holding the most endpoints in `v` (at least one).
std::string busiest(cluster_fixture& c, const cluster_view& v) {
  std::string best;
  std::size_t most = 0;
  for (auto& id : c.node_ids())
    if (auto n = v.held_by(id).size(); n > most) {
      most = n;
      best = id;
    }
  BOOST_REQUIRE_MESSAGE(!best.empty(), "no node holds an endpoint: " << v.text);
  return best;
}

/// Posts one event of `agent` to `f`; its id.
std::string post_one(daemon_fixture& f, const std::string& agent) {
  return f.post_events(sample_event(agent)).at(0);
}

} // namespace

BOOST_AUTO_TEST_SUITE(cluster)

BOOST_AUTO_TEST_CASE(
    a_killed_node_s_endpoints_move_and_nothing_accepted_is_lost) {
  require_postgres();
  cluster_options o;
  o.postgres_url = database("kill");
  o.endpoints = spread_endpoints(6);
  // A short delay keeps attempts in flight when the node dies.
  o.respond = always([] {
    auto a = answer(200);
    a.delay = 5ms;
    return a;
  }());
  cluster_fixture c{o};
  for (auto id : {"n1", "n2", "n3"})
    c.start_node(id);
  auto& n1 = c.node("n1");
  c.wait_balanced(n1, 15s, "the endpoints were never spread over the nodes");

  producers p{c.nodes(), 3, agents(6), 20ms};
  wait_until(
      c, [&] { return p.accepted() >= 600 && c.receiver().count() >= 300; },
      60s, "no load: fewer than 600 events accepted or 300 delivered");
  // Balanced or not, the node with the most endpoints dies.
  auto before = c.wait_owned(n1, 15s, "the endpoints lost their owners");
  auto victim = busiest(c, before);
  auto moved = before.held_by(victim);
  std::size_t victim_index = 0;
  for (auto& id : c.node_ids()) {
    if (id == victim)
      break;
    ++victim_index;
  }
  auto& survivor = c.node(victim == "n1" ? "n2" : "n1");
  BOOST_TEST_MESSAGE("kill -9 " << victim << " (holding " << joined(moved)
                                << ") with " << p.accepted()
                                << " events accepted");
  c.kill9(victim);
  p.avoid(victim_index);
  auto killed = clock_type::now();
  c.wait_owned(survivor, c.lease_ttl() + 10s,
               "the dead node's endpoints were not taken over", {victim},
               moved);
  auto took = ms_since(killed);
  BOOST_TEST_MESSAGE("its endpoints owned again " << took << " ms after");
  BOOST_TEST(took <= (c.lease_ttl() + 2s).count(),
             "owned again after " << took << " ms, lease_ttl "
                                  << c.lease_ttl().count() << " ms");

  auto after = clock_type::now();
  wait_until(
      c, [&] { return p.accepted_after(after) >= 300; }, 30s,
      "the survivors stopped taking events");
  p.stop();
  check_answers(p, {victim_index});
  auto l = wait_delivered(c, p.accepted_ids(), 60s);
  auto repeats = report_repeats(l, survivor);
  // At most what the dead node had in flight: max_in_flight on each of its
  // endpoints.
  BOOST_TEST(repeats <= moved.size() * in_flight,
             repeats << " repeats; the dead node had at most "
                     << moved.size() * in_flight << " in flight");
  // Everything is driven by the survivors.
  auto v =
      c.wait_owned(survivor, 10s, "an endpoint has no single owner", {victim});
  BOOST_TEST((!v.find(victim) || !v.find(victim)->alive), v.text);
}

BOOST_AUTO_TEST_CASE(a_paused_owner_of_a_fifo_endpoint_is_fenced_out) {
  require_postgres();
  // The receiver fails while `failing`; it lists what it answered 200, in
  // order.
  std::atomic<bool> failing{false};
  std::mutex m;
  std::vector<std::string> ok_order;
  std::size_t failed = 0;
  cluster_options o;
  o.postgres_url = database("pause");
  endpoint_spec fifo;
  fifo.id = "fifo";
  fifo.retry_schedule = "[1, 1, 1, 1, 1, 1]";
  fifo.extra = "ordered = true\n";
  o.endpoints = {fifo};
  o.respond = [&](const received_request& req, std::size_t) {
    std::lock_guard g{m};
    if (failing) {
      ++failed;
      return answer(503);
    }
    ok_order.push_back(req.headers.at("webhook-id"));
    return answer(200);
  };
  cluster_fixture c{o};
  c.start_node("n1");
  c.start_node("n2");
  auto v = c.wait_settled(
      c.node("n1"), [&](const cluster_view& cv) { return c.owned(cv); }, 15s,
      "fifo never had an owner");
  auto old_owner = v.owner("fifo");
  auto other = old_owner == "n1" ? "n2" : "n1";
  auto& old_node = c.node(old_owner);
  auto& new_node = c.node(other);
  auto size = [&] {
    std::lock_guard g{m};
    return ok_order.size();
  };

  std::vector<std::string> expected;
  for (int i = 0; i < 2; ++i)
    expected.push_back(post_one(old_node, "warm"));
  wait_until(
      c, [&] { return size() == 2; }, 10s, "the first two never arrived");

  // The owner holds e0 for its retry (the receiver fails it once), then
  // stops: it still holds the endpoint, and a timer, when it wakes up.
  failing = true;
  auto e0 = post_one(old_node, "held");
  expected.push_back(e0);
  wait_until(
      c,
      [&] {
        auto ev = old_node.event(e0);
        auto& attempts = ev["deliveries"][0]["attempts"];
        return !attempts.empty() && attempts[0]["status"] == 503;
      },
      10s, "e0's failed attempt was never recorded");
  std::size_t failed_before;
  {
    std::lock_guard g{m};
    failed_before = failed;
  }
  c.pause(old_owner);
  auto paused = clock_type::now();
  failing = false;
  BOOST_TEST_MESSAGE("paused " << old_owner << ", the owner of fifo");

  // Events taken by the other node meanwhile, in this order.
  std::vector<std::string> meanwhile;
  for (int i = 0; i < 5; ++i)
    meanwhile.push_back(post_one(new_node, "meanwhile"));
  expected.insert(expected.end(), meanwhile.begin(), meanwhile.end());
  c.wait_view(
      new_node,
      [&](const cluster_view& cv) { return cv.owner("fifo") == other; },
      c.lease_ttl() + 10s, "fifo was not taken from the paused node");
  BOOST_TEST_MESSAGE("fifo taken by " << other << " " << ms_since(paused)
                                      << " ms after the pause");
  wait_until(
      c, [&] { return size() >= expected.size(); }, 30s,
      "the events held and taken meanwhile were not delivered");

  // The paused node wakes up: its timer fires, its lease is gone. At its
  // first heartbeat it holds nothing (the placement may give the endpoint
  // back to it later, after a hand-over: only if the other node has beaten
  // since can it hold it already).
  auto resumed_wall = tocsin::now_ms();
  c.resume(old_owner);
  auto woke = c.wait_view(
      old_node,
      [&](const cluster_view& cv) {
        auto* n = cv.find(old_owner);
        return n && n->alive && n->heartbeat_at > resumed_wall;
      },
      c.lease_ttl() + 10s, "the resumed node never sent a heartbeat");
  auto* woken = woke.find(old_owner);
  auto* owner_now = woke.find(other);
  BOOST_TEST((woke.owner("fifo") == other ||
              (owner_now && owner_now->heartbeat_at > woken->heartbeat_at)),
             "the resumed node holds fifo at once: " << woke.text);
  // Events taken by the node that was paused arrive too, in order, once.
  auto after_from = expected.size();
  for (int i = 0; i < 3; ++i)
    expected.push_back(post_one(old_node, "after"));
  wait_until(
      c, [&] { return size() >= expected.size(); }, 30s,
      "the events taken after the pause were not delivered");
  c.wait_owned(old_node, 10s, "fifo has no single owner after the pause");

  {
    std::lock_guard g{m};
    // FIFO: acceptance order, each once.
    BOOST_TEST(ok_order == expected,
               "answered 200: " << joined(ok_order)
                                << "; accepted: " << joined(expected));
    BOOST_TEST(failed == failed_before, failed - failed_before
                                            << " requests after the pause "
                                               "were answered 503");
  }
  // No attempt of the paused node after the pause: e0's attempts before it
  // are its own, every later one the new owner's.
  auto e0_nodes = attempt_nodes(new_node, e0);
  BOOST_TEST_REQUIRE(e0_nodes.size() == failed_before + 1, joined(e0_nodes));
  for (std::size_t i = 0; i < e0_nodes.size(); ++i)
    BOOST_TEST(e0_nodes[i] == (i < failed_before ? old_owner : other),
               "e0's attempt " << i + 1 << " by " << e0_nodes[i]);
  for (std::size_t i = 3; i < after_from; ++i) {
    auto by = attempt_nodes(new_node, expected[i]);
    BOOST_TEST(by == std::vector<std::string>{other},
               expected[i] << ": attempts by " << joined(by));
  }
}

BOOST_AUTO_TEST_CASE(a_joining_node_gets_endpoints_and_nothing_is_lost) {
  require_postgres();
  cluster_options o;
  o.postgres_url = database("join");
  o.endpoints = spread_endpoints(6);
  o.respond = always([] {
    auto a = answer(200);
    a.delay = 5ms;
    return a;
  }());
  cluster_fixture c{o};
  c.start_node("n1");
  c.start_node("n2");
  auto& n1 = c.node("n1");
  c.wait_balanced(n1, 15s, "the endpoints were never spread over the nodes");
  producers p{c.nodes(), 2, agents(6), 20ms};
  wait_until(
      c, [&] { return p.accepted() >= 300 && c.receiver().count() >= 150; },
      60s, "no load: fewer than 300 events accepted or 150 delivered");

  auto joining = clock_type::now();
  auto& n3 = c.start_node("n3");
  auto v = c.wait_view(
      n3,
      [&](const cluster_view& cv) {
        return c.owned(cv) && !cv.held_by("n3").empty();
      },
      10s, "the new node got no endpoint");
  auto moved = v.held_by("n3");
  BOOST_TEST_MESSAGE("n3 holds " << joined(moved) << " " << ms_since(joining)
                                 << " ms after it was started");

  auto after = clock_type::now();
  wait_until(
      c, [&] { return p.accepted_after(after) >= 300; }, 30s,
      "the nodes stopped taking events");
  p.stop();
  check_answers(p, {});
  auto l = wait_delivered(c, p.accepted_ids(), 60s);
  auto repeats = report_repeats(l, n1);
  // A handover releases an endpoint between attempts; a repeat at most for
  // what was in flight on the endpoints that moved.
  BOOST_TEST(repeats <= moved.size() * in_flight,
             repeats << " repeats; " << moved.size() * in_flight
                     << " were in flight at most on the endpoints that moved");
  // The last event of an endpoint that moved went out from the new node.
  auto last = l.arrivals.at(moved.front()).back();
  auto by = attempt_nodes(n1, last);
  BOOST_TEST(by.back() == "n3", last << ": attempts by " << joined(by));

  // Each node's /metrics: the leases it holds (as GET /v1/cluster lists
  // them) and the three nodes alive, once its next heartbeat counted them.
  auto settled = c.wait_balanced(n1, 15s, "the endpoints did not settle");
  auto metric = [](daemon_fixture& n, const std::string& series) {
    auto r = n.get("/metrics", n.admin_token());
    auto at = r.body.find("\n" + series + " ");
    return at == std::string::npos
               ? std::string{"(none)"}
               : r.body.substr(at + series.size() + 2,
                               r.body.find('\n', at + 1) -
                                   (at + series.size() + 2));
  };
  std::string seen;
  wait_until(
      c,
      [&] {
        std::ostringstream out;
        bool all = true;
        for (auto id : {"n1", "n2", "n3"}) {
          auto& n = c.node(id);
          auto leases = metric(n, R"(tocsin_cluster_leases{kind="endpoint"})");
          auto alive = metric(n, R"(tocsin_cluster_nodes{state="alive"})");
          out << id << ": leases " << leases << ", alive " << alive << "; ";
          all = all && leases == std::to_string(settled.held_by(id).size()) &&
                alive == "3";
        }
        seen = out.str();
        return all;
      },
      10s, "the nodes' metrics do not show their leases");
  BOOST_TEST_MESSAGE("metrics: " << seen);
}

BOOST_AUTO_TEST_CASE(sigterm_hands_the_endpoints_over_at_once) {
  require_postgres();
  cluster_options o;
  o.postgres_url = database("sigterm");
  o.endpoints = spread_endpoints(6);
  o.lease_ttl = 30; // expiry would take 30 s: a handover takes none of it
  cluster_fixture c{o};
  for (auto id : {"n1", "n2", "n3"})
    c.start_node(id);
  auto& n3 = c.node("n3");
  auto v = c.wait_balanced(n3, 15s,
                           "the endpoints were never spread over the nodes");
  auto leaving = busiest(c, v);
  auto moved = v.held_by(leaving);
  auto& stays = c.node(leaving == "n3" ? "n2" : "n3");

  std::vector<std::string> accepted;
  for (int i = 0; i < 6; ++i)
    accepted.push_back(post_one(c.node(leaving), "a" + std::to_string(i)));
  auto sent = clock_type::now();
  c.sigterm(leaving);
  c.wait_owned(stays, 8s,
               "the endpoints of the node that stopped were not handed over",
               {leaving}, moved);
  auto took = ms_since(sent);
  BOOST_TEST_MESSAGE(leaving << " (holding " << joined(moved)
                             << ") stopped; its endpoints owned by others "
                             << took << " ms after SIGTERM (lease_ttl 30 s)");
  BOOST_TEST(took < 5000);
  auto code = c.node(leaving).process().wait_exit(30s);
  BOOST_TEST((code && *code == 0), "exit " << (code ? *code : -1));
  // And they are driven: events taken by a node that stayed arrive.
  for (int i = 0; i < 6; ++i)
    accepted.push_back(post_one(stays, "a" + std::to_string(i)));
  auto l = wait_delivered(c, accepted, 20s);
  auto repeats = report_repeats(l, stays);
  BOOST_TEST(repeats <= moved.size() * in_flight);
}

BOOST_AUTO_TEST_CASE(postgres_restarted_under_load_with_three_nodes) {
  require_postgres();
  pg_cluster pg{pg_options{.settings = {"fsync=off"}}}; // its own: stopped
  cluster_options o;
  o.postgres_url = pg.url();
  o.endpoints = spread_endpoints(6);
  // Shorter than the test client's 30 s: a request held while PostgreSQL
  // cannot say whether a commit took is answered 503 answer_timeout.
  o.server_extra = "request_timeout = 20\n";
  cluster_fixture c{o};
  for (auto id : {"n1", "n2", "n3"})
    c.start_node(id);
  std::vector<pid_t> pids;
  for (auto* f : c.nodes())
    pids.push_back(f->process().pid());
  auto& n1 = c.node("n1");
  // Not waiting for the endpoints to spread: the node that started first
  // drives most of them while the others take events for it, and reads
  // what they made pending when the database goes away.
  c.wait_owned(n1, 15s, "the endpoints never all had one owner");

  producers p{c.nodes(), 3, agents(6), 10ms};
  wait_until(
      c, [&] { return p.accepted() >= 600 && c.receiver().count() >= 300; },
      60s, "no load: fewer than 600 events accepted or 300 delivered");
  BOOST_TEST_MESSAGE("stopping PostgreSQL (-m fast) with " << p.accepted()
                                                           << " accepted");
  pg.stop("fast");
  auto gone = clock_type::now();
  wait_until(
      c, [&] { return p.fewest_refusals() >= 1; }, 60s,
      "not every node answered 503 with PostgreSQL stopped");
  BOOST_TEST_MESSAGE("every node refusing " << ms_since(gone)
                                            << " ms after the stop");
  auto back = clock_type::now();
  pg.start();
  wait_until(
      c,
      [&] {
        for (std::size_t i = 0; i < 3; ++i)
          if (p.accepted_after(back, i) < 60)
            return false;
        return true;
      },
      60s, "not every node took events again after PostgreSQL came back");
  BOOST_TEST_MESSAGE("every node taking events again "
                     << ms_since(back) << " ms after the start");
  p.stop();
  check_answers(p, {});
  // None answered 202 while the database was gone.
  std::size_t while_gone = 0;
  for (auto& a : p.answers())
    while_gone += a.status == 202 && a.sent > gone && a.answered < back;
  BOOST_TEST(while_gone == 0u);
  for (std::size_t i = 0; i < 3; ++i) {
    auto* f = c.nodes()[i];
    BOOST_TEST(f->process().running());
    BOOST_TEST(f->process().pid() == pids[i]); // reconnected, never restarted
  }
  auto l = wait_delivered(c, p.accepted_ids(), 120s);
  report_repeats(l, n1);
  // One owner each, as every node sees it.
  for (auto* f : c.nodes())
    c.wait_owned(*f, c.lease_ttl() + 10s,
                 "after the restart an endpoint has no single owner");
}

BOOST_AUTO_TEST_CASE(
    an_escalation_fed_by_two_nodes_fires_once_and_again_after_its_holder_dies) {
  require_postgres();
  cluster_options o;
  o.postgres_url = database("escalation");
  endpoint_spec pager{"pager"}, all{"all"};
  pager.extra = "min_severity = \"critical\"\n";
  o.endpoints = {pager, all};
  o.extra = "[[escalation]]\nname = \"denials\"\ntype = \"policy.denied\"\n"
            "threshold = 5\nwindow = 60\ngroup_by = \"agent_id\"\n"
            "suppress_for = 2\n";
  cluster_fixture c{o};
  for (auto id : {"n1", "n2", "n3"})
    c.start_node(id);
  auto v = c.wait_settled(
      c.node("n1"),
      [&](const cluster_view& cv) {
        return c.owned(cv) && !cv.escalation_holder().empty();
      },
      15s, "no node holds the escalation lease");
  auto holder = v.escalation_holder();
  std::vector<std::string> feeders;
  for (auto& id : c.node_ids())
    if (id != holder)
      feeders.push_back(id);
  BOOST_TEST_MESSAGE(holder << " holds the escalation lease; events go to "
                            << joined(feeders));
  auto feed = [&](int n, int from) {
    std::vector<std::string> ids;
    for (int i = 0; i < n; ++i)
      ids.push_back(post_one(
          c.node(feeders[static_cast<std::size_t>(from + i) % 2]), "agent-x"));
    return ids;
  };
  // The escalations the pager got: distinct ids, and their members.
  auto pages = [&] {
    std::map<std::string, std::vector<std::string>> out;
    for (auto& req : c.receiver().requests())
      if (req.target == "/pager") {
        auto body = json::parse(req.body);
        auto& members = body["details"]["escalation"]["event_ids"];
        out[req.headers.at("webhook-id")] =
            members.get<std::vector<std::string>>();
      }
    return out;
  };
  auto& a = c.node(feeders[0]);

  auto first = feed(5, 0);
  wait_until(
      c, [&] { return pages().size() >= 1; }, 20s,
      "5 denials from two nodes paged no one");
  auto fired = clock_type::now();
  auto one = pages();
  BOOST_TEST(one.size() == 1u);
  auto first_escalation = one.begin()->first;
  auto members = one.begin()->second;
  // As sets: ids made on two nodes within one millisecond need not sort in
  // the order they were posted (ULIDs are ordered within a node only).
  auto sorted = [](std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
  };
  std::sort(members.begin(), members.end());
  BOOST_TEST(members == sorted(first));
  // Recorded as delivered before the kill (no repeat counts as a page).
  a.wait_finished(first_escalation);
  for (auto& id : first)
    a.wait_finished(id);

  c.kill9(holder);
  auto killed = clock_type::now();
  // Past the rule's suppression (2 s) since it fired.
  wait_until(
      c, [&] { return clock_type::now() - fired > 2100ms; }, 5s,
      "the clock stopped");
  auto second = feed(3, 1);
  auto w = c.wait_view(
      a,
      [&](const cluster_view& cv) {
        auto h = cv.escalation_holder();
        return !h.empty() && h != holder;
      },
      c.lease_ttl() + 10s, "the escalation lease was not taken over");
  BOOST_TEST_MESSAGE(w.escalation_holder()
                     << " took the escalation lease " << ms_since(killed)
                     << " ms after the kill");
  auto more = feed(2, 0);
  second.insert(second.end(), more.begin(), more.end());
  wait_until(
      c, [&] { return pages().size() >= 2; }, 20s,
      "5 more denials after the holder died paged no one");
  // Everything routed so far has arrived (then a third page would have too).
  auto marker = post_one(a, "agent-y");
  std::vector<std::string> everything = first;
  everything.insert(everything.end(), second.begin(), second.end());
  everything.push_back(marker);
  wait_delivered(c, everything, 20s);
  auto two = pages();
  BOOST_TEST(two.size() == 2u);
  two.erase(first_escalation);
  BOOST_REQUIRE(two.size() == 1u);
  auto second_members = two.begin()->second;
  std::sort(second_members.begin(), second_members.end());
  BOOST_TEST(second_members == sorted(second));
}

BOOST_AUTO_TEST_CASE(
    an_endpoint_made_on_one_node_is_delivered_at_once_and_every_stream_shows_every_node) {
  require_postgres();
  cluster_options o;
  o.postgres_url = database("made");
  o.endpoints = spread_endpoints(1);
  cluster_fixture c{o};
  for (auto id : {"n1", "n2", "n3"})
    c.start_node(id);
  auto& a = c.node("n1");
  c.wait_settled(
      a, [&](const cluster_view& cv) { return c.owned(cv); }, 15s,
      "the endpoints never all had one owner");
  // The streams of the two other nodes: the one that neither takes the
  // event nor drives its endpoint commits nothing of it.
  std::map<std::string, std::unique_ptr<ws_client>> streams;
  for (auto id : {"n2", "n3"}) {
    auto& n = c.node(id);
    streams[id] = std::make_unique<ws_client>(
        n.api_port(), "/v1/stream",
        std::vector<std::pair<std::string, std::string>>{
            {"Authorization", "Bearer " + n.admin_token()}});
    BOOST_REQUIRE_MESSAGE(streams[id]->ok(), streams[id]->error());
  }

  auto made = create_endpoint(a, {{"url", c.url_of("made")},
                                  {"agents", {"m"}},
                                  {"retry_schedule", {0.2, 0.5, 1}}});
  auto ep = made["id"].get<std::string>();
  auto secret = made["secret"].get<std::string>();
  auto id = post_one(a, "m");
  auto accepted = clock_type::now();
  auto deadline = accepted + 5s;
  long took = -1;
  while (clock_type::now() < deadline) {
    if (ledger_of(c.receiver()).delivered.count(id) > 0) {
      took = ms_since(accepted);
      break;
    }
    std::this_thread::sleep_for(5ms);
  }
  BOOST_TEST_MESSAGE("an event for the endpoint made on n1 arrived "
                     << took << " ms after its 202");
  BOOST_TEST((took >= 0 && took <= 1000),
             (took < 0 ? "not within 5 s" : std::to_string(took) + " ms")
                 << "\n"
                 << c.logs());
  auto v =
      c.wait_owned(a, 10s, "the new endpoint has no single owner", {}, {ep});
  auto by = attempt_nodes(a, id);
  BOOST_TEST(by == std::vector<std::string>{v.owner(ep)},
             joined(by) << " vs owner " << v.owner(ep));
  for (auto& req : c.receiver().requests())
    if (req.headers.at("webhook-id") == id)
      BOOST_TEST(verify_standard_webhook(secret, req));

  // The stream of a node that had no part in it shows what n1 took.
  std::string watcher = v.owner(ep) == "n2" ? "n3" : "n2";
  auto& stream = *streams[watcher];
  bool shown = false;
  for (int frames = 0; frames < 100 && !shown; ++frames) {
    auto f = stream.read(10s);
    BOOST_REQUIRE_MESSAGE(f, "no frame from "
                                 << watcher << "'s stream: " << stream.error());
    auto j = json::parse(*f);
    shown = j["type"] == "event.accepted" && j["event"]["id"] == id;
  }
  BOOST_TEST(shown, watcher << "'s stream never showed " << id
                            << ", accepted on n1 and delivered by "
                            << v.owner(ep));
}

BOOST_AUTO_TEST_CASE(
    an_endpoint_a_reload_adds_or_removes_reaches_the_other_node) {
  require_postgres();
  cluster_options o;
  o.postgres_url = database("reload");
  o.endpoints = spread_endpoints(1);
  cluster_fixture c{o};
  auto& n1 = c.start_node("n1");
  auto& n2 = c.start_node("n2");
  auto reload_n1 = [&](std::vector<endpoint_spec> endpoints, std::size_t nth) {
    for (auto& e : endpoints)
      if (e.url.empty())
        e.url = c.url_of(e.id);
    n1.write_config(endpoints, o.server_extra,
                    "[cluster]\nnode_id = \"n1\"\nlease_ttl = 3\n");
    n1.process().signal(SIGHUP);
    BOOST_REQUIRE_MESSAGE(
        n1.process().wait_log("\"msg\":\"config reloaded\"", nth),
        n1.process().log());
  };
  // What n2 routes an event of agent "m" to, once it has heard (through
  // the log) of what n1's reload did.
  auto routed_by_n2 = [&](const std::string& expected) {
    std::string id, to;
    bool heard = eventually(
        [&] {
          id = post_one(n2, "m");
          to.clear();
          auto ev = n2.event(id);
          for (auto& d : ev["deliveries"])
            to += d["endpoint_id"].get<std::string>();
          return to == expected;
        },
        10s);
    BOOST_TEST(heard, "n2 routes to '" << to << "', not '" << expected << "'");
    return id;
  };
  endpoint_spec added{"added"};
  added.retry_schedule = "[0.2, 0.5, 1]";
  added.extra = "agents = [\"m\"]\n";
  auto with_added = o.endpoints;
  with_added.push_back(added);
  reload_n1(with_added, 1);
  // Taken on n2, delivered by whichever node drives the new endpoint.
  auto id = routed_by_n2("added");
  wait_until(
      c, [&] { return ledger_of(c.receiver()).delivered.count(id) > 0; }, 10s,
      "the event for the endpoint n1's reload added never arrived");
  reload_n1(o.endpoints, 2);
  routed_by_n2("");
}

BOOST_AUTO_TEST_SUITE_END()
