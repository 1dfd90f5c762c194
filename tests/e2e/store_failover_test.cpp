// The daemon on the PostgreSQL store when the database goes away under
// load: producers keep posting, get 503 with Retry-After while it is gone
// and nothing but 202 or 503 at any time, tocsin reconnects by itself when
// it is back (PostgreSQL restarted, or its synchronous standby promoted and
// found through a two-host URL), and every event answered 202 is delivered
// to a real HTTPS receiver. Each test has a PostgreSQL of its own
// (tests/support/pg_cluster): it stops or crashes it.
#include "tests/e2e/fixture.hpp"

#include "tests/support/pg_cluster.hpp"

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

using namespace tocsin::test;
using nlohmann::json;
using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

void require_postgres() {
  BOOST_TEST_REQUIRE(postgres_installed(),
                     "PostgreSQL 15 is not installed: apt-get install "
                     "postgresql (scripts/install-deps.sh --test)");
}

/// fsync off: the tests stop and crash PostgreSQL's processes, never the
/// machine, and what it wrote stays in the kernel's cache (its fsyncs made
/// starting a standby take several seconds on a busy VM).
const pg_options pg_settings{.settings = {"fsync=off"}};
const pg_options pg_replication_settings{.settings = {"fsync=off"},
                                         .replication = true};

/// Shorter than the test client's 30 s, so that a request the daemon holds
/// is answered (503 answer_timeout) rather than cut off by the client.
const std::string server_settings = "request_timeout = 20\n";

/// The end of the daemon's log, for a failure message.
std::string log_tail(daemon_fixture& f, std::size_t n = 6000) {
  auto log = f.process().log();
  return log.size() > n ? "..." + log.substr(log.size() - n) : log;
}

/// Polls `done` every 20 ms; fails the test with `what` and the end of the
/// daemon's log when it is still false after `limit`.
void wait_until(daemon_fixture& f, const std::function<bool()>& done,
                std::chrono::seconds limit, const std::string& what) {
  auto deadline = clock_type::now() + limit;
  while (!done()) {
    BOOST_REQUIRE_MESSAGE(clock_type::now() < deadline,
                          what << " (waited " << limit.count()
                               << " s); the daemon's log ends:\n"
                               << log_tail(f));
    std::this_thread::sleep_for(20ms);
  }
}

/// One answer to a producer's POST /v1/events.
struct answer_seen {
  int producer = 0;
  clock_type::time_point sent, answered;
  int status = 0;
  std::size_t events = 0; ///< ids in a 202
  std::string code;       ///< a 503's error code
  bool retry_after = false;
  std::string text; ///< what came back, for anything but 202 and 503
};

/// Producers posting batches of events as fast as they are answered, from
/// threads of their own (one connection each), every answer kept.
class producers {
public:
  producers(daemon_fixture& f, int threads, int per_batch) {
    for (int t = 0; t < threads; ++t)
      threads_.emplace_back([this, &f, t, per_batch] {
        run(f.api_port(), f.admin_token(), t, per_batch);
      });
  }
  ~producers() { stop(); }

  void stop() {
    stop_ = true;
    for (auto& t : threads_)
      if (t.joinable())
        t.join();
  }

  /// Events answered 202.
  std::size_t accepted() const {
    std::lock_guard g{mtx_};
    return ids_.size();
  }
  std::vector<std::string> accepted_ids() const {
    std::lock_guard g{mtx_};
    return ids_;
  }
  /// Answers matching `pred`.
  std::size_t count(const std::function<bool(const answer_seen&)>& pred) const {
    std::lock_guard g{mtx_};
    return static_cast<std::size_t>(
        std::count_if(answers_.begin(), answers_.end(), pred));
  }
  /// The fewest 503s one producer has had.
  std::size_t refused_each() const {
    std::lock_guard g{mtx_};
    std::vector<std::size_t> n(threads_.size());
    for (auto& a : answers_)
      n.at(static_cast<std::size_t>(a.producer)) += a.status == 503;
    return *std::min_element(n.begin(), n.end());
  }
  /// 202s to requests sent after `t`.
  std::size_t accepted_after(clock_type::time_point t) const {
    return count([t](auto& a) { return a.status == 202 && a.sent > t; });
  }
  std::vector<answer_seen> answers() const {
    std::lock_guard g{mtx_};
    return answers_;
  }

private:
  void run(std::uint16_t port, std::string token, int t, int per_batch) {
    http_client c{"127.0.0.1", port};
    for (int n = 0; !stop_; ++n) {
      json batch{{"events", json::array()}};
      auto agent = std::to_string(t) + "-" + std::to_string(n);
      for (int i = 0; i < per_batch; ++i)
        batch["events"].push_back(sample_event(agent));
      answer_seen a;
      a.producer = t;
      a.sent = clock_type::now();
      auto r = c.request("POST", "/v1/events", batch.dump(),
                         {{"authorization", "Bearer " + token},
                          {"content-type", "application/json"}});
      a.answered = clock_type::now();
      a.status = r.status;
      std::vector<std::string> ids;
      if (r.status == 202) {
        ids = json::parse(r.body)["ids"].get<std::vector<std::string>>();
        a.events = ids.size();
      } else if (r.status == 503) {
        a.retry_after = r.headers.count("retry-after") > 0;
        auto j = json::parse(r.body, nullptr, false);
        if (j.is_object() && j.contains("error") && j["error"].is_object())
          a.code = j["error"].value("code", "");
      } else {
        a.text = std::to_string(r.status) + " " + r.body + r.error;
      }
      {
        std::lock_guard g{mtx_};
        ids_.insert(ids_.end(), ids.begin(), ids.end());
        answers_.push_back(std::move(a));
      }
      // A producer told to come back later does, a little later (one that
      // waited all of Retry-After would post twice while the store is gone).
      if (r.status == 503)
        std::this_thread::sleep_for(10ms);
    }
  }

  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
  mutable std::mutex mtx_;
  std::vector<std::string> ids_;
  std::vector<answer_seen> answers_;
};

