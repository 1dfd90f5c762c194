#include "net/https_client.hpp"

#include "tests/support/https_receiver.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/test_ca.hpp"

#include <boost/test/unit_test.hpp>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <map>
#include <mutex>

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

  /// A receiver that selects h2 by ALPN when the client offers it.
  std::unique_ptr<https_receiver> make_h2_receiver(responder r = {},
                                                   std::uint32_t streams = 100,
                                                   std::string secret = {}) {
    receiver_options opts{cert.cert_file, cert.key_file, std::move(secret)};
    opts.http2 = true;
    opts.max_concurrent_streams = streams;
    return std::make_unique<https_receiver>(opts, std::move(r));
  }
};

/// Answers of many requests sent at once: each completion counted, so that
/// one that ran twice shows.
struct answers {
  explicit answers(std::size_t n) : got(n), calls(n) {}

  https_client::completion slot(std::size_t i) {
    return [this, i](inbound_response r) {
      std::lock_guard lock{mtx};
      ++calls[i];
      got[i] = std::move(r);
      ++done;
      cv.notify_all();
    };
  }

  bool wait(std::chrono::seconds timeout = std::chrono::seconds{30}) {
    std::unique_lock lock{mtx};
    return cv.wait_for(lock, timeout, [&] { return done >= got.size(); });
  }

  std::mutex mtx;
  std::condition_variable cv;
  std::vector<inbound_response> got;
  std::vector<int> calls;
  std::size_t done = 0;
};

outbound_request
request_to(const std::string& url, std::string body = "{}",
           std::chrono::milliseconds timeout = std::chrono::seconds{10}) {
  outbound_request req;
  req.target = *parse_url(url);
  req.body = std::move(body);
  req.headers = {{"content-type", "application/json"}};
  req.timeout = timeout;
  return req;
}

/// Standard Webhooks headers for `body` under the whsec_ `secret`.
std::vector<std::pair<std::string, std::string>>
signed_headers(const std::string& secret, const std::string& body) {
  auto b64 = secret.substr(6);
  std::string key(b64.size(), '\0');
  auto n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(key.data()),
                           reinterpret_cast<const unsigned char*>(b64.data()),
                           static_cast<int>(b64.size()));
  key.resize(static_cast<std::size_t>(n) - (b64.ends_with("==")  ? 2
                                            : b64.ends_with("=") ? 1
                                                                 : 0));
  std::string content = "msg_1.1700000000." + body;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned mac_len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(content.data()), content.size(),
       mac, &mac_len);
  std::string sig(4 * ((mac_len + 2) / 3), '\0');
  EVP_EncodeBlock(reinterpret_cast<unsigned char*>(sig.data()), mac,
                  static_cast<int>(mac_len));
  return {{"content-type", "application/json"},
          {"Webhook-Id", "msg_1"},
          {"Webhook-Timestamp", "1700000000"},
          {"Webhook-Signature", "v1," + sig}};
}

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

BOOST_AUTO_TEST_CASE(h1_answers_say_so_and_which_paid_a_handshake) {
  auto receiver = make_receiver();
  auto client = make_client();
  auto first = send_sync(*client, url_of(*receiver));
  auto second = send_sync(*client, url_of(*receiver));
  BOOST_TEST(first.protocol == "http/1.1");
  BOOST_TEST(first.new_connection);
  BOOST_TEST(second.protocol == "http/1.1");
  BOOST_TEST(!second.new_connection);
  BOOST_TEST(receiver->requests().at(0).protocol == "http/1.1");
}

BOOST_AUTO_TEST_SUITE_END()

// HTTP/2 (RFC 9113) to receivers that select it by ALPN.
BOOST_FIXTURE_TEST_SUITE(https_client_h2, client_fixture)

