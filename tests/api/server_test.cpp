// The HTTP server with an engine that never answers: requests still get an
// answer, within server.request_timeout.
#include "api/server.hpp"

#include "common/encoding.hpp"
#include "tests/support/fakes.hpp"
#include "tests/support/http_client.hpp"

#include <boost/test/unit_test.hpp>

#include <condition_variable>
#include <mutex>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

using namespace tocsin;

namespace {

/// Takes every request and never answers (a store that hangs).
struct silent_engine final : actors::engine {
  void ingest(delivery::ingest_batch, delivery::ingest_callback done) override {
    held.push_back(std::move(done));
  }
  void change_endpoint(delivery::endpoint_change,
                       delivery::endpoint_change_callback) override {}
  void reconfigure(delivery::reconfiguration,
                   delivery::endpoint_change_callback) override {}
  void replay(delivery::replay_selection, delivery::replay_callback) override {}
  void answer(delivery::answer_request, delivery::answer_callback) override {}
  void drain(std::chrono::milliseconds) override {}
  bool responsive(std::chrono::milliseconds) override { return true; }
  std::vector<delivery::ingest_callback> held;
};

/// Blocks the thread that hands it events until `release` (a store call
/// that hangs on the I/O thread).
struct stuck_engine final : actors::engine {
  void ingest(delivery::ingest_batch, delivery::ingest_callback done) override {
    std::unique_lock lock{mtx};
    entered = true;
    changed.notify_all();
    changed.wait(lock, [this] { return released; });
    done(delivery::ingest_answer{{"evt_x"}, 0});
  }
  void change_endpoint(delivery::endpoint_change,
                       delivery::endpoint_change_callback) override {}
  void reconfigure(delivery::reconfiguration,
                   delivery::endpoint_change_callback) override {}
  void replay(delivery::replay_selection, delivery::replay_callback) override {}
  void answer(delivery::answer_request, delivery::answer_callback) override {}
  void drain(std::chrono::milliseconds) override {}
  bool responsive(std::chrono::milliseconds) override { return true; }
  void release() {
    std::lock_guard g{mtx};
    released = true;
    changed.notify_all();
  }
  std::mutex mtx;
  std::condition_variable changed;
  bool entered = false, released = false;
};

/// A server over `handler` on a free port of 127.0.0.1.
struct running_server {
  running_server(api::request_handler& handler, api::server_options opts) {
    opts.listen = "127.0.0.1:0";
    auto s = api::start_server(opts, handler);
    BOOST_REQUIRE(s);
    server = std::move(*s);
    auto address = server->address();
    port = static_cast<std::uint16_t>(
        std::stoi(address.substr(address.rfind(':') + 1)));
  }
  ~running_server() { server->stop(); }

  /// A connection that has sent `bytes`.
  int open(const std::string& bytes) const {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    BOOST_REQUIRE(
        ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    BOOST_REQUIRE(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
                  static_cast<ssize_t>(bytes.size()));
    return fd;
  }

  /// What came back on `fd` within `timeout` (until the server closed it).
  static std::string answer(int fd, std::chrono::milliseconds timeout) {
    std::string got;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd p{fd, POLLIN, 0};
      if (left.count() <= 0 ||
          ::poll(&p, 1, static_cast<int>(left.count())) <= 0)
        return got;
      char buf[4096];
      auto n = ::recv(fd, buf, sizeof(buf), 0);
      if (n <= 0)
        return got;
      got.append(buf, static_cast<std::size_t>(n));
    }
  }

  std::unique_ptr<api::server> server;
  std::uint16_t port = 0;
};

std::string post_head(const std::string& extra) {
  return "POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
         "admin-t\r\nContent-Type: application/json\r\n" +
         extra + "\r\n";
}

} // namespace

BOOST_AUTO_TEST_SUITE(server)

BOOST_AUTO_TEST_CASE(bodies_read_at_once_share_a_budget) {
  silent_engine engine;
  test::empty_log log;
  api::request_handler handler{
      engine, log,
      api::authenticator{{{"a", hex_encode(sha256("admin-t")), "admin"}}},
      api::handler_options{}};
  api::server_options opts;
  opts.max_reading_bytes = 2500;
  running_server s{handler, opts};
  // Two bodies of 1000 announced, neither sent yet: 2000 of the 2500.
  int first = s.open(post_head("Content-Length: 1000\r\n"));
  int second = s.open(post_head("Content-Length: 1000\r\n"));
  // Until both are being read, a third may still take the room; wait for
  // the point where it cannot: one of 1000 more is refused at once.
  std::string refused;
  for (int i = 0; i < 100 && refused.empty(); ++i) {
    int fd = s.open(post_head("Content-Length: 1000\r\n"));
    auto got = running_server::answer(fd, std::chrono::milliseconds{200});
    if (got.rfind("HTTP/1.1 503", 0) == 0)
      refused = got;
    ::close(fd);
  }
  BOOST_TEST(refused.find("Retry-After: 1") != std::string::npos, refused);
  BOOST_TEST(refused.find("overloaded") != std::string::npos, refused);
  // 500 still fit.
  int small = s.open(post_head("Content-Length: 500\r\n"));
  BOOST_TEST(running_server::answer(small, std::chrono::milliseconds{200})
                 .empty()); // being read: no answer yet
  // A chunked body counts as it comes: past the rest of the budget, 503.
  int chunked = s.open(post_head("Transfer-Encoding: chunked\r\n") + "3e8\r\n" +
                       std::string(1000, 'x') + "\r\n");
  auto got = running_server::answer(chunked, std::chrono::seconds{5});
  BOOST_TEST(got.rfind("HTTP/1.1 503", 0) == 0, got);
  // A body read to its end gives its bytes back.
  ::close(small);
  ::close(first);
  ::close(second);
  std::string body = R"({"type":"system.health","summary":"s"})";
  body.insert(1, 1000 - body.size(), ' ');
  bool room = false;
  for (int i = 0; i < 100 && !room; ++i) {
    int fd = s.open(post_head("Content-Length: 1000\r\n") + body);
    // Read whole, the request waits for the engine (which never answers):
    // no 503 from the budget.
    room = running_server::answer(fd, std::chrono::milliseconds{100}).empty();
    ::close(fd);
  }
  BOOST_TEST(room);
}

