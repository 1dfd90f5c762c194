// The adversarial pass, replayed against the real binary: each way one
// request, one receiver or one local user could crash, stall or subvert
// tocsin, and what it does instead.
#include "tests/e2e/answering.hpp"
#include "tests/e2e/fixture.hpp"

#include "common/encoding.hpp"
#include "tests/support/run_command.hpp"

#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <ctime>
#include <fstream>
#include <set>
#include <thread>

using namespace tocsin::test;
using nlohmann::json;
namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;

namespace {

/// The daemon's resident memory, current or peak, in KiB (/proc).
long memory_kib(pid_t pid, const std::string& field) {
  std::ifstream in{"/proc/" + std::to_string(pid) + "/status"};
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(field + ":", 0) == 0)
      return std::stol(line.substr(field.size() + 1));
  return -1;
}

/// A plain TCP connection to the daemon's API.
int connect_api(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  BOOST_REQUIRE(
      ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  return fd;
}

/// Whether the server closed `fd` within `timeout` (EOF or reset).
bool closed_by_server(int fd, milliseconds timeout) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0)
    return false;
  char c;
  return ::recv(fd, &c, 1, MSG_DONTWAIT) <= 0;
}

/// A plain TCP connection to the daemon's API from `from` (any address of
/// 127/8: each is a client address of its own to the daemon).
int connect_from(std::uint16_t port, const char* from) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  BOOST_REQUIRE(fd >= 0);
  int one = 1;
  ::setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
  sockaddr_in local{};
  local.sin_family = AF_INET;
  BOOST_REQUIRE(::inet_pton(AF_INET, from, &local.sin_addr) == 1);
  BOOST_REQUIRE(
      ::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof(local)) == 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  BOOST_REQUIRE(
      ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  return fd;
}

/// Sends all of `bytes` (blocking); false when the connection failed.
bool send_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    auto n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0)
      return false;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

/// Reads one answer's head and its Content-Length body (into `body`) from
/// `fd` within `timeout`: the status, or 0 when none came in time (or the
/// connection ended first).
int read_answer(int fd, milliseconds timeout, std::string* body = nullptr) {
  auto deadline = steady_clock::now() + timeout;
  std::string got;
  for (;;) {
    auto end = got.find("\r\n\r\n");
    if (end != std::string::npos) {
      std::size_t length = 0;
      auto lower = got.substr(0, end);
      for (auto& c : lower)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (auto at = lower.find("content-length:"); at != std::string::npos)
        length = std::stoul(lower.substr(at + 15));
      if (got.size() >= end + 4 + length) {
        if (body)
          *body = got.substr(end + 4, length);
        return got.rfind("HTTP/1.1 ", 0) == 0 ? std::stoi(got.substr(9, 3)) : 0;
      }
    }
    auto left = std::chrono::duration_cast<milliseconds>(deadline -
                                                         steady_clock::now());
    if (left.count() <= 0)
      return 0;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0)
      return 0;
    char buf[4096];
    auto n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0)
      return 0;
    got.append(buf, static_cast<std::size_t>(n));
  }
}

/// One request on a new connection from `from`: its status if answered
/// within a second, else 0.
int probe(std::uint16_t port, const char* from, const std::string& request) {
  int fd = connect_from(port, from);
  int status = send_all(fd, request) ? read_answer(fd, milliseconds{1000}) : 0;
  ::close(fd);
  return status;
}

/// The value of the sample `name` (with its labels) in GET /metrics, asked
/// from `from`; -1 when it is not there.
double metric(daemon_fixture& f, const char* from, const std::string& name) {
  int fd = connect_from(f.api_port(), from);
  std::string text;
  BOOST_REQUIRE(send_all(fd, "GET /metrics HTTP/1.1\r\nHost: x\r\n"
                             "Authorization: Bearer " +
                                 f.admin_token() +
                                 "\r\nConnection: close\r\n\r\n"));
  BOOST_REQUIRE(read_answer(fd, seconds{5}, &text) == 200);
  ::close(fd);
  auto at = text.find("\n" + name + " ");
  if (at == std::string::npos)
    return -1;
  return std::stod(text.substr(at + name.size() + 2));
}

/// Waits (at most `timeout`) until `want` of `fds` were closed by the server;
/// marks them in `closed` and returns how many were.
std::size_t wait_closed(const std::vector<int>& fds, std::vector<bool>& closed,
                        std::size_t want, milliseconds timeout) {
  auto deadline = steady_clock::now() + timeout;
  auto count =
      static_cast<std::size_t>(std::count(closed.begin(), closed.end(), true));
  while (count < want && steady_clock::now() < deadline) {
    std::vector<pollfd> polled;
    std::vector<std::size_t> which;
    for (std::size_t i = 0; i < fds.size(); ++i)
      if (!closed[i]) {
        polled.push_back({fds[i], POLLIN, 0});
        which.push_back(i);
      }
    if (::poll(polled.data(), polled.size(), 100) <= 0)
      continue;
    for (std::size_t k = 0; k < polled.size(); ++k) {
      if (!polled[k].revents)
        continue;
      char buf[4096];
      if (::recv(polled[k].fd, buf, sizeof(buf), MSG_DONTWAIT) <= 0) {
        closed[which[k]] = true;
        ++count;
      }
    }
  }
  return count;
}