/// Every answer was 202 or 503, every 503 had Retry-After, at least one
/// 503 was seen; none was 202 for a request sent after `gone` and answered
/// before `back` (the database unreachable all that time).
void check_answers(const producers& p, clock_type::time_point gone,
                   clock_type::time_point back) {
  auto answers = p.answers();
  std::map<std::string, std::size_t> codes;
  std::size_t accepted = 0, refused = 0, without_retry_after = 0,
              accepted_while_gone = 0;
  std::vector<std::string> other;
  for (auto& a : answers) {
    if (a.status == 202) {
      ++accepted;
      accepted_while_gone += a.sent > gone && a.answered < back;
    } else if (a.status == 503) {
      ++refused;
      ++codes[a.code];
      without_retry_after += !a.retry_after;
    } else {
      other.push_back(a.text);
    }
  }
  std::ostringstream by_code;
  for (auto& [code, n] : codes)
    by_code << " " << (code.empty() ? "(no code)" : code) << ": " << n;
  BOOST_TEST_MESSAGE(answers.size()
                     << " requests: " << accepted << " 202 (" << p.accepted()
                     << " events), " << refused << " 503 (" << by_code.str()
                     << " ), " << other.size() << " other");
  BOOST_TEST(refused >= 1u, "no 503 while the database was gone");
  BOOST_TEST(without_retry_after == 0u, without_retry_after
                                            << " of " << refused
                                            << " 503s without Retry-After");
  BOOST_TEST(accepted_while_gone == 0u,
             accepted_while_gone
                 << " requests sent after the database was gone were "
                    "answered 202 before it was back");
  BOOST_TEST(other.empty(), other.size() << " answers neither 202 nor 503, "
                                            "the first: "
                                         << (other.empty() ? "" : other[0]));
}

/// webhook-ids the receiver saw (signatures verified), and the number of
/// repeats.
std::pair<std::set<std::string>, std::size_t>
delivered_ids(const https_receiver& r) {
  std::set<std::string> ids;
  std::size_t dups = 0, unsigned_requests = 0;
  for (auto& req : r.requests()) {
    unsigned_requests += !req.signature_valid;
    if (!ids.insert(req.headers.count("webhook-id") != 0
                        ? req.headers.at("webhook-id")
                        : std::string{})
             .second)
      ++dups;
  }
  BOOST_TEST(unsigned_requests == 0u);
  return {ids, dups};
}

/// Waits until every accepted id has reached the receiver; fails with the
/// number missing and a few of them otherwise.
void check_all_delivered(daemon_fixture& f, const https_receiver& receiver,
                         const std::vector<std::string>& accepted,
                         std::chrono::seconds limit) {
  auto deadline = clock_type::now() + limit;
  std::vector<std::string> missing;
  std::size_t dups = 0, received = 0;
  for (;;) {
    received = receiver.count();
    auto [ids, repeats] = delivered_ids(receiver);
    dups = repeats;
    missing.clear();
    for (auto& id : accepted)
      if (ids.count(id) == 0)
        missing.push_back(id);
    if (missing.empty() || clock_type::now() > deadline)
      break;
    receiver.wait_for(received + 1, 200ms);
  }
  BOOST_TEST_MESSAGE(accepted.size()
                     << " events accepted, " << accepted.size() - missing.size()
                     << " delivered, " << dups << " delivered more than once");
  BOOST_TEST(missing.empty(),
             missing.size()
                 << " of " << accepted.size()
                 << " events answered 202 never reached the receiver within "
                 << limit.count() << " s, e.g. "
                 << (missing.empty() ? "" : missing.front())
                 << "; the daemon's log ends:\n"
                 << log_tail(f));
}

