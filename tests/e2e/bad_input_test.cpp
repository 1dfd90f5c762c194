// Bad input of every kind gets a clear JSON error and changes nothing: after
// all of it, exactly the one good event reaches the receiver.
#include "tests/e2e/fixture.hpp"

#include "common/encoding.hpp"

#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <fstream>
#include <netinet/in.h>
#include <sstream>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

using namespace tocsin::test;
using nlohmann::json;

namespace {

void expect_error(const http_result& r, int status, const std::string& code,
                  const std::string& what) {
  BOOST_TEST(r.status == status, what << ": got " << r.status << " " << r.body);
  auto body = json::parse(r.body, nullptr, false);
  BOOST_REQUIRE_MESSAGE(body.is_object(), what << ": not JSON: " << r.body);
  if (!body.contains("error") || !body["error"].is_object()) {
    BOOST_ERROR(what << ": no error in " << r.body);
    return;
  }
  BOOST_TEST(body["error"]["code"] == code, what << ": " << r.body);
  BOOST_TEST(!body["error"]["message"].get<std::string>().empty());
  BOOST_TEST(r.headers.at("content-type") == "application/json");
}

} // namespace

BOOST_AUTO_TEST_SUITE(bad_input)

BOOST_AUTO_TEST_CASE(every_bad_request_is_refused_and_stores_nothing) {
  daemon_fixture f;
  auto receiver = f.make_receiver();
  std::string reader = "reader-token", producer = "producer-token";
  f.use_admin_token("admin-token");
  f.start({{"ops", daemon_fixture::url_of(*receiver)}}, "",
          token_toml("admin", "admin-token", "admin") +
              token_toml("reader", reader, "read") +
              token_toml("producer", producer, "ingest"));
  auto admin = std::string{"admin-token"};
  auto good = sample_event().dump();

  // Malformed, wrongly typed, incomplete, unknown: 400 with the field named.
  struct bad {
    std::string body, code, field;
  };
  for (
      auto& b : std::vector<bad>{
          {"{\"type\": ", "invalid_json", ""},
          {"[]", "invalid_json", ""},
          {"{\"type\":\"policy.denied\",\"agent_id\":\"a\",\"summary\":"
           "\"\xc3\x28\"}",
           "invalid_utf8", ""},
          {R"({"type":"policy.denied","agent_id":["a"],"summary":"s"})",
           "invalid_field", "agent_id"},
          {R"({"type":"policy.denied","agent_id":"a"})", "missing_field",
           "summary"},
          {R"({"type":"agent.exploded","agent_id":"a","summary":"s"})",
           "invalid_field", "type"},
          {R"({"type":"policy.denied","agent_id":"a","summary":"s","extra":true})",
           "unknown_field", "extra"},
          {R"({"events":[)" + good + R"(,{"type":"policy.denied"}]})",
           "missing_field", "events[1].agent_id"},
      }) {
    auto r = f.post("/v1/events", b.body, admin);
    expect_error(r, 400, b.code, b.body);
    BOOST_TEST(json::parse(r.body)["error"].value("field", "") == b.field,
               b.body);
  }

  // Over the body limit (1 MiB by default): 413, and the daemon keeps serving.
  std::string huge =
      R"({"type":"system.health","summary":"s","details":{"x":")" +
      std::string(1100000, 'x') + "\"}}";
  expect_error(f.post("/v1/events", huge, admin), 413, "payload_too_large",
               "huge");
  // Not JSON by content type: 415.
  expect_error(f.post("/v1/events", good, admin, "text/plain"), 415,
               "unsupported_media_type", "text/plain");
  expect_error(f.post("/v1/events", good, admin, ""), 415,
               "unsupported_media_type", "no content type");
  // Auth: none, wrong, wrong role.
  expect_error(f.post("/v1/events", good, ""), 401, "unauthorized", "no token");
  expect_error(f.post("/v1/events", good, "not-a-token"), 401, "unauthorized",
               "bad token");
  expect_error(f.post("/v1/events", good, reader), 403, "forbidden",
               "read role");
  expect_error(f.get("/v1/dead-letters", producer), 403, "forbidden",
               "ingest reads");
  // A malformed Idempotency-Key header.
  {
    tocsin::test::http_client c{"127.0.0.1", f.api_port()};
    auto r = c.request("POST", "/v1/events", good,
                       {{"authorization", "Bearer admin-token"},
                        {"content-type", "application/json"},
                        {"Idempotency-Key", std::string(300, 'k')}});
    expect_error(r, 400, "invalid_field", "long idempotency key");
  }
  // Unknown paths and methods.
  expect_error(f.get("/v1/nothing", admin), 404, "not_found", "404");
  expect_error(f.call("DELETE", "/v1/events", nullptr, admin), 405,
               "method_not_allowed", "DELETE events");
  expect_error(f.get("/v1/events/evt_../../etc", admin), 404, "not_found",
               "bad id");
  expect_error(f.get("/v1/dead-letters?limit=0", admin), 400, "invalid_field",
               "limit");
  // Malformed HTTP: 400 and the connection closed.
  tocsin::test::http_client raw{"127.0.0.1", f.api_port()};
  auto answer = raw.raw("BLAH / HTTP/1.1\r\nHost x\r\n\r\n");
  BOOST_TEST(answer.rfind("HTTP/1.1 400", 0) == 0, answer);

  // Nothing of the above was accepted: only the good event is delivered.
  BOOST_TEST(f.post("/v1/events", good, producer).status == 202);
  BOOST_REQUIRE(receiver->wait_for(1, std::chrono::seconds{10}));
  std::this_thread::sleep_for(std::chrono::milliseconds{300});
  BOOST_TEST(receiver->count() == 1u);
  auto dead = json::parse(f.get("/v1/dead-letters", reader).body);
  BOOST_TEST(dead["dead_letters"].empty());
  BOOST_TEST(f.get("/healthz").status == 200);
}