std::string event_with_details(const std::string& details_json) {
  return R"({"type":"policy.denied","agent_id":"a","summary":"s","details":)" +
         details_json + "}";
}

} // namespace

BOOST_AUTO_TEST_SUITE(hardening)

BOOST_AUTO_TEST_CASE(deep_nesting_is_refused_and_the_daemon_lives) {
  daemon_fixture f;
  auto receiver = f.make_receiver();
  f.start({{"ops", daemon_fixture::url_of(*receiver)}});
  // What killed the daemon with SIGSEGV: 100,000 nested arrays in details.
  const std::size_t n = 100000;
  auto deep = std::string(n, '[') + std::string(n, ']');
  auto r = f.post("/v1/events", event_with_details(R"({"x":)" + deep + "}"),
                  f.admin_token());
  BOOST_TEST(r.status == 400, r.body);
  BOOST_TEST(error_of(r)["code"] == "invalid_json");
  BOOST_TEST(error_of(r)["message"].get<std::string>().find("deeper than 32") !=
             std::string::npos);
  // The same through an endpoint's options, on create and on change.
  r = f.post("/v1/endpoints",
             R"({"url":"https://hooks.example/x","options":{"x":)" + deep +
                 "}}",
             f.admin_token());
  BOOST_TEST(r.status == 400, r.body);
  BOOST_TEST(error_of(r)["code"] == "invalid_json");
  r = f.call("POST", "/v1/endpoints",
             json::parse(R"({"url":"https://hooks.example/x",)"
                         R"("enabled":false})"));
  BOOST_REQUIRE(r.status == 201);
  auto id = json::parse(r.body)["id"].get<std::string>();
  std::string patch = R"({"options":{"x":)" + deep + "}}";
  tocsin::test::http_client c{"127.0.0.1", f.api_port()};
  r = c.request("PATCH", "/v1/endpoints/" + id, patch,
                {{"authorization", "Bearer " + f.admin_token()},
                 {"content-type", "application/json"}});
  BOOST_TEST(r.status == 400, r.body);
  BOOST_TEST(error_of(r)["code"] == "invalid_json");
  // Alive, and delivering.
  BOOST_TEST(f.process().running());
  BOOST_TEST(f.get("/healthz").status == 200);
  auto ids = f.post_events(sample_event());
  auto ev = f.wait_finished(ids.at(0));
  BOOST_TEST(ev["deliveries"][0]["state"] == "delivered");
}

BOOST_AUTO_TEST_CASE(a_huge_event_does_not_stall_the_others) {
  daemon_fixture f;
  auto receiver = f.make_receiver();
  f.start({{"ops", daemon_fixture::url_of(*receiver)}});
  // 16,000 short values (the 400 KB event that took 35 s to cut): refused
  // at once, past the bound on members per object.
  std::string many = "{";
  for (int i = 0; i < 16000; ++i)
    many += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":\"vvvvvvvvvv\"";
  many += "}";
  auto t0 = steady_clock::now();
  auto r = f.post("/v1/events", event_with_details(many), f.admin_token());
  BOOST_TEST(r.status == 400, r.body);
  BOOST_TEST(error_of(r)["message"].get<std::string>().find("1000 members") !=
             std::string::npos);
  // The largest event that is accepted: 1000 values filling the 1 MiB body,
  // cut down to 4 KiB for delivery; posted again and again while another
  // producer posts small events, each answered within a second.
  std::string big = "{";
  for (int i = 0; i < 1000; ++i)
    big += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":\"" +
           std::string(1000, 'v') + "\"";
  big += "}";
  auto big_event = event_with_details(big);
  BOOST_REQUIRE(big_event.size() < (1u << 20));
  std::atomic<bool> stop{false};
  std::atomic<int> big_accepted{0};
  std::thread producer([&] {
    tocsin::test::http_client c{"127.0.0.1", f.api_port()};
    while (!stop) {
      auto res = c.request("POST", "/v1/events", big_event,
                           {{"authorization", "Bearer " + f.admin_token()},
                            {"content-type", "application/json"}});
      if (res.status == 202)
        ++big_accepted;
    }
  });
  milliseconds slowest{0};
  for (int i = 0; i < 20; ++i) {
    auto start = steady_clock::now();
    auto ids = f.post_events(sample_event("small-" + std::to_string(i)));
    slowest = std::max(slowest, std::chrono::duration_cast<milliseconds>(
                                    steady_clock::now() - start));
  }
  stop = true;
  producer.join();
  BOOST_TEST(big_accepted > 0);
  BOOST_TEST(slowest < milliseconds{1000},
             "slowest small event: " << slowest.count() << " ms");
  (void)t0;
  // What the receiver got of a big one: under the payload limit, marked.
  BOOST_REQUIRE(receiver->wait_for(21, seconds{30}));
  bool saw_cut = false;
  for (auto& req : receiver->requests()) {
    BOOST_TEST(req.body.size() <= 4096u);
    auto body = json::parse(req.body);
    if (body.value("truncated", false))
      saw_cut = !body["details"].empty() && body["summary"] == "s";
  }
  BOOST_TEST(saw_cut);
}

