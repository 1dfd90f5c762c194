// The client's HTTP/2 session on bytes alone: server frames built by hand
// (HPACK's static table and literals), what the session writes parsed back.
#include "net/h2_session.hpp"

#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

using namespace tocsin;
using namespace tocsin::net;

namespace {

enum frame_type : std::uint8_t {
  data = 0,
  headers = 1,
  rst_stream = 3,
  settings = 4,
  goaway = 7,
};
constexpr std::uint8_t end_stream = 0x1;
constexpr std::uint8_t end_headers = 0x4;

std::string be32(std::uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16),
          static_cast<char>(v >> 8), static_cast<char>(v)};
}

std::string frame(std::uint8_t type, std::uint8_t flags, std::uint32_t stream,
                  const std::string& payload = {}) {
  auto len = be32(static_cast<std::uint32_t>(payload.size())).substr(1);
  return len + static_cast<char>(type) + static_cast<char>(flags) +
         be32(stream) + payload;
}

/// A literal header field, not indexed (names and values under 127 bytes).
std::string literal(const std::string& name, const std::string& value) {
  return std::string(1, '\0') + static_cast<char>(name.size()) + name +
         static_cast<char>(value.size()) + value;
}

const std::string status_200 = "\x88"; // HPACK static table, index 8
const std::string status_404 = "\x8d"; // index 13

struct written_frame {
  std::uint8_t type;
  std::uint8_t flags;
  std::uint32_t stream;
  std::string payload;
};

/// The frames in what the session wrote (after the client preface).
std::vector<written_frame> frames_of(std::string out) {
  const std::string preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  if (out.starts_with(preface))
    out.erase(0, preface.size());
  std::vector<written_frame> frames;
  auto byte = [&](std::size_t i) {
    return static_cast<std::uint32_t>(static_cast<unsigned char>(out[i]));
  };
  while (out.size() >= 9) {
    auto len = byte(0) << 16 | byte(1) << 8 | byte(2);
    written_frame f{
        static_cast<std::uint8_t>(byte(3)), static_cast<std::uint8_t>(byte(4)),
        (byte(5) << 24 | byte(6) << 16 | byte(7) << 8 | byte(8)) & 0x7fffffff,
        out.substr(9, len)};
    frames.push_back(std::move(f));
    out.erase(0, 9 + len);
  }
  return frames;
}

struct session_fixture {
  std::unique_ptr<h2_session> session = std::make_unique<h2_session>();

  h2_session& s() { return *session; }
  void with_limits(const response_limits& limits) {
    session = std::make_unique<h2_session>(limits);
  }

  std::int32_t open(std::string body = "{}") {
    outbound_request req;
    req.target = *parse_url("https://receiver.example/in");
    req.body = std::move(body);
    return s().submit(req, "tocsin/test");
  }

  std::vector<written_frame> written() {
    std::string out;
    for (std::size_t before = 1; before != out.size();) {
      before = out.size();
      s().output(out);
    }
    return frames_of(out);
  }

  void server(const std::string& bytes) { BOOST_REQUIRE(s().receive(bytes)); }

  /// The server's SETTINGS (empty, or MAX_CONCURRENT_STREAMS = n).
  void server_settings(int max_streams = -1) {
    std::string payload;
    if (max_streams >= 0)
      payload = std::string("\x00\x03", 2) +
                be32(static_cast<std::uint32_t>(max_streams));
    server(frame(settings, 0, 0, payload));
  }

  std::vector<std::pair<std::int32_t, h2_result>> results() {
    return s().take_results();
  }
};

