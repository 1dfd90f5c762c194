// The daemon under a service manager (systemd's Type=notify protocol): the
// real binary with NOTIFY_SOCKET and WATCHDOG_USEC set as systemd sets them,
// the messages read from the socket a test binds.
#include "tests/e2e/fixture.hpp"
#include "tests/support/notify_socket.hpp"

#include <boost/test/unit_test.hpp>

using namespace tocsin::test;
using namespace std::chrono_literals;

BOOST_AUTO_TEST_SUITE(systemd_notify)

BOOST_AUTO_TEST_CASE(ready_watchdog_keep_alives_then_stopping) {
  daemon_fixture f;
  notify_socket sock{(f.dir() / "notify").string()};
  // A 400 ms watchdog: a keep-alive every 200 ms.
  f.set_environment({"NOTIFY_SOCKET=" + sock.path(), "WATCHDOG_USEC=400000"});
  f.start({});

  // READY=1 once the API listens (start() has seen the "listening" line).
  auto ready = sock.next(10s);
  BOOST_TEST(ready == "READY=1\nSTATUS=listening on 127.0.0.1:" +
                          std::to_string(f.api_port()));
  int keep_alives = 0;
  for (auto m = sock.next(5s); !m.empty() && keep_alives < 3; m = sock.next(5s))
    if (m == "WATCHDOG=1")
      ++keep_alives;
    else
      BOOST_TEST(m == "WATCHDOG=1");
  BOOST_TEST(keep_alives == 3);

  BOOST_TEST(f.terminate() == 0);
  // No keep-alive after STOPPING=1, and nothing after it at all.
  std::vector<std::string> after;
  for (auto m = sock.next(1s); !m.empty(); m = sock.next(1s))
    after.push_back(m);
  while (!after.empty() && after.front() == "WATCHDOG=1")
    after.erase(after.begin());
  BOOST_TEST(after == std::vector<std::string>{
                          "STOPPING=1\nSTATUS=draining deliveries in flight"});
}

BOOST_AUTO_TEST_SUITE_END()