BOOST_AUTO_TEST_CASE(a_refused_head_is_answered_before_its_body) {
  silent_engine engine;
  test::empty_log log;
  api::request_handler handler{
      engine, log,
      api::authenticator{{{"a", hex_encode(sha256("admin-t")), "admin"}}},
      api::handler_options{}};
  running_server s{handler, {}};
  // No token, 1 MiB announced, nothing of it sent: 401 at once.
  int fd = s.open("POST /v1/events HTTP/1.1\r\nHost: x\r\n"
                  "Content-Length: 1048576\r\n\r\n");
  auto got = running_server::answer(fd, std::chrono::seconds{5});
  BOOST_TEST(got.rfind("HTTP/1.1 401", 0) == 0, got);
  BOOST_TEST(got.find("Connection: close") != std::string::npos, got);
  ::close(fd);
  // Over the limit with a token: 413 at once.
  fd = s.open(post_head("Content-Length: 1048577\r\n"));
  got = running_server::answer(fd, std::chrono::seconds{5});
  BOOST_TEST(got.rfind("HTTP/1.1 413", 0) == 0, got);
  ::close(fd);
}

BOOST_AUTO_TEST_CASE(an_answer_that_never_comes_is_a_503_in_time) {
  silent_engine engine;
  test::empty_log log;
  api::request_handler handler{
      engine, log,
      api::authenticator{{{"a", hex_encode(sha256("admin-t")), "admin"}}},
      api::handler_options{}};
  api::server_options opts;
  opts.listen = "127.0.0.1:0";
  opts.request_timeout = std::chrono::milliseconds{300};
  auto server = api::start_server(opts, handler);
  BOOST_REQUIRE(server);
  auto address = (*server)->address();
  auto port = static_cast<std::uint16_t>(
      std::stoi(address.substr(address.rfind(':') + 1)));
  test::http_client client{"127.0.0.1", port};
  auto start = std::chrono::steady_clock::now();
  auto r = client.request("POST", "/v1/events",
                          R"({"type":"system.health","summary":"s"})",
                          {{"authorization", "Bearer admin-t"},
                           {"content-type", "application/json"},
                           {"idempotency-key", "k1"}});
  auto took = std::chrono::steady_clock::now() - start;
  BOOST_TEST(r.status == 503, r.body << r.error);
  BOOST_TEST(r.body.find("answer_timeout") != std::string::npos, r.body);
  BOOST_TEST(r.headers["retry-after"] == "1");
  BOOST_TEST((took >= std::chrono::milliseconds{250}));
  BOOST_TEST((took < std::chrono::seconds{5}));
  // The late answer finds the connection answered already: ignored.
  BOOST_REQUIRE(engine.held.size() == 1u);
  engine.held[0](delivery::ingest_answer{{"evt_x"}, 0});
  // The server serves on.
  test::http_client again{"127.0.0.1", port};
  BOOST_TEST(again.request("GET", "/healthz").status == 200);
  (*server)->stop();
}

BOOST_AUTO_TEST_CASE(it_is_responsive_while_its_io_thread_runs) {
  stuck_engine engine;
  test::empty_log log;
  api::request_handler handler{
      engine, log,
      api::authenticator{{{"a", hex_encode(sha256("admin-t")), "admin"}}},
      api::handler_options{}};
  running_server s{handler, {}};
  BOOST_TEST(s.server->responsive(std::chrono::seconds{5}));
  // A request whose handling hangs on the one I/O thread.
  int fd = s.open(post_head("Content-Length: 38\r\n") +
                  R"({"type":"system.health","summary":"s"})");
  {
    std::unique_lock lock{engine.mtx};
    BOOST_REQUIRE(engine.changed.wait_for(lock, std::chrono::seconds{5},
                                          [&] { return engine.entered; }));
  }
  BOOST_TEST(!s.server->responsive(std::chrono::milliseconds{100}));
  engine.release();
  BOOST_TEST(s.server->responsive(std::chrono::seconds{5}));
  ::close(fd);
  s.server->stop();
  BOOST_TEST(!s.server->responsive(std::chrono::milliseconds{100}));
}

BOOST_AUTO_TEST_SUITE_END()