/// PostgreSQL stopped with `mode` while producers post, started again: the
/// daemon refuses while it is gone, takes events again by itself, and
/// delivers every event it accepted.
void postgres_restarted_under_load(const std::string& mode) {
  require_postgres();
  pg_cluster pg{pg_settings};
  daemon_fixture f;
  f.use_postgres(pg.url());
  auto receiver = f.make_receiver();
  f.start({{"ops", daemon_fixture::url_of(*receiver), "[0.2, 0.5, 1, 2, 4]"}},
          server_settings);
  auto pid = f.process().pid();

  producers p{f, 2, 10};
  wait_until(
      f, [&] { return p.accepted() >= 500 && receiver->count() >= 100; }, 60s,
      "no load before the stop: fewer than 500 events accepted or 100 "
      "delivered");
  BOOST_TEST_MESSAGE("stopping PostgreSQL (-m " << mode << ") with "
                                                << p.accepted()
                                                << " events accepted");
  pg.stop(mode);
  auto gone = clock_type::now();
  // Every producer told to come back later. (A commit the stop cut short
  // holds the requests behind it until the database can say whether it
  // took: those are answered 503 answer_timeout after request_timeout.)
  wait_until(
      f, [&] { return p.refused_each() >= 1; }, 60s,
      "not every producer was answered 503 with PostgreSQL stopped");
  BOOST_TEST_MESSAGE("503s after "
                     << std::chrono::duration_cast<std::chrono::milliseconds>(
                            clock_type::now() - gone)
                            .count()
                     << " ms; starting PostgreSQL");
  auto back = clock_type::now();
  pg.start();
  wait_until(
      f, [&] { return p.accepted_after(back) >= 50; }, 60s,
      "tocsin did not take events again (50 requests answered 202) after "
      "PostgreSQL was started again");
  BOOST_TEST_MESSAGE("taking events again "
                     << std::chrono::duration_cast<std::chrono::milliseconds>(
                            clock_type::now() - back)
                            .count()
                     << " ms after the start began");
  p.stop();
  check_answers(p, gone, back);
  BOOST_TEST(f.process().running());
  BOOST_TEST(f.process().pid() == pid); // reconnected, never restarted
  check_all_delivered(f, *receiver, p.accepted_ids(), 120s);
  BOOST_TEST(f.terminate() == 0);
}

} // namespace

BOOST_AUTO_TEST_SUITE(store_failover)

BOOST_AUTO_TEST_CASE(postgres_stopped_fast_under_load_loses_nothing) {
  postgres_restarted_under_load("fast");
}

BOOST_AUTO_TEST_CASE(postgres_crashed_under_load_loses_nothing) {
  postgres_restarted_under_load("immediate");
}

BOOST_AUTO_TEST_CASE(
    the_primary_crashes_under_load_and_the_promoted_standby_takes_over) {
  require_postgres();
  pg_cluster primary{pg_replication_settings};
  auto standby = primary.make_standby("standby1");
  primary.make_synchronous("standby1");
  daemon_fixture f;
  f.use_postgres(read_write_url({&primary, standby.get()}));
  auto receiver = f.make_receiver();
  f.start({{"ops", daemon_fixture::url_of(*receiver), "[0.2, 0.5, 1, 2, 4]"}},
          server_settings);
  auto pid = f.process().pid();

  producers p{f, 2, 10};
  wait_until(
      f, [&] { return p.accepted() >= 500 && receiver->count() >= 100; }, 60s,
      "no load before the crash: fewer than 500 events accepted or 100 "
      "delivered");
  BOOST_TEST_MESSAGE("crashing the primary with " << p.accepted()
                                                  << " events accepted");
  primary.stop("immediate");
  auto gone = clock_type::now();
  // The standby alone is left, read-only: nothing takes writes until it is
  // promoted.
  wait_until(
      f, [&] { return p.refused_each() >= 1; }, 60s,
      "not every producer was answered 503 with the primary crashed and the "
      "standby read-only");
  BOOST_REQUIRE(standby->in_recovery());
  auto back = clock_type::now();
  standby->promote();
  wait_until(
      f, [&] { return p.accepted_after(back) >= 50; }, 60s,
      "tocsin did not take events again (50 requests answered 202) after "
      "the standby was promoted");
  BOOST_TEST_MESSAGE("taking events again "
                     << std::chrono::duration_cast<std::chrono::milliseconds>(
                            clock_type::now() - back)
                            .count()
                     << " ms after the promotion began");
  p.stop();
  check_answers(p, gone, back);
  BOOST_TEST(f.process().running());
  BOOST_TEST(f.process().pid() == pid);
  check_all_delivered(f, *receiver, p.accepted_ids(), 120s);
  BOOST_TEST(f.terminate() == 0);
}

BOOST_AUTO_TEST_SUITE_END()