// What a producer could forge (issue 24): an audit link of its own, a
// receipt id that climbs out of the audit link's path, text that shows
// other than it reads (control characters, bidi overrides), a
// system.health that passes for tocsin's own. Refused with the field
// named, or made harmless; only the good event is delivered.
BOOST_AUTO_TEST_CASE(producers_cannot_forge_links_text_or_tocsins_own_events) {
  daemon_fixture f;
  auto receiver = f.make_receiver();
  f.start(
      {{"ops", daemon_fixture::url_of(*receiver)}},
      "audit_url_template = \"https://audit.example/receipts/{receipt_id}\"\n");
  auto with = [](json ev, const std::string& key, json value) {
    ev[key] = std::move(value);
    return ev;
  };
  struct bad {
    json body;
    std::string code, field;
  };
  for (auto& b : std::vector<bad>{
           {with(sample_event(), "links",
                 {{"audit", "https://phish.example/login"}}),
            "forbidden_field", "links.audit"},
           {with(sample_event(), "summary",
                 "report \xe2\x80\xae"
                 "fdp.exe"),
            "invalid_field", "summary"},
           {with(sample_event(), "summary", "\x1b[2Jall clear"),
            "invalid_field", "summary"},
           {with(sample_event("agent\xe2\x81\xa6-7"), "summary", "s"),
            "invalid_field", "agent_id"},
           {with(sample_event("agent\t7"), "summary", "s"), "invalid_field",
            "agent_id"},
           {{{"type", "system.health"},
             {"summary", "endpoint ops delivers again"},
             {"details",
              {{"endpoint_id", "ops"},
               {"origin", "tocsin"},
               {"state", "healthy"}}}},
            "reserved_field",
            "details.origin"},
           {with(sample_event(), "details", {{"note", "a\rb"}}),
            "invalid_field", "details.note"},
       }) {
    auto r = f.post("/v1/events", b.body.dump(), f.admin_token());
    expect_error(r, 400, b.code, b.body.dump());
    auto answer = json::parse(r.body, nullptr, false);
    bool named = answer.is_object() && answer.contains("error") &&
                 answer["error"].value("field", "") == b.field;
    BOOST_TEST(named, b.body.dump() << " -> " << r.body);
  }
  // A receipt id is put into the template percent-encoded: the link stays
  // on its receipt. Lines and tabs in a summary are fine.
  auto good = sample_event();
  good["details"]["receipt_id"] = "../../admin/delete?all=1#";
  good["summary"] = "two\nlines\tand a tab";
  auto id = f.post_events(good).at(0);
  BOOST_REQUIRE(receiver->wait_for(1, std::chrono::seconds{10}));
  auto body = json::parse(receiver->requests().at(0).body);
  BOOST_TEST(body["id"] == id);
  BOOST_TEST(body["links"]["audit"] == "https://audit.example/receipts/"
                                       "..%2F..%2Fadmin%2Fdelete%3Fall%3D1%23");
  BOOST_TEST(body["summary"] == "two\nlines\tand a tab");
  f.wait_finished(id);
  BOOST_TEST(receiver->count() == 1u);

  // An operator who trusts the producers lets them set links.audit.
  daemon_fixture trusting;
  auto r2 = trusting.make_receiver();
  trusting.start({{"ops", daemon_fixture::url_of(*r2)}},
                 "allow_producer_links = true\n");
  auto linked = with(sample_event(), "links",
                     {{"audit", "https://audit.example/mine/1"}});
  auto linked_id = trusting.post_events(linked).at(0);
  BOOST_REQUIRE(r2->wait_for(1, std::chrono::seconds{10}));
  auto got = json::parse(r2->requests().at(0).body);
  BOOST_TEST(got["id"] == linked_id);
  BOOST_TEST(got["links"]["audit"] == "https://audit.example/mine/1");
}