bool has_rst(const std::vector<written_frame>& frames, std::uint32_t stream,
             std::uint32_t code) {
  for (auto& f : frames)
    if (f.type == rst_stream && f.stream == stream && f.payload == be32(code))
      return true;
  return false;
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(h2_session_suite, session_fixture)

BOOST_AUTO_TEST_CASE(a_request_goes_out_and_its_answer_comes_back_once) {
  auto id = open("{\"a\":1}");
  BOOST_TEST(id == 1);
  auto out = written();
  bool headers_sent = false, body_sent = false;
  for (auto& f : out) {
    headers_sent |= f.type == headers && f.stream == 1;
    body_sent |= f.type == data && f.stream == 1 && f.payload == "{\"a\":1}" &&
                 (f.flags & end_stream);
  }
  BOOST_TEST(headers_sent);
  BOOST_TEST(body_sent);
  server_settings();
  server(frame(headers, end_headers, 1,
               status_200 + literal("retry-after", "30")));
  BOOST_TEST(results().empty()); // the body is still to come
  server(frame(data, 0, 1, "hello ") + frame(data, end_stream, 1, "world"));
  auto r = results();
  BOOST_TEST_REQUIRE(r.size() == 1u);
  BOOST_TEST(r[0].first == 1);
  BOOST_TEST((r[0].second.kind == h2_result::outcome::answered));
  BOOST_TEST(r[0].second.status == 200);
  BOOST_TEST(r[0].second.body_prefix == "hello world");
  BOOST_TEST(r[0].second.retry_after == "30");
  s().lost("read: end of stream");
  BOOST_TEST(results().empty()); // it had ended already
}

BOOST_AUTO_TEST_CASE(the_server_limit_counts_once_its_settings_came) {
  BOOST_TEST(s().max_streams() == 1u);
  server_settings(10);
  BOOST_TEST(s().max_streams() == 10u);
  server_settings(1000000);
  BOOST_TEST(s().max_streams() == h2_session::max_streams_cap);
  open();
  open();
  BOOST_TEST(s().open_streams() == 2u);
}

BOOST_AUTO_TEST_CASE(goaway_refuses_the_streams_above_its_last_one) {
  server_settings();
  open(); // 1
  open(); // 3
  open(); // 5
  written();
  server(frame(goaway, 0, 0, be32(1) + be32(0)));
  BOOST_TEST(!s().accepting());
  BOOST_TEST(open() == 0); // no new stream
  auto refused = results();
  BOOST_TEST_REQUIRE(refused.size() == 2u);
  for (auto& [id, r] : refused) {
    BOOST_TEST((id == 3 || id == 5));
    BOOST_TEST((r.kind == h2_result::outcome::refused));
  }
  // Stream 1 was let through: it finishes.
  server(frame(headers, end_headers | end_stream, 1, status_404));
  auto r = results();
  BOOST_TEST_REQUIRE(r.size() == 1u);
  BOOST_TEST(r[0].second.status == 404);
  written();
  BOOST_TEST(!s().alive()); // nothing left to do on it
}

BOOST_AUTO_TEST_CASE(refused_streams_may_be_sent_again_other_resets_not) {
  server_settings();
  open(); // 1
  open(); // 3
  written();
  server(frame(rst_stream, 0, 1, be32(7))); // REFUSED_STREAM
  server(frame(rst_stream, 0, 3, be32(2))); // INTERNAL_ERROR
  auto r = results();
  BOOST_TEST_REQUIRE(r.size() == 2u);
  for (auto& [id, res] : r) {
    if (id == 1) {
      BOOST_TEST((res.kind == h2_result::outcome::refused));
    } else {
      BOOST_TEST((res.kind == h2_result::outcome::failed));
      BOOST_TEST(res.error.find("stream reset") != std::string::npos,
                 res.error);
    }
  }
  BOOST_TEST(s().accepting()); // the connection goes on
}

BOOST_AUTO_TEST_CASE(a_body_past_the_drain_bound_resets_its_stream_alone) {
  with_limits({8 * 1024, 16, 100});
  server_settings();
  open(); // 1
  open(); // 3
  written();
  server(frame(headers, end_headers, 1, status_200));
  server(frame(data, 0, 1, std::string(60, 'a')));
  BOOST_TEST(results().empty());
  server(frame(data, 0, 1, std::string(60, 'b'))); // 120 > 100
  auto r = results();
  BOOST_TEST_REQUIRE(r.size() == 1u);
  BOOST_TEST((r[0].second.kind == h2_result::outcome::answered));
  BOOST_TEST(r[0].second.status == 200);
  BOOST_TEST(r[0].second.body_prefix == std::string(16, 'a'));
  BOOST_TEST(has_rst(written(), 1, 8)); // CANCEL
  // More of it is ignored; the other stream is answered on.
  server(frame(data, end_stream, 1, std::string(60, 'c')));
  server(frame(headers, end_headers | end_stream, 3, status_200));
  r = results();
  BOOST_TEST_REQUIRE(r.size() == 1u);
  BOOST_TEST(r[0].first == 3);
  BOOST_TEST(s().accepting());
}

BOOST_AUTO_TEST_CASE(a_declared_length_past_the_drain_bound_is_not_read) {
  with_limits({8 * 1024, 16, 100});
  server_settings();
  open();
  written();
  server(frame(headers, end_headers, 1,
               status_200 + literal("content-length", "5000")));
  auto r = results();
  BOOST_TEST_REQUIRE(r.size() == 1u);
  BOOST_TEST(r[0].second.status == 200);
  BOOST_TEST(has_rst(written(), 1, 8));
}

BOOST_AUTO_TEST_CASE(headers_past_the_bound_end_the_stream) {
  with_limits({100, 16, 100});
  server_settings();
  open(); // 1
  open(); // 3
  written();
  // The status came first: it stands.
  server(frame(headers, end_headers, 1,
               status_200 + literal("x-big", std::string(100, 'h'))));
  // No status before the bound: a failure.
  server(frame(headers, end_headers, 3,
               literal("x-big", std::string(100, 'h')) + status_200));
  auto r = results();
  BOOST_TEST_REQUIRE(r.size() == 2u);
  for (auto& [id, res] : r) {
    BOOST_TEST(res.error.find("headers over 100 bytes") != std::string::npos,
               res.error);
    if (id == 1)
      BOOST_TEST(res.status == 200);
    else
      BOOST_TEST((res.kind == h2_result::outcome::failed));
  }
}

BOOST_AUTO_TEST_CASE(a_lost_connection_ends_each_stream_by_what_it_knew) {
  server_settings();
  open(); // 1: answered, body cut short
  open(); // 3: sent, no answer: may have been processed
  written();
  open(); // 5: never went out
  server(frame(headers, end_headers, 1, status_200));
  s().lost("read: end of stream");
  auto r = results();
  BOOST_TEST_REQUIRE(r.size() == 3u);
  for (auto& [id, res] : r) {
    if (id == 1) {
      BOOST_TEST((res.kind == h2_result::outcome::answered));
      BOOST_TEST(res.status == 200);
    } else if (id == 3) {
      BOOST_TEST((res.kind == h2_result::outcome::failed));
      BOOST_TEST(res.error.find("end of stream") != std::string::npos);
    } else {
      BOOST_TEST((res.kind == h2_result::outcome::refused));
    }
  }
  BOOST_TEST(!s().accepting());
  BOOST_TEST(!s().alive());
}

BOOST_AUTO_TEST_CASE(a_cancelled_stream_is_reported_at_once_and_reset) {
  server_settings();
  open(); // 1
  open(); // 3
  written();
  s().cancel(1, "read: timed out");
  auto r = results();
  BOOST_TEST_REQUIRE(r.size() == 1u);
  BOOST_TEST((r[0].second.kind == h2_result::outcome::failed));
  BOOST_TEST(r[0].second.error == "read: timed out");
  BOOST_TEST(has_rst(written(), 1, 8));
  server(frame(headers, end_headers | end_stream, 1, status_200)); // late
  server(frame(headers, end_headers | end_stream, 3, status_200));
  r = results();
  BOOST_TEST_REQUIRE(r.size() == 1u);
  BOOST_TEST(r[0].first == 3);
}

BOOST_AUTO_TEST_CASE(a_broken_protocol_ends_every_stream) {
  server_settings();
  open();
  written();
  // DATA on stream 0 is a connection error.
  server(frame(data, 0, 0, "x"));
  written(); // its GOAWAY
  BOOST_TEST(!s().alive());
  s().lost("connection closed");
  auto r = results();
  BOOST_TEST_REQUIRE(r.size() == 1u);
  BOOST_TEST((r[0].second.kind == h2_result::outcome::failed));
  BOOST_TEST(!r[0].second.error.empty());
}

BOOST_AUTO_TEST_SUITE_END()
