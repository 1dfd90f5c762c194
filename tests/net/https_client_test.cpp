#include "net/https_client.hpp"

#include "tests/support/https_receiver.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/test_ca.hpp"

#include <boost/test/unit_test.hpp>

#include <future>

using namespace tocsin;
using namespace tocsin::net;
using namespace tocsin::test;

namespace {

struct client_fixture {
  temp_dir dir;
  test_ca ca{dir.path()};
  pem_files cert = ca.issue("receiver", {"localhost"}, {"127.0.0.1"});

  std::unique_ptr<https_client> make_client(std::size_t max_open = 128) {
    https_client_options opts;
    opts.max_open_per_origin = max_open;
    opts.ca_file = ca.ca_file();
    opts.addresses = *address_policy::from_cidrs({"127.0.0.0/8", "::1/128"});
    auto c = make_https_client(opts);
    BOOST_REQUIRE(c);
    return std::move(*c);
  }

  std::unique_ptr<https_receiver> make_receiver(responder r = {}) {
    return std::make_unique<https_receiver>(
        receiver_options{cert.cert_file, cert.key_file}, std::move(r));
  }
};

inbound_response
send_sync(https_client& c, const std::string& url,
          std::chrono::milliseconds timeout = std::chrono::seconds{5}) {
  outbound_request req;
  req.target = *parse_url(url);
  req.body = "{}";
  req.headers = {{"content-type", "application/json"}};
  req.timeout = timeout;
  std::promise<inbound_response> p;
  c.send(std::move(req),
         [&](inbound_response r) { p.set_value(std::move(r)); });
  return p.get_future().get();
}

std::string url_of(const https_receiver& r,
                   const std::string& host = "127.0.0.1") {
  return "https://" + host + ":" + std::to_string(r.port()) + "/in";
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(https_client, client_fixture)

BOOST_AUTO_TEST_CASE(posts_and_reports_status_body_and_retry_after) {
  auto receiver = make_receiver([](const received_request&, std::size_t) {
    canned_response r;
    r.status = 429;
    r.body = std::string(3000, 'z');
    r.headers = {{"Retry-After", "7"}};
    return r;
  });
  auto client = make_client();
  auto r = send_sync(*client, url_of(*receiver));
  BOOST_TEST(r.error.empty(), r.error);
  BOOST_TEST(r.status == 429);
  BOOST_TEST(r.retry_after == "7");
  BOOST_TEST(r.body_prefix.size() == 1024u); // first 1 KiB only
  BOOST_TEST(r.latency_ms > 0);
  auto req = receiver->requests().at(0);
  BOOST_TEST(req.method == "POST");
  BOOST_TEST(req.target == "/in");
  BOOST_TEST(req.body == "{}");
  BOOST_TEST(req.headers["host"] ==
             "127.0.0.1:" + std::to_string(receiver->port()));
}

BOOST_AUTO_TEST_CASE(many_requests_over_kept_alive_connections) {
  auto receiver = make_receiver();
  auto client = make_client();
  for (int i = 0; i < 50; ++i)
    BOOST_REQUIRE(send_sync(*client, url_of(*receiver, "localhost")).status ==
                  200);
  BOOST_TEST(receiver->count() == 50u);
}

BOOST_AUTO_TEST_CASE(connections_per_origin_are_capped_and_requests_wait) {
  // Each answer takes 200 ms; with two connections, six requests take three
  // rounds (a client opening one connection per request would take one).
  auto receiver = make_receiver([](const received_request&, std::size_t) {
    canned_response r;
    r.delay = std::chrono::milliseconds{200};
    return r;
  });
  auto client = make_client(2);
  std::vector<std::future<inbound_response>> answers;
  std::vector<std::promise<inbound_response>> promises(6);
  auto start = std::chrono::steady_clock::now();
  for (auto& p : promises) {
    outbound_request req;
    req.target = *parse_url(url_of(*receiver));
    req.body = "{}";
    req.timeout = std::chrono::seconds{10};
    answers.push_back(p.get_future());
    client->send(std::move(req),
                 [&p](inbound_response r) { p.set_value(std::move(r)); });
  }
  for (auto& a : answers) {
    auto r = a.get();
    BOOST_TEST(r.error.empty(), r.error);
    BOOST_TEST(r.status == 200);
  }
  auto took = std::chrono::steady_clock::now() - start;
  BOOST_TEST(took >= std::chrono::milliseconds{580},
             std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                 << " ms");
  BOOST_TEST(receiver->count() == 6u);
}

// As many requests at once as connections may be open, twice: the second
// round reuses every connection of the first (a pool that kept fewer idle
// than it may open would close the rest after each answer, and open them
// again with a TLS handshake for every request).
BOOST_AUTO_TEST_CASE(every_open_connection_is_kept_for_the_next_request) {
  auto receiver = make_receiver([](const received_request&, std::size_t) {
    canned_response r;
    r.delay = std::chrono::milliseconds{100}; // all at once, each its own
    return r;
  });
  constexpr std::size_t at_once = 80;
  auto client = make_client(at_once);
  for (int round = 1; round <= 2; ++round) {
    std::vector<std::promise<inbound_response>> promises(at_once);
    for (auto& p : promises) {
      outbound_request req;
      req.target = *parse_url(url_of(*receiver));
      req.body = "{}";
      req.timeout = std::chrono::seconds{10};
      client->send(std::move(req),
                   [&p](inbound_response r) { p.set_value(std::move(r)); });
    }
    for (auto& p : promises)
      BOOST_TEST_REQUIRE(p.get_future().get().status == 200);
  }
  BOOST_TEST(receiver->count() == 2 * at_once);
  BOOST_TEST(receiver->connections() == at_once);
}

BOOST_AUTO_TEST_CASE(a_batch_goes_out_at_once_and_each_request_is_answered) {
  // send_all hands a whole batch to the I/O thread: each request gets its
  // own answer, once, and a refused one (plain http) is answered alone.
  auto receiver = make_receiver([](const received_request& req, std::size_t) {
    canned_response r;
    r.status = req.body == "{\"n\":3}" ? 503 : 200;
    return r;
  });
  auto client = make_client();
  constexpr int n = 6;
  std::vector<std::promise<inbound_response>> promises(n);
  std::vector<std::pair<outbound_request, net::https_client::completion>> batch;
  for (int i = 0; i < n; ++i) {
    outbound_request req;
    req.target =
        *parse_url(i == 4 ? "http://127.0.0.1:1/in" : url_of(*receiver));
    req.body = "{\"n\":" + std::to_string(i) + "}";
    req.timeout = std::chrono::seconds{5};
    batch.emplace_back(std::move(req), [&promises, i](inbound_response r) {
      promises[static_cast<std::size_t>(i)].set_value(std::move(r));
    });
  }
  client->send_all(std::move(batch));
  for (int i = 0; i < n; ++i) {
    auto r = promises[static_cast<std::size_t>(i)].get_future().get();
    if (i == 4) {
      BOOST_TEST(r.status == 0);
      BOOST_TEST(r.error.find("non-https") != std::string::npos, r.error);
    } else {
      BOOST_TEST(r.status == (i == 3 ? 503 : 200), "request " << i);
    }
  }
  BOOST_TEST(receiver->count() == static_cast<std::size_t>(n - 1));
}

BOOST_AUTO_TEST_CASE(recovers_when_the_server_closed_a_kept_alive_connection) {
  auto receiver = make_receiver([](const received_request&, std::size_t) {
    canned_response r;
    r.close_connection = true; // every answer closes: the pooled one is stale
    return r;
  });
  auto client = make_client();
  for (int i = 0; i < 5; ++i) {
    auto r = send_sync(*client, url_of(*receiver));
    BOOST_TEST(r.status == 200, r.error);
  }
}

BOOST_AUTO_TEST_CASE(times_out_a_slow_server) {
  auto receiver = make_receiver([](const received_request&, std::size_t) {
    canned_response r;
    r.delay = std::chrono::milliseconds{3000};
    return r;
  });
  auto client = make_client();
  auto start = std::chrono::steady_clock::now();
  auto r =
      send_sync(*client, url_of(*receiver), std::chrono::milliseconds{300});
  auto took = std::chrono::steady_clock::now() - start;
  BOOST_TEST(r.status == 0);
  BOOST_TEST(r.error.find("timed out") != std::string::npos, r.error);
  BOOST_TEST(took < std::chrono::milliseconds{2000});
}

BOOST_AUTO_TEST_CASE(refuses_untrusted_and_mismatched_certificates) {
  auto rogue_cert =
      test_ca::self_signed(dir.path(), "rogue", {"localhost"}, {"127.0.0.1"});
  https_receiver rogue{{rogue_cert.cert_file, rogue_cert.key_file}};
  auto client = make_client();
  auto r = send_sync(*client, url_of(rogue));
  BOOST_TEST(r.status == 0);
  BOOST_TEST(r.error.find("handshake") != std::string::npos, r.error);

  auto other_cert = ca.issue("other", {"other.example"}, {"10.1.2.3"});
  https_receiver other{{other_cert.cert_file, other_cert.key_file}};
  BOOST_TEST(send_sync(*client, url_of(other, "localhost")).status == 0);
  BOOST_TEST(send_sync(*client, url_of(other, "127.0.0.1")).status == 0);
  BOOST_TEST(rogue.count() + other.count() == 0u);
}

BOOST_AUTO_TEST_CASE(refuses_plain_http_and_reports_connection_errors) {
  auto client = make_client();
  auto r = send_sync(*client, "http://127.0.0.1:1/in");
  BOOST_TEST(r.status == 0);
  BOOST_TEST(r.error.find("non-https") != std::string::npos, r.error);
  auto receiver = make_receiver();
  auto port = receiver->port();
  receiver->stop();
  auto refused =
      send_sync(*client, "https://127.0.0.1:" + std::to_string(port) + "/");
  BOOST_TEST(refused.status == 0);
  BOOST_TEST(refused.error.find("connect") != std::string::npos, refused.error);
}

BOOST_AUTO_TEST_CASE(refuses_addresses_outside_the_policy_before_connecting) {
  auto receiver = make_receiver();
  https_client_options opts;
  opts.ca_file = ca.ca_file(); // default policy: global unicast only
  auto client = make_https_client(opts);
  BOOST_REQUIRE(client);
  for (auto host : {"127.0.0.1", "localhost"}) {
    auto r = send_sync(**client, url_of(*receiver, host));
    BOOST_TEST(r.forbidden, host);
    BOOST_TEST(r.status == 0);
    BOOST_TEST(r.error.find("loopback") != std::string::npos, r.error);
  }
  BOOST_TEST(receiver->count() == 0u);
}

BOOST_AUTO_TEST_SUITE_END()