BOOST_AUTO_TEST_CASE(receivers_answers_cost_constant_memory) {
  daemon_fixture f;
  // 200 with a 100 MB body, five deliveries at once: delivered on the first
  // attempt, and the daemon's peak memory hardly moves.
  canned_response huge;
  huge.raw = "HTTP/1.1 200 OK\r\nContent-Length: 104857600\r\n\r\n";
  huge.stream_bytes = 100u << 20;
  auto big_body = f.make_receiver(
      [huge](const received_request&, std::size_t) { return huge; });
  // 200 with 16 KiB of headers; 200 with a chunked body of 2 MiB.
  canned_response headers;
  headers.raw = "HTTP/1.1 200 OK\r\nX-Pad: " + std::string(16384, 'p') +
                "\r\nContent-Length: 0\r\n\r\n";
  auto big_headers = f.make_receiver(
      [headers](const received_request&, std::size_t) { return headers; });
  canned_response chunked;
  chunked.raw = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  chunked.stream_bytes = 2u << 20;
  chunked.stream_chunked = true;
  auto big_chunks = f.make_receiver(
      [chunked](const received_request&, std::size_t) { return chunked; });
  f.start(
      {{"body", daemon_fixture::url_of(*big_body), "[0.05, 0.05, 0.05, 0.05]",
        "event_types = [\"policy.denied\"]"},
       {"headers", daemon_fixture::url_of(*big_headers),
        "[0.05, 0.05, 0.05, 0.05]", "event_types = [\"system.health\"]"},
       {"chunks", daemon_fixture::url_of(*big_chunks),
        "[0.05, 0.05, 0.05, 0.05]", "event_types = [\"anomaly.detected\"]"}});
  auto pid = f.process().pid();
  auto before = memory_kib(pid, "VmHWM");
  json batch = json::array();
  for (int i = 0; i < 5; ++i)
    batch.push_back(sample_event("agent-" + std::to_string(i)));
  auto ids = f.post_events({{"events", batch}});
  for (auto& id : ids) {
    auto ev = f.wait_finished(id);
    auto& d = ev["deliveries"][0];
    BOOST_TEST(d["state"] == "delivered", d.dump());
    BOOST_TEST(d["attempts"].size() == 1u, d.dump());
    BOOST_TEST(d["attempts"][0]["response"].get<std::string>().size() <= 1024u);
  }
  auto after = memory_kib(pid, "VmHWM");
  BOOST_TEST_MESSAGE("daemon peak RSS " << before << " KiB before, " << after
                                        << " KiB after 5 answers of 100 MB");
  BOOST_TEST(after - before < 32 * 1024,
             "peak grew by " << after - before << " KiB");
  for (auto* type : {"system.health", "anomaly.detected"}) {
    json ev = {{"type", type}, {"agent_id", "a"}, {"summary", "s"}};
    auto id = f.post_events(ev).at(0);
    auto done = f.wait_finished(id);
    BOOST_TEST(done["deliveries"][0]["state"] == "delivered", done.dump());
    BOOST_TEST(done["deliveries"][0]["attempts"].size() == 1u, done.dump());
  }
}

BOOST_AUTO_TEST_CASE(idle_and_slow_connections_cannot_lock_others_out) {
  daemon_fixture f;
  f.start({}, "max_connections = 8\nheader_timeout = 0.5\n"
              "request_timeout = 30\n");
  // Every slot taken by idle sockets: a new client still gets in, because
  // the oldest idle connection makes room for it.
  std::vector<int> idle;
  for (int i = 0; i < 8; ++i)
    idle.push_back(connect_api(f.api_port()));
  std::this_thread::sleep_for(milliseconds{100});
  // Eight new clients, each kept open (so each needs a slot of its own).
  std::vector<std::unique_ptr<tocsin::test::http_client>> clients;
  for (int i = 0; i < 8; ++i) {
    auto start = steady_clock::now();
    clients.push_back(
        std::make_unique<tocsin::test::http_client>("127.0.0.1", f.api_port()));
    auto r = clients.back()->request("GET", "/healthz");
    BOOST_TEST(r.status == 200, r.error);
    BOOST_TEST((steady_clock::now() - start < seconds{2}));
  }
  int evicted = 0;
  for (int fd : idle) {
    evicted += closed_by_server(fd, milliseconds{500});
    ::close(fd);
  }
  BOOST_TEST(evicted == 8); // the oldest idle ones made room
  clients.clear();
  // A head trickled byte by byte is cut at header_timeout (0.5 s), although
  // the whole request would have 30 s.
  int fd = connect_api(f.api_port());
  auto start = steady_clock::now();
  std::string head =
      "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + std::string(100, 'a') +
      "\r\n\r\n";
  bool cut = false;
  for (char ch : head) {
    if (::send(fd, &ch, 1, MSG_NOSIGNAL) != 1) {
      cut = true;
      break;
    }
    std::this_thread::sleep_for(milliseconds{50});
  }
  cut = cut || closed_by_server(fd, milliseconds{100});
  ::close(fd);
  BOOST_TEST(cut);
  BOOST_TEST((steady_clock::now() - start < seconds{3}));
  BOOST_TEST(f.get("/healthz").status == 200);
}