BOOST_AUTO_TEST_CASE(a_request_goes_over_h2_signed_with_its_body) {
  const std::string secret = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3";
  auto receiver = make_h2_receiver(
      [](const received_request&, std::size_t) {
        canned_response r;
        r.status = 429;
        r.body = std::string(3000, 'z');
        r.headers = {{"Retry-After", "7"}};
        return r;
      },
      100, secret);
  auto client = make_client();
  auto req = request_to(url_of(*receiver), R"({"event":"fired"})");
  req.headers = signed_headers(secret, req.body);
  std::promise<inbound_response> p;
  client->send(std::move(req),
               [&](inbound_response r) { p.set_value(std::move(r)); });
  auto r = p.get_future().get();
  BOOST_TEST(r.error.empty(), r.error);
  BOOST_TEST(r.protocol == "h2");
  BOOST_TEST(r.new_connection);
  BOOST_TEST(r.status == 429);
  BOOST_TEST(r.retry_after == "7");
  BOOST_TEST(r.body_prefix == std::string(1024, 'z')); // the first KiB
  auto got = receiver->requests().at(0);
  BOOST_TEST(got.protocol == "h2");
  BOOST_TEST(got.method == "POST");
  BOOST_TEST(got.target == "/in");
  BOOST_TEST(got.body == R"({"event":"fired"})");
  BOOST_TEST(got.headers["host"] ==
             "127.0.0.1:" + std::to_string(receiver->port()));
  BOOST_TEST(got.headers["content-type"] == "application/json");
  BOOST_TEST(got.headers["user-agent"].starts_with("tocsin/"));
  BOOST_TEST(got.signature_valid);
  // The next one reuses the connection.
  auto again = send_sync(*client, url_of(*receiver));
  BOOST_TEST(again.protocol == "h2");
  BOOST_TEST(!again.new_connection);
  BOOST_TEST(receiver->connections() == 1u);
}

BOOST_AUTO_TEST_CASE(streams_share_one_connection_up_to_the_server_limit) {
  // One connection allowed, ten streams on it: 25 requests at once, held
  // long enough that ten are open together, the rest wait for room.
  auto receiver = make_h2_receiver(
      [](const received_request&, std::size_t) {
        canned_response r;
        r.delay = std::chrono::milliseconds{300};
        return r;
      },
      10);
  auto client = make_client(1);
  constexpr std::size_t n = 25;
  answers a{n};
  for (std::size_t i = 0; i < n; ++i)
    client->send(request_to(url_of(*receiver)), a.slot(i));
  BOOST_TEST_REQUIRE(a.wait());
  for (std::size_t i = 0; i < n; ++i) {
    BOOST_TEST(a.got[i].status == 200, a.got[i].error);
    BOOST_TEST(a.got[i].protocol == "h2");
  }
  BOOST_TEST(receiver->connections() == 1u);
  BOOST_TEST(receiver->max_open_streams() == 10u);
  BOOST_TEST(receiver->count() == n);
}

BOOST_AUTO_TEST_CASE(a_burst_to_a_new_origin_opens_one_connection) {
  // A hundred requests at once to an origin not seen yet: they wait for the
  // first connection's handshake rather than each opening its own.
  auto receiver = make_h2_receiver([](const received_request&, std::size_t) {
    canned_response r;
    r.delay = std::chrono::milliseconds{100};
    return r;
  });
  auto client = make_client();
  constexpr std::size_t n = 100;
  answers a{n};
  for (std::size_t i = 0; i < n; ++i)
    client->send(request_to(url_of(*receiver)), a.slot(i));
  BOOST_TEST_REQUIRE(a.wait());
  for (auto& r : a.got)
    BOOST_TEST(r.status == 200, r.error);
  BOOST_TEST(receiver->connections() == 1u);
}

BOOST_AUTO_TEST_CASE(a_full_connection_gets_a_second_one) {
  // Ten streams per connection, 25 requests held at once: three
  // connections (10 + 10 + 5), not one per request.
  auto receiver = make_h2_receiver(
      [](const received_request&, std::size_t) {
        canned_response r;
        r.delay = std::chrono::milliseconds{500};
        return r;
      },
      10);
  auto client = make_client();
  constexpr std::size_t n = 25;
  answers a{n};
  for (std::size_t i = 0; i < n; ++i)
    client->send(request_to(url_of(*receiver)), a.slot(i));
  BOOST_TEST_REQUIRE(a.wait());
  for (auto& r : a.got)
    BOOST_TEST(r.status == 200, r.error);
  BOOST_TEST(receiver->connections() == 3u);
  BOOST_TEST(receiver->max_open_streams() == 10u);
}

