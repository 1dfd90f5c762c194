#include "app/service_manager.hpp"

#include "tests/support/notify_socket.hpp"
#include "tests/support/temp_dir.hpp"

#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include <unistd.h>

using namespace tocsin;
using namespace std::chrono_literals;

namespace {

/// What a watchdog sends and how often it probed, with waits on both.
struct watchdog_log {
  std::mutex mtx;
  std::condition_variable changed;
  std::vector<std::string> sent;
  std::vector<std::chrono::milliseconds> probe_timeouts;
  std::atomic<bool> alive{false};

  app::watchdog::probe probe() {
    return [this](std::chrono::milliseconds timeout) {
      std::lock_guard g{mtx};
      probe_timeouts.push_back(timeout);
      changed.notify_all();
      return alive.load();
    };
  }
  app::notification_sender sender() {
    return [this](std::string_view message) {
      std::lock_guard g{mtx};
      sent.emplace_back(message);
      changed.notify_all();
      return true;
    };
  }
  template <class F>
  bool wait(F done) {
    std::unique_lock lock{mtx};
    return changed.wait_for(lock, 10s, done);
  }
};

/// Sets an environment variable for one test case (the cases run on one
/// thread, before any watchdog thread of theirs starts).
struct scoped_env {
  scoped_env(const char* name, const std::string& value) : name_(name) {
    ::setenv(name, value.c_str(), 1);
  }
  ~scoped_env() { ::unsetenv(name_); }
  const char* name_;
};

} // namespace

BOOST_AUTO_TEST_SUITE(service_manager)

BOOST_AUTO_TEST_CASE(no_keep_alive_while_the_daemon_does_not_answer) {
  watchdog_log log;
  app::watchdog w{20ms, log.probe(), log.sender()};
  BOOST_REQUIRE(log.wait([&] { return log.probe_timeouts.size() >= 3; }));
  {
    std::lock_guard g{log.mtx};
    BOOST_TEST(log.sent.empty());
    // Half the interval: a keep-alive is never later than 3/4 of the
    // watchdog timeout after the previous one.
    BOOST_TEST(log.probe_timeouts.front().count() == 10);
  }
  log.alive = true;
  BOOST_REQUIRE(log.wait([&] { return log.sent.size() >= 2; }));
  std::lock_guard g{log.mtx};
  BOOST_TEST(log.sent.front() == "WATCHDOG=1");
}

BOOST_AUTO_TEST_CASE(keep_alives_stop_when_the_daemon_stops_answering) {
  watchdog_log log;
  log.alive = true;
  app::watchdog w{20ms, log.probe(), log.sender()};
  BOOST_REQUIRE(log.wait([&] { return !log.sent.empty(); }));
  log.alive = false;
  std::size_t sent_before = 0, probes_before = 0;
  {
    std::lock_guard g{log.mtx};
    // A round may be between its probe and its keep-alive.
    probes_before = log.probe_timeouts.size() + 1;
    sent_before = log.sent.size() + 1;
  }
  BOOST_REQUIRE(
      log.wait([&] { return log.probe_timeouts.size() >= probes_before + 3; }));
  std::lock_guard g{log.mtx};
  BOOST_TEST(log.sent.size() <= sent_before);
}

BOOST_AUTO_TEST_CASE(a_round_sends_only_after_a_yes) {
  watchdog_log log;
  // An hour between rounds: only the thread's first one and ours run.
  app::watchdog w{std::chrono::hours{1}, log.probe(), log.sender()};
  BOOST_REQUIRE(log.wait([&] { return log.probe_timeouts.size() == 1; }));
  BOOST_TEST(!w.round());
  log.alive = true;
  BOOST_TEST(w.round());
  std::lock_guard g{log.mtx};
  BOOST_TEST(log.sent == std::vector<std::string>{"WATCHDOG=1"});
}

BOOST_AUTO_TEST_CASE(the_interval_is_half_the_watchdog_timeout_for_this_pid) {
  ::unsetenv("WATCHDOG_PID");
  {
    scoped_env usec{"WATCHDOG_USEC", "400000"};
    BOOST_TEST(app::watchdog_interval().value().count() == 200);
    scoped_env pid{"WATCHDOG_PID", std::to_string(::getpid())};
    BOOST_TEST(app::watchdog_interval().value().count() == 200);
  }
  {
    // The watchdog of another process (a parent that set it).
    scoped_env usec{"WATCHDOG_USEC", "400000"};
    scoped_env pid{"WATCHDOG_PID", std::to_string(::getpid() + 1)};
    BOOST_TEST(!app::watchdog_interval().has_value());
  }
  ::unsetenv("WATCHDOG_USEC");
  BOOST_TEST(!app::watchdog_interval().has_value());
}

BOOST_AUTO_TEST_CASE(ready_and_stopping_reach_the_notify_socket) {
  test::temp_dir dir;
  auto path = (dir.path() / "notify").string();
  test::notify_socket sock{path};
  scoped_env env{"NOTIFY_SOCKET", path};
  app::notify_ready("listening on\n127.0.0.1:8650");
  BOOST_TEST(sock.next(5s) == "READY=1\nSTATUS=listening on 127.0.0.1:8650");
  app::notify_stopping("draining");
  BOOST_TEST(sock.next(5s) == "STOPPING=1\nSTATUS=draining");
}

BOOST_AUTO_TEST_CASE(without_a_service_manager_nothing_is_sent) {
  ::unsetenv("NOTIFY_SOCKET");
  BOOST_TEST(app::notify_service_manager("READY=1"));
}

BOOST_AUTO_TEST_SUITE_END()