BOOST_AUTO_TEST_CASE(slow_heads_from_one_address_cannot_hold_every_slot) {
  daemon_fixture f;
  // header_timeout is not the defence here: the heads would live 2 minutes.
  f.start({}, "header_timeout = 120\n");
  auto port = f.api_port();
  // 1,100 sockets from 127.0.0.1, each with a head begun and never ended.
  const std::size_t n = 1100, per_address = 256;
  std::vector<int> slow;
  for (std::size_t i = 0; i < n; ++i) {
    slow.push_back(connect_from(port, "127.0.0.1"));
    BOOST_REQUIRE(send_all(slow.back(), "POST /v1/events HTTP/1.1\r\nHost: "
                                        "x\r\nX-Slow: a"));
  }
  // max_connections_per_address (256): the rest are closed at once.
  std::vector<bool> closed(n, false);
  auto gone = wait_closed(slow, closed, n - per_address, seconds{10});
  BOOST_TEST(gone == n - per_address);
  // Another client (127.0.0.2) is served, a new connection per request.
  auto health = std::string{"GET /healthz HTTP/1.1\r\nHost: x\r\n"
                            "Connection: close\r\n\r\n"};
  auto event = sample_event().dump();
  auto post = "POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
              f.admin_token() +
              "\r\nContent-Type: application/json\r\nContent-Length: " +
              std::to_string(event.size()) + "\r\nConnection: close\r\n\r\n" +
              event;
  int served = 0, probes = 0;
  for (int i = 0; i < 20; ++i) {
    served += probe(port, "127.0.0.2", health) == 200;
    served += probe(port, "127.0.0.2", post) == 202;
    probes += 2;
  }
  BOOST_TEST_MESSAGE("slow heads: " << served << " of " << probes
                                    << " probes served within a second");
  BOOST_TEST(served * 100 >= probes * 95, served << " of " << probes);
  BOOST_TEST(
      metric(
          f, "127.0.0.2",
          R"(tocsin_http_connections_refused_total{reason="per_address"})") ==
      double(n - per_address));
  // The slow heads it kept are still open (nothing needed their slots).
  BOOST_TEST(wait_closed(slow, closed, n, milliseconds{0}) == n - per_address);
  for (int fd : slow)
    ::close(fd);
}

BOOST_AUTO_TEST_CASE(at_the_cap_the_connection_with_least_progress_goes) {
  daemon_fixture f;
  f.start({}, "max_connections = 32\nheader_timeout = 120\n");
  auto port = f.api_port();
  auto health = std::string{"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"};
  // A kept-alive client that was answered (idle) ...
  int idle = connect_from(port, "127.0.0.3");
  BOOST_REQUIRE(send_all(idle, health));
  BOOST_REQUIRE(read_answer(idle, seconds{5}) == 200);
  // ... and a request whose body is being read.
  auto event = sample_event().dump();
  int body = connect_from(port, "127.0.0.4");
  BOOST_REQUIRE(send_all(
      body, "POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                f.admin_token() +
                "\r\nContent-Type: application/json\r\nContent-Length: " +
                std::to_string(event.size()) + "\r\n\r\n" +
                event.substr(0, 10)));
  // Then 100 slow heads (from one address, under its 256): more than the
  // 32 slots; each past the cap closes the oldest unfinished head.
  std::vector<int> slow;
  for (int i = 0; i < 100; ++i) {
    slow.push_back(connect_from(port, "127.0.0.1"));
    BOOST_REQUIRE(send_all(slow.back(), "GET /healthz HTTP/1.1\r\nHost: x"));
  }
  std::vector<bool> closed(slow.size(), false);
  BOOST_TEST(wait_closed(slow, closed, 100 - 30, seconds{10}) == 70u);
  // New clients get in, each making room in turn.
  int served = 0;
  for (int i = 0; i < 20; ++i)
    served += probe(port, "127.0.0.2",
                    "GET /healthz HTTP/1.1\r\nHost: x\r\n"
                    "Connection: close\r\n\r\n") == 200;
  BOOST_TEST(served == 20);
  BOOST_TEST(metric(f, "127.0.0.2",
                    R"(tocsin_http_connections_evicted_total{phase="head"})") >=
             70);
  // The idle client and the body kept their connections.
  BOOST_TEST(send_all(idle, health));
  BOOST_TEST(read_answer(idle, seconds{5}) == 200);
  BOOST_TEST(send_all(body, event.substr(10)));
  BOOST_TEST(read_answer(body, seconds{5}) == 202);
  // An unfinished head still dies at header_timeout: not tested here (2 min).
  ::close(idle);
  ::close(body);
  for (int fd : slow)
    ::close(fd);
}