BOOST_AUTO_TEST_CASE(slow_clients_are_cut_off_and_others_still_served) {
  daemon_fixture f;
  f.start({}, "request_timeout = 1\n");
  // Headers trickled one byte every 100 ms: the connection is closed after
  // about a second, long before the request is complete.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(f.api_port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  BOOST_REQUIRE(
      ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  std::string request =
      "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + std::string(200, 'a') +
      "\r\n\r\n";
  auto start = std::chrono::steady_clock::now();
  bool cut_off = false;
  for (char c : request) {
    if (::send(fd, &c, 1, MSG_NOSIGNAL) != 1) {
      cut_off = true;
      break;
    }
    // Meanwhile other clients are served.
    std::this_thread::sleep_for(std::chrono::milliseconds{100});
    if (std::chrono::steady_clock::now() - start > std::chrono::seconds{5})
      break;
  }
  ::close(fd);
  BOOST_TEST(cut_off);
  auto took = std::chrono::steady_clock::now() - start;
  BOOST_TEST((took < std::chrono::seconds{4}));
  BOOST_TEST(f.get("/healthz").status == 200);
}

BOOST_AUTO_TEST_CASE(an_unusable_config_stops_the_daemon_with_a_reason) {
  temp_dir dir;
  auto run = [&](const std::string& toml) {
    auto file = dir.path() / "bad.toml";
    std::ofstream{file} << toml;
    daemon_process p{{TOCSIN_BINARY, "serve", "--config", file.string()},
                     dir.path() / "bad.log"};
    auto code = p.wait_exit(std::chrono::seconds{10});
    BOOST_REQUIRE(code);
    return std::make_pair(*code, p.log());
  };
  auto data = "data_dir = \"" + (dir.path() / "data").string() + "\"\n";
  auto [c1, l1] = run("[server]\n" + data + "colour = \"red\"\n");
  BOOST_TEST(c1 != 0);
  BOOST_TEST(l1.find("server.colour") != std::string::npos, l1);
  auto [c2, l2] = run("[server]\n" + data +
                      "[[endpoints]]\nurl = \"http://insecure.example/\"\n"
                      "secret = \"" +
                      std::string{test_secret} + "\"\n");
  BOOST_TEST(c2 != 0);
  BOOST_TEST(l2.find("https://") != std::string::npos, l2);
  // Transports are checked once the plugins are loaded: an unknown one, or
  // options the transport refuses, stop the start with the endpoint named.
  auto endpoint = "[[endpoints]]\nid = \"pd\"\nurl = \"https://x.example/\"\n"
                  "secret = \"" +
                  std::string{test_secret} + "\"\n";
  auto [c5, l5] =
      run("[server]\n" + data + endpoint + "transport = \"carrier-pigeon\"\n");
  BOOST_TEST(c5 != 0);
  BOOST_TEST(l5.find("unknown transport 'carrier-pigeon'") != std::string::npos,
             l5);
  BOOST_TEST(l5.find("pd") != std::string::npos, l5);
  auto [c6, l6] = run("[server]\n" + data + endpoint +
                      "transport = \"pagerduty\"\noptions = { routing_key = "
                      "\"short\" }\n");
  BOOST_TEST(c6 != 0);
  BOOST_TEST(l6.find("routing_key") != std::string::npos, l6);
  // A webhook endpoint without a secret (the webhook signs): refused with
  // the field named; a Slack one needs none.
  auto [c8, l8] = run("[server]\n" + data +
                      "[[endpoints]]\nid = \"hook\"\n"
                      "url = \"https://x.example/\"\n");
  BOOST_TEST(c8 != 0);
  BOOST_TEST(l8.find("hook") != std::string::npos, l8);
  BOOST_TEST(l8.find("secret is required") != std::string::npos, l8);
  // A plugins_dir that does not exist is refused too.
  auto [c7, l7] = run("[server]\n" + data + "plugins_dir = \"" +
                      (dir.path() / "nope").string() + "\"\n");
  BOOST_TEST(c7 != 0);
  BOOST_TEST(l7.find("nope") != std::string::npos, l7);
  // Port in use: taken by a plain listener.
  https_receiver squatter{receiver_options{}};
  auto [c3, l3] = run("[server]\n" + data + "listen = \"127.0.0.1:" +
                      std::to_string(squatter.port()) + "\"\n");
  BOOST_TEST(c3 != 0);
  BOOST_TEST(l3.find("in use") != std::string::npos, l3);
  // Unreadable file.
  daemon_process nofile{{TOCSIN_BINARY, "serve", "--config",
                         (dir.path() / "missing.toml").string()},
                        dir.path() / "bad.log"};
  auto c4 = nofile.wait_exit(std::chrono::seconds{10});
  BOOST_REQUIRE(c4);
  BOOST_TEST(*c4 != 0);
  BOOST_TEST(nofile.log().find("missing.toml") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_second_daemon_on_the_same_store_is_refused) {
  daemon_fixture f;
  f.start({});
  // Same config (same data_dir), another process: the store is locked.
  daemon_process second{
      {TOCSIN_BINARY, "serve", "--config", (f.dir() / "tocsin.toml").string()},
      f.dir() / "second.log"};
  auto code = second.wait_exit(std::chrono::seconds{10});
  BOOST_REQUIRE(code);
  BOOST_TEST(*code != 0);
  BOOST_TEST(second.log().find("locked") != std::string::npos, second.log());
  BOOST_TEST(f.get("/healthz").status == 200); // the first one is unharmed
}

namespace {

/// The log records of `log` whose msg is `msg`.
std::vector<json> records(const std::string& log, const std::string& msg) {
  std::vector<json> out;
  std::istringstream lines{log};
  for (std::string line; std::getline(lines, line);) {
    auto j = json::parse(line, nullptr, false);
    if (j.is_object() && j.value("msg", "") == msg)
      out.push_back(std::move(j));
  }
  return out;
}

/// A loopback port nothing listens on now.
std::uint16_t unused_port() {
  https_receiver r{receiver_options{}};
  auto port = r.port();
  r.stop();
  return port;
}

} // namespace

BOOST_AUTO_TEST_CASE(the_start_says_which_store_and_where) {
  daemon_fixture f;
  f.start({});
  auto opened = records(f.process().log(), "opening the store");
  BOOST_REQUIRE_EQUAL(opened.size(), 1u);
  auto options = f.store_options();
  if (f.backend() == tocsin::storage::backend::rocksdb) {
    BOOST_TEST(opened[0]["backend"] == "rocksdb", opened[0].dump());
    BOOST_TEST(opened[0]["at"] == options.dir, opened[0].dump());
  } else {
    BOOST_TEST(opened[0]["backend"] == "postgres", opened[0].dump());
    BOOST_TEST(opened[0]["at"] == options.postgres_url, opened[0].dump());
  }
}

// A database that cannot be reached stops the start with one line; neither
// that line nor the log shows the password of storage.postgres_url.
BOOST_AUTO_TEST_CASE(
    an_unreachable_database_stops_the_daemon_without_its_password) {
  temp_dir dir;
  auto url = "postgresql://tocsin:hunter2-pw@127.0.0.1:" +
             std::to_string(unused_port()) + "/tocsin";
  auto file = dir.path() / "pg.toml";
  std::ofstream{file} << "[server]\ndata_dir = \""
                      << (dir.path() / "data").string()
                      << "\"\n[storage]\nbackend = \"postgres\"\n"
                         "postgres_url = \""
                      << url << "\"\n";
  daemon_process p{{TOCSIN_BINARY, "serve", "--config", file.string()},
                   dir.path() / "pg.log"};
  auto code = p.wait_exit(std::chrono::seconds{30});
  BOOST_REQUIRE(code);
  BOOST_TEST(*code != 0);
  auto log = p.log();
  BOOST_TEST(!contains(log, "hunter2"), log);
  BOOST_TEST(count_of(log, "tocsin: store: ") == 1u, log);
  auto opened = records(log, "opening the store");
  BOOST_REQUIRE_EQUAL(opened.size(), 1u);
  BOOST_TEST(opened[0]["backend"] == "postgres");
  BOOST_TEST(opened[0]["at"] == "postgresql://tocsin:***@127.0.0.1:" +
                                    url.substr(url.rfind(':') + 1),
             opened[0].dump());
}

BOOST_AUTO_TEST_SUITE_END()