BOOST_AUTO_TEST_CASE(a_receiver_without_h2_is_spoken_to_in_http11) {
  auto receiver = make_receiver();
  auto client = make_client();
  auto r = send_sync(*client, url_of(*receiver));
  BOOST_TEST(r.status == 200, r.error);
  BOOST_TEST(r.protocol == "http/1.1");
}

BOOST_AUTO_TEST_CASE(a_request_not_allowed_h2_never_rides_an_h2_connection) {
  auto receiver = make_h2_receiver();
  auto client = make_client();
  auto h2 = send_sync(*client, url_of(*receiver));
  BOOST_TEST(h2.protocol == "h2");
  for (int i = 0; i < 3; ++i) {
    auto req = request_to(url_of(*receiver));
    req.http2 = false;
    std::promise<inbound_response> p;
    client->send(std::move(req),
                 [&](inbound_response r) { p.set_value(std::move(r)); });
    auto r = p.get_future().get();
    BOOST_TEST(r.status == 200, r.error);
    BOOST_TEST(r.protocol == "http/1.1");
  }
  auto got = receiver->requests();
  BOOST_TEST_REQUIRE(got.size() == 4u);
  BOOST_TEST(got[0].protocol == "h2");
  for (std::size_t i = 1; i < 4; ++i)
    BOOST_TEST(got[i].protocol == "http/1.1");
  // The h2 connection and one kept-alive HTTP/1.1 connection.
  BOOST_TEST(receiver->connections() == 2u);
}

BOOST_AUTO_TEST_CASE(goaway_mid_load_loses_and_doubles_nothing) {
  // 200 requests at once; at the 50th the receiver sends GOAWAY: the
  // streams it refused are sent again on a new connection, every request is
  // answered once, and the receiver processed each body once.
  auto receiver =
      make_h2_receiver([](const received_request&, std::size_t index) {
        canned_response r;
        r.goaway = index == 50;
        r.delay = std::chrono::milliseconds{20};
        return r;
      });
  auto client = make_client();
  constexpr std::size_t n = 200;
  answers a{n};
  for (std::size_t i = 0; i < n; ++i)
    client->send(
        request_to(url_of(*receiver), "{\"n\":" + std::to_string(i) + "}"),
        a.slot(i));
  BOOST_TEST_REQUIRE(a.wait());
  for (std::size_t i = 0; i < n; ++i) {
    BOOST_TEST(a.calls[i] == 1, "request " << i);
    BOOST_TEST(a.got[i].status == 200,
               "request " << i << ": " << a.got[i].error);
  }
  std::map<std::string, int> seen;
  for (auto& req : receiver->requests())
    ++seen[req.body];
  BOOST_TEST(seen.size() == n);
  for (auto& [body, times] : seen)
    BOOST_TEST(times == 1, body);
  BOOST_TEST(receiver->refused() >= 1u);
  BOOST_TEST(receiver->connections() >= 2u);
}

BOOST_AUTO_TEST_CASE(a_refused_stream_is_sent_again_once) {
  auto receiver =
      make_h2_receiver([](const received_request&, std::size_t index) {
        canned_response r;
        r.refuse_stream = index == 0;
        return r;
      });
  auto client = make_client();
  auto r = send_sync(*client, url_of(*receiver));
  BOOST_TEST(r.status == 200, r.error);
  BOOST_TEST(r.protocol == "h2");
  BOOST_TEST(receiver->refused() == 1u);
  BOOST_TEST(receiver->count() == 1u);
}

BOOST_AUTO_TEST_CASE(a_stream_refused_twice_is_a_connection_error) {
  auto receiver = make_h2_receiver([](const received_request&, std::size_t) {
    canned_response r;
    r.refuse_stream = true;
    return r;
  });
  auto client = make_client();
  auto r = send_sync(*client, url_of(*receiver));
  BOOST_TEST(r.status == 0);
  BOOST_TEST(r.error.find("refused") != std::string::npos, r.error);
  BOOST_TEST(receiver->refused() == 2u); // sent twice, not more
  BOOST_TEST(receiver->count() == 0u);
}

