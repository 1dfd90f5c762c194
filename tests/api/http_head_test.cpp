#include "api/http_head.hpp"

#include <boost/test/unit_test.hpp>

using namespace tocsin::api;

BOOST_AUTO_TEST_SUITE(http_head)

BOOST_AUTO_TEST_CASE(finds_the_end_of_the_head) {
  BOOST_TEST(!find_head_end("GET / HTTP/1.1\r\nHost: x\r\n"));
  BOOST_TEST(*find_head_end("GET / HTTP/1.1\r\nHost: x\r\n\r\nbody") == 27u);
}

BOOST_AUTO_TEST_CASE(accepts_ordinary_requests) {
  for (auto head : {
           "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
           "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
           "Authorization: Bearer t\r\n\r\n",
           "POST /v1/events HTTP/1.1\r\nhost: x\r\nTransfer-Encoding:  "
           "Chunked \r\n\r\n",
           "GET / HTTP/1.0\r\n\r\n", // HTTP/1.0 needs no Host
       })
    BOOST_TEST(!check_request_head(head), head);
}

BOOST_AUTO_TEST_CASE(refuses_the_smuggling_shapes) {
  struct bad {
    const char* head;
    const char* why;
  };
  for (auto& b : std::initializer_list<bad>{
           {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, "
            "identity\r\nContent-Length: 3\r\n\r\n",
            "exactly"},
           {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n",
            "exactly"},
           {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, "
            "chunked\r\n\r\n",
            "exactly"},
           {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            "Transfer-Encoding: chunked\r\n\r\n",
            "exactly"},
           {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            "Content-Length: 3\r\n\r\n",
            "together"},
           {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
            "Content-Length: 3\r\n\r\n",
            "Content-Length"},
           {"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", "obs-fold"},
           {"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n\tb\r\n\r\n", "obs-fold"},
           {"GET / HTTP/1.1\r\nX-A: a\r\n\r\n", "without Host"},
           {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            "more than one Host"},
           {"GET / HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer a\r\n"
            "Authorization: Bearer b\r\n\r\n",
            "Authorization"},
           {"GET / HTTP/1.1\r\nHost : a\r\n\r\n", "whitespace"},
           {"GET / HTTP/1.1\r\nHost: a\r\nno colon\r\n\r\n", "colon"},
       }) {
    auto why = check_request_head(b.head);
    BOOST_TEST_REQUIRE(why.has_value(), b.head);
    BOOST_TEST(why->find(b.why) != std::string::npos, *why);
  }
}

BOOST_AUTO_TEST_SUITE_END()