BOOST_AUTO_TEST_CASE(bodies_are_refused_from_their_head) {
  daemon_fixture f;
  f.start({}, "", slack_config() + pagerduty_config());
  auto port = f.api_port();
  auto pid = f.process().pid();
  // 800 requests without a token announcing 1 MiB and sending all of it
  // but the last byte, to four routes, from four addresses (200 each, under
  // max_connections_per_address).
  const std::size_t n = 800, mib = 1 << 20;
  const char* targets[] = {"/v1/events", "/v1/endpoints",
                           "/v1/integrations/slack/interactions",
                           "/v1/integrations/pagerduty/webhook"};
  const char* froms[] = {"127.0.0.10", "127.0.0.11", "127.0.0.12",
                         "127.0.0.13"};
  std::string almost(mib - 1, 'x');
  auto before = memory_kib(pid, "VmHWM");
  auto started = steady_clock::now();
  std::vector<int> fds;
  for (std::size_t i = 0; i < n; ++i) {
    int fd = connect_from(port, froms[i % 4]);
    timeval tv{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    send_all(fd, std::string{"POST "} + targets[i % 4] +
                     " HTTP/1.1\r\nHost: x\r\nContent-Type: "
                     "application/json\r\nContent-Length: " +
                     std::to_string(mib) + "\r\n\r\n");
    send_all(fd, almost); // may fail: the server may have closed already
    fds.push_back(fd);
  }
  auto peak = memory_kib(pid, "VmHWM");
  BOOST_TEST_MESSAGE(
      "800 token-less 1 MiB bodies: daemon peak RSS "
      << before / 1024 << " MiB before, " << peak / 1024
      << " MiB after, sent in "
      << std::chrono::duration_cast<milliseconds>(steady_clock::now() - started)
             .count()
      << " ms");
  BOOST_TEST(peak - before <= 50 * 1024,
             "peak grew by " << peak - before << " KiB");
  // Each was answered 401 (or 413), without its last byte.
  int answered = 0;
  for (int fd : fds) {
    auto status = read_answer(fd, milliseconds{answered == 0 ? 5000 : 500});
    answered += status == 401 || status == 413;
    ::close(fd);
  }
  BOOST_TEST(answered == static_cast<int>(n));
  BOOST_TEST(metric(f, "127.0.0.14",
                    R"(tocsin_http_refused_before_body_total{status="401"})") ==
             double(n));
  // Head only, answered at once: Slack with 1 MiB announced (its limit is
  // 64 KiB) ...
  int fd = connect_from(port, "127.0.0.14");
  BOOST_REQUIRE(send_all(
      fd, "POST /v1/integrations/slack/interactions HTTP/1.1\r\nHost: x\r\n"
          "Content-Type: application/x-www-form-urlencoded\r\n"
          "X-Slack-Request-Timestamp: " +
              std::to_string(std::time(nullptr)) +
              "\r\nX-Slack-Signature: v0=" + std::string(64, '0') +
              "\r\nContent-Length: " + std::to_string(mib) + "\r\n\r\n"));
  BOOST_TEST(read_answer(fd, seconds{2}) == 413);
  ::close(fd);
  // ... PagerDuty without X-PagerDuty-Signature ...
  fd = connect_from(port, "127.0.0.14");
  BOOST_REQUIRE(send_all(
      fd, "POST /v1/integrations/pagerduty/webhook HTTP/1.1\r\nHost: x\r\n"
          "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"));
  BOOST_TEST(read_answer(fd, seconds{2}) == 401);
  ::close(fd);
  // ... and a route that does not exist.
  fd = connect_from(port, "127.0.0.14");
  BOOST_REQUIRE(send_all(
      fd, "POST /v1/nowhere HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
              f.admin_token() + "\r\nContent-Length: 1000\r\n\r\n"));
  BOOST_TEST(read_answer(fd, seconds{2}) == 404);
  ::close(fd);
  BOOST_TEST(f.get("/healthz").status == 200);
}

BOOST_AUTO_TEST_CASE(the_store_and_the_admin_token_are_private) {
  daemon_fixture f;
  f.start({});
  f.post_events(sample_event());
  auto data = f.dir() / "data";
  struct stat st {};
  BOOST_REQUIRE(::stat(data.c_str(), &st) == 0);
  BOOST_TEST((st.st_mode & 0777) == 0700u);
  int files = 0;
  for (auto& entry : fs::recursive_directory_iterator{data}) {
    BOOST_REQUIRE(::stat(entry.path().c_str(), &st) == 0);
    BOOST_TEST((st.st_mode & 077) == 0u,
               entry.path() << " mode " << std::oct << (st.st_mode & 0777));
    ++files;
  }
  BOOST_TEST(files > 3); // RocksDB's files (WAL, MANIFEST, ...) and the token
  BOOST_TEST(f.terminate() == 0);

  auto refused = [&](const std::string& expect) {
    daemon_process p{
        {TOCSIN_BINARY, "serve", "--config", f.config_file().string()},
        f.dir() / "refused.log"};
    auto code = p.wait_exit(seconds{10});
    BOOST_REQUIRE_MESSAGE(code, "the daemon started:\n" << p.log());
    BOOST_TEST(*code != 0);
    BOOST_TEST(p.log().find(expect) != std::string::npos, p.log());
  };
  // A data_dir others may read: refused, with how to fix it.
  BOOST_REQUIRE(::chmod(data.c_str(), 0755) == 0);
  refused("chmod 700");
  BOOST_REQUIRE(::chmod(data.c_str(), 0700) == 0);
  // An admin.token others may read, or a symlink in its place.
  auto token = data / "admin.token";
  BOOST_REQUIRE(::chmod(token.c_str(), 0644) == 0);
  refused("chmod 600");
  BOOST_REQUIRE(::chmod(token.c_str(), 0600) == 0);
  fs::rename(token, f.dir() / "real.token");
  fs::create_symlink(f.dir() / "real.token", token);
  refused("symbolic link");
  fs::remove(token);
  fs::rename(f.dir() / "real.token", token);
  f.restart();
  BOOST_TEST(f.get("/healthz").status == 200);
}

BOOST_AUTO_TEST_CASE(plugins_others_can_write_are_not_loaded) {
  daemon_fixture f;
  auto plugins = f.dir() / "plugins";
  fs::create_directories(plugins);
  fs::path shipped{TOCSIN_PLUGINS_OUTPUT_DIR};
  for (auto* name : {"webhook.so", "slack.so"})
    fs::copy_file(shipped / name, plugins / name);
  fs::copy_file(fs::path{TOCSIN_TEST_PLUGINS_DIR} / "no_entry.so",
                plugins / "no_entry.so");
  BOOST_REQUIRE(::chmod(plugins.c_str(), 0777) == 0);
  // serve refuses to start; `tocsin plugins` says why.
  std::ofstream{f.config_file()}
      << "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \""
      << (f.dir() / "data").string() << "\"\n"
      << daemon_fixture::plugins_dir_setting(plugins);
  daemon_process p{
      {TOCSIN_BINARY, "serve", "--config", f.config_file().string()},
      f.dir() / "refused.log"};
  auto code = p.wait_exit(seconds{10});
  BOOST_REQUIRE_MESSAGE(code, p.log());
  BOOST_TEST(*code != 0);
  BOOST_TEST(p.log().find("writable by others") != std::string::npos, p.log());
  auto listed = run_command(
      {TOCSIN_BINARY, "plugins", "--config", f.config_file().string()});
  BOOST_TEST(listed.code != 0, listed);
  BOOST_TEST(listed.err.find("writable by others") != std::string::npos,
             listed);
  // Made safe: the plugins load, and the file that is no plugin is refused
  // without its constructor ever running.
  BOOST_REQUIRE(::chmod(plugins.c_str(), 0755) == 0);
  auto mark = f.dir() / "constructor-ran";
  command_options opts;
  opts.env = {"TOCSIN_TEST_CONSTRUCTOR_MARK=" + mark.string()};
  listed = run_command(
      {TOCSIN_BINARY, "plugins", "--config", f.config_file().string()}, opts);
  BOOST_TEST(listed.out.find("webhook") != std::string::npos, listed);
  BOOST_TEST(listed.err.find("no_entry.so: no symbol tocsin_plugin_entry_v2") !=
                 std::string::npos,
             listed);
  BOOST_TEST(!fs::exists(mark));
  // One plugin file others may write: that one is refused by name.
  BOOST_REQUIRE(::chmod((plugins / "slack.so").c_str(), 0666) == 0);
  listed = run_command(
      {TOCSIN_BINARY, "plugins", "--config", f.config_file().string()});
  BOOST_TEST(listed.err.find("slack.so: ") != std::string::npos, listed);
  BOOST_TEST(listed.out.find("slack") == std::string::npos, listed);
}

// The plugins directory is safe only if no directory above it can be
// written by others (they could swap it), and a link to it is judged by
// where it leads (issue 24).
BOOST_AUTO_TEST_CASE(
    plugins_under_a_directory_others_can_write_are_not_loaded) {
  daemon_fixture f;
  auto open = f.dir() / "open";
  auto plugins = open / "plugins";
  fs::create_directories(plugins);
  fs::copy_file(fs::path{TOCSIN_PLUGINS_OUTPUT_DIR} / "webhook.so",
                plugins / "webhook.so");
  BOOST_REQUIRE(::chmod(plugins.c_str(), 0755) == 0);
  BOOST_REQUIRE(::chmod(open.c_str(), 0777) == 0);
  auto link = f.dir() / "plugins-link";
  fs::create_symlink(plugins, link);
  for (auto& dir : {plugins, link}) {
    std::ofstream{f.config_file(), std::ios::trunc}
        << "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \""
        << (f.dir() / "data").string() << "\"\n"
        << daemon_fixture::plugins_dir_setting(dir);
    daemon_process p{
        {TOCSIN_BINARY, "serve", "--config", f.config_file().string()},
        f.dir() / "refused.log"};
    auto code = p.wait_exit(seconds{10});
    BOOST_REQUIRE_MESSAGE(code, dir << ": " << p.log());
    BOOST_TEST(*code != 0);
    BOOST_TEST(p.log().find(open.string() + ", above " + plugins.string() +
                            ", is writable by others") != std::string::npos,
               p.log());
    auto listed = run_command(
        {TOCSIN_BINARY, "plugins", "--config", f.config_file().string()});
    BOOST_TEST(listed.code != 0, listed);
    BOOST_TEST(listed.err.find("not sticky") != std::string::npos, listed);
  }
  // Made safe, the link leads to a directory that loads.
  BOOST_REQUIRE(::chmod(open.c_str(), 0755) == 0);
  auto listed = run_command(
      {TOCSIN_BINARY, "plugins", "--config", f.config_file().string()});
  BOOST_TEST(listed.code == 0, listed);
  BOOST_TEST(listed.out.find("webhook") != std::string::npos, listed);
}

BOOST_AUTO_TEST_CASE(an_idempotency_key_cannot_suppress_another_alert) {
  daemon_fixture f;
  auto receiver = f.make_receiver();
  std::string producer = "producer-token", other = "other-token";
  f.use_admin_token("admin-token");
  f.start({{"ops", daemon_fixture::url_of(*receiver)}}, "",
          token_toml("admin", "admin-token", "admin") +
              token_toml("producer", producer, "ingest") +
              token_toml("other", other, "ingest"));
  auto post = [&](const std::string& token, const json& body,
                  const std::string& key) {
    tocsin::test::http_client c{"127.0.0.1", f.api_port()};
    std::vector<std::pair<std::string, std::string>> headers{
        {"authorization", "Bearer " + token},
        {"content-type", "application/json"}};
    if (!key.empty())
      headers.emplace_back("Idempotency-Key", key);
    return c.request("POST", "/v1/events", body.dump(), headers);
  };
  auto decoy = sample_event("decoy");
  decoy["severity"] = "low";
  auto critical = sample_event("agent-7");
  critical["severity"] = "critical";
  // The decoy takes the key; the real alert under the same key is refused
  // loudly (422), not answered 202 with the decoy's id and dropped.
  auto first = post(producer, decoy, "rcpt_123");
  BOOST_REQUIRE(first.status == 202);
  auto reused = post(producer, critical, "rcpt_123");
  BOOST_TEST(reused.status == 422, reused.body);
  BOOST_TEST(error_of(reused)["code"] == "idempotency_key_reused");
  BOOST_TEST(error_of(reused)["field"] == "Idempotency-Key");
  // The same request again is a repeat: the first ids, nothing new.
  auto again = post(producer, decoy, "rcpt_123");
  BOOST_TEST(again.status == 202);
  BOOST_TEST(json::parse(again.body)["ids"] == json::parse(first.body)["ids"]);
  BOOST_TEST(json::parse(again.body)["deliveries"] == 0);
  // Keys are scoped to the token: another producer's rcpt_123 is its own.
  auto mine = post(other, critical, "rcpt_123");
  BOOST_TEST(mine.status == 202, mine.body);
  BOOST_TEST(json::parse(mine.body)["ids"] != json::parse(first.body)["ids"]);
  // The field behaves alike, in a batch too (all or nothing).
  auto keyed = sample_event("keyed");
  keyed["idempotency_key"] = "evt-key-1";
  BOOST_TEST(post(producer, keyed, "").status == 202);
  auto changed = keyed;
  changed["summary"] = "something else";
  auto batch = post(producer, {{"events", {sample_event("new"), changed}}}, "");
  BOOST_TEST(batch.status == 422, batch.body);
  BOOST_TEST(error_of(batch)["field"] == "events[1].idempotency_key");
  auto bad_key = keyed;
  bad_key["idempotency_key"] = "has space";
  BOOST_TEST(post(producer, bad_key, "").status == 400);
  // It holds across a crash.
  f.kill9();
  f.restart();
  reused = post(producer, critical, "rcpt_123");
  BOOST_TEST(reused.status == 422, reused.body);
  // Delivered: the decoy, other's critical event and the keyed one; the
  // batch with the reused key stored nothing. (An attempt the SIGKILL cut
  // short is sent again: counted by event id.)
  BOOST_REQUIRE(receiver->wait_for(3, seconds{10}));
  std::this_thread::sleep_for(milliseconds{300});
  std::set<std::string> delivered;
  for (auto& req : receiver->requests())
    delivered.insert(req.headers["webhook-id"]);
  BOOST_TEST(delivered.size() == 3u);
}

BOOST_AUTO_TEST_CASE(ambiguous_http_is_refused) {
  daemon_fixture f;
  auto receiver = f.make_receiver();
  f.start({{"ops", daemon_fixture::url_of(*receiver)}});
  auto event = sample_event().dump();
  auto auth = "Authorization: Bearer " + f.admin_token() + "\r\n";
  auto len = std::to_string(event.size());
  std::vector<std::string> shapes{
      "POST /v1/events HTTP/1.1\r\nHost: x\r\n" + auth +
          "Content-Type: application/json\r\nTransfer-Encoding: chunked, "
          "identity\r\nContent-Length: " +
          len + "\r\n\r\n" + event,
      "POST /v1/events HTTP/1.1\r\nHost: x\r\n" + auth +
          "Content-Type: application/json\r\nTransfer-Encoding: xchunked\r\n"
          "Content-Length: " +
          len + "\r\n\r\n" + event,
      "POST /v1/events HTTP/1.1\r\nHost: x\r\n" + auth +
          "Content-Type: application/json\r\nTransfer-Encoding: gzip, "
          "chunked\r\nContent-Length: " +
          len + "\r\n\r\n" + event,
      "POST /v1/events HTTP/1.1\r\nHost: x\r\n" + auth +
          "Content-Type: application/json\r\nX-Folded: a\r\n b\r\n"
          "Content-Length: " +
          len + "\r\n\r\n" + event,
      "POST /v1/events HTTP/1.1\r\n" + auth +
          "Content-Type: application/json\r\nContent-Length: " + len +
          "\r\n\r\n" + event,
      "POST /v1/events HTTP/1.1\r\nHost: x\r\n" + auth + auth +
          "Content-Type: application/json\r\nContent-Length: " + len +
          "\r\n\r\n" + event,
  };
  tocsin::test::http_client raw{"127.0.0.1", f.api_port()};
  for (auto& shape : shapes) {
    auto answer = raw.raw(shape);
    BOOST_TEST(answer.rfind("HTTP/1.1 400", 0) == 0,
               shape << "\n-> " << answer);
  }
  // JSON that nlohmann alone takes: trailing bytes after a NUL, and
  // duplicate keys.
  auto nul = event + std::string{"\0garbage", 8};
  BOOST_TEST(error_of(f.post("/v1/events", nul, f.admin_token()))["code"] ==
             "invalid_json");
  auto dup = R"({"type":"bogus","agent_id":"a","summary":"s",)"
             R"("type":"policy.denied"})";
  BOOST_TEST(error_of(f.post("/v1/events", dup, f.admin_token()))["code"] ==
             "invalid_json");
  // None of it was accepted.
  std::this_thread::sleep_for(milliseconds{300});
  BOOST_TEST(receiver->count() == 0u);
  BOOST_TEST(f.get("/healthz").status == 200);
}

BOOST_AUTO_TEST_CASE(routes_by_segment_and_heads_like_gets) {
  daemon_fixture f;
  f.start({});
  // An id that names a sub-resource is refused ...
  auto r = f.call("POST", "/v1/endpoints",
                  {{"id", "replay"}, {"url", "https://hooks.example/x"}});
  BOOST_TEST(r.status == 400, r.body);
  BOOST_TEST(error_of(r)["field"] == "id");
  // ... and paths are matched segment by segment: POST on an endpoint is
  // not a replay (and no length underflows).
  r = f.call("POST", "/v1/endpoints/replay");
  BOOST_TEST(r.status == 405, r.body);
  BOOST_TEST(error_of(r)["message"] == "use GET, PATCH, DELETE "
                                       "/v1/endpoints/replay");
  BOOST_TEST(f.call("POST", "/v1/endpoints/replay/replay").status == 404);
  r = f.call("POST", "/v1/endpoints",
             {{"id", "ops"}, {"url", "https://hooks.example/x"}});
  BOOST_REQUIRE(r.status == 201);
  BOOST_TEST(f.call("POST", "/v1/endpoints/ops/replay").status == 202);
  BOOST_TEST(f.call("GET", "/v1/endpoints/ops/nothing").status == 404);
  BOOST_TEST(f.call("PUT", "/v1/endpoints/ops").status == 405);
  // HEAD answers with the length the GET would have, and no body.
  auto get = f.call("GET", "/v1/endpoints");
  auto head = f.call("HEAD", "/v1/endpoints");
  BOOST_TEST(head.status == 200);
  BOOST_TEST(head.body.empty());
  BOOST_TEST(head.headers["content-length"] == std::to_string(get.body.size()));
}

BOOST_AUTO_TEST_SUITE_END()
