// The bytes of an outbound request: what Beast's serializer wrote for the
// same request before (Host and User-Agent first, a header given twice once,
// Content-Length by method and body), in one piece.
#include "net/request_writer.hpp"

#include <boost/test/unit_test.hpp>

using namespace tocsin::net;

namespace {

outbound_request request(std::string method, std::string body) {
  outbound_request r;
  r.target.scheme = "https";
  r.target.host = "hooks.example.com";
  r.target.port = 8443;
  r.target.target = "/in/abc?x=1";
  r.method = std::move(method);
  r.body = std::move(body);
  return r;
}

} // namespace

BOOST_AUTO_TEST_SUITE(request_writer_suite)

BOOST_AUTO_TEST_CASE(a_signed_post_goes_out_whole) {
  auto r = request("POST", R"({"type":"policy.denied"})");
  r.headers = {{"content-type", "application/json"},
               {"webhook-id", "msg_1"},
               {"webhook-timestamp", "1764201600"},
               {"webhook-signature", "v1,abc="}};
  BOOST_TEST(write_request(r, "tocsin/1.2.3") ==
             "POST /in/abc?x=1 HTTP/1.1\r\n"
             "Host: hooks.example.com:8443\r\n"
             "User-Agent: tocsin/1.2.3\r\n"
             "content-type: application/json\r\n"
             "webhook-id: msg_1\r\n"
             "webhook-timestamp: 1764201600\r\n"
             "webhook-signature: v1,abc=\r\n"
             "Content-Length: 24\r\n"
             "\r\n"
             R"({"type":"policy.denied"})");
}

BOOST_AUTO_TEST_CASE(the_last_of_a_repeated_header_wins_and_framing_is_ours) {
  auto r = request("PUT", "");
  r.headers = {{"X-Kind", "first"},       {"user-agent", "custom/2"},
               {"Content-Length", "999"}, {"transfer-encoding", "chunked"},
               {"Host", "evil.example"},  {"Connection", "close"},
               {"x-kind", "second"}};
  BOOST_TEST(write_request(r, "tocsin/1.2.3") ==
             "PUT /in/abc?x=1 HTTP/1.1\r\n"
             "Host: hooks.example.com:8443\r\n"
             "user-agent: custom/2\r\n"
             "x-kind: second\r\n"
             "Content-Length: 0\r\n"
             "\r\n");
}

BOOST_AUTO_TEST_CASE(a_bodiless_get_has_no_length) {
  auto r = request("GET", "");
  BOOST_TEST(write_request(r, "ua") == "GET /in/abc?x=1 HTTP/1.1\r\n"
                                       "Host: hooks.example.com:8443\r\n"
                                       "User-Agent: ua\r\n"
                                       "\r\n");
  r.method = "DELETE";
  r.body = "x";
  BOOST_TEST(write_request(r, "ua") == "DELETE /in/abc?x=1 HTTP/1.1\r\n"
                                       "Host: hooks.example.com:8443\r\n"
                                       "User-Agent: ua\r\n"
                                       "Content-Length: 1\r\n"
                                       "\r\nx");
}

BOOST_AUTO_TEST_SUITE_END()