BOOST_AUTO_TEST_CASE(a_connection_lost_mid_stream_fails_once_unretried) {
  // The receiver read the request (it may have acted on it) and dropped
  // the connection: the attempt fails once, and is not sent again.
  auto receiver =
      make_h2_receiver([](const received_request&, std::size_t index) {
        canned_response r;
        r.drop_connection = index == 0;
        return r;
      });
  auto client = make_client();
  std::atomic<int> calls{0};
  std::promise<inbound_response> p;
  client->send(request_to(url_of(*receiver)), [&](inbound_response r) {
    if (calls++ == 0)
      p.set_value(std::move(r));
  });
  auto r = p.get_future().get();
  BOOST_TEST(r.status == 0);
  BOOST_TEST(!r.error.empty());
  BOOST_TEST(r.protocol == "h2");
  // A later request goes over a new connection, and by the time it is
  // answered a retry of the first would have arrived before it.
  auto next = send_sync(*client, url_of(*receiver));
  BOOST_TEST(next.status == 200, next.error);
  BOOST_TEST(calls == 1);
  BOOST_TEST(receiver->count() == 2u);
  BOOST_TEST(receiver->connections() == 2u);
}

BOOST_AUTO_TEST_CASE(a_timed_out_stream_leaves_its_siblings_alone) {
  auto receiver =
      make_h2_receiver([](const received_request& req, std::size_t) {
        canned_response r;
        if (req.body == "slow")
          r.delay = std::chrono::milliseconds{5000};
        else
          r.delay = std::chrono::milliseconds{100};
        return r;
      });
  auto client = make_client();
  answers a{6};
  client->send(
      request_to(url_of(*receiver), "slow", std::chrono::milliseconds{300}),
      a.slot(0));
  for (std::size_t i = 1; i < 6; ++i)
    client->send(request_to(url_of(*receiver), "fast"), a.slot(i));
  BOOST_TEST_REQUIRE(a.wait());
  BOOST_TEST(a.got[0].status == 0);
  BOOST_TEST(a.got[0].error.find("timed out") != std::string::npos,
             a.got[0].error);
  for (std::size_t i = 1; i < 6; ++i)
    BOOST_TEST(a.got[i].status == 200, a.got[i].error);
  // The connection is still the one for the next requests.
  auto after = send_sync(*client, url_of(*receiver, "127.0.0.1"));
  BOOST_TEST(after.status == 200, after.error);
  BOOST_TEST(!after.new_connection);
  BOOST_TEST(receiver->connections() == 1u);
  BOOST_TEST(receiver->client_resets() == 1u); // the slow one, cancelled
}

BOOST_AUTO_TEST_CASE(a_huge_body_ends_its_stream_not_the_connection) {
  auto receiver =
      make_h2_receiver([](const received_request&, std::size_t index) {
        canned_response r;
        r.status = 201;
        r.body = "head-";
        if (index == 0)
          // Past the drain bound (64 KiB), small enough to be read in full
          // well within the deadline by a client that did not stop.
          r.stream_bytes = std::size_t{1} << 20;
        return r;
      });
  auto client = make_client();
  auto huge = send_sync(*client, url_of(*receiver));
  BOOST_TEST(huge.status == 201, huge.error);
  BOOST_TEST(huge.body_prefix.starts_with("head-xxx"));
  BOOST_TEST(huge.body_prefix.size() == 1024u);
  auto next = send_sync(*client, url_of(*receiver));
  BOOST_TEST(next.status == 201, next.error);
  BOOST_TEST(next.body_prefix == "head-");
  BOOST_TEST(!next.new_connection);
  BOOST_TEST(receiver->connections() == 1u);
  BOOST_TEST(receiver->client_resets() == 1u); // the huge one, not read
}

BOOST_AUTO_TEST_CASE(the_address_policy_still_applies) {
  auto receiver = make_h2_receiver();
  https_client_options opts;
  opts.ca_file = ca.ca_file(); // default policy: global unicast only
  auto client = make_https_client(opts);
  BOOST_REQUIRE(client);
  auto r = send_sync(**client, url_of(*receiver));
  BOOST_TEST(r.forbidden);
  BOOST_TEST(r.status == 0);
  BOOST_TEST(receiver->connections() == 0u);
}

BOOST_AUTO_TEST_SUITE_END()
