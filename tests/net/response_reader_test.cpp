#include "net/response_reader.hpp"

#include <boost/test/unit_test.hpp>

using namespace tocsin::net;
using state = response_reader::state;

namespace {

/// Feeds `bytes` in pieces of `chunk` bytes, then the end of the connection
/// if `eof`.
state feed_all(response_reader& r, std::string_view bytes,
               std::size_t chunk = 7, bool eof = false) {
  auto st = state::reading;
  while (!bytes.empty() && st == state::reading) {
    st = r.feed(bytes.substr(0, chunk));
    bytes.remove_prefix(std::min(chunk, bytes.size()));
  }
  if (st == state::reading && eof)
    st = r.finish();
  return st;
}

} // namespace

BOOST_AUTO_TEST_SUITE(response_reader_suite)

BOOST_AUTO_TEST_CASE(reads_status_headers_and_the_first_kib) {
  response_reader r;
  std::string body(3000, 'z');
  auto st = feed_all(r, "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\n"
                        "Content-Length: 3000\r\n\r\n" +
                            body);
  BOOST_TEST((st == state::complete));
  BOOST_TEST(r.status() == 429);
  BOOST_TEST(r.retry_after() == "7");
  BOOST_TEST(r.body_prefix() == body.substr(0, 1024));
  BOOST_TEST(r.reusable());
}

BOOST_AUTO_TEST_CASE(a_huge_body_is_not_read_and_the_status_stands) {
  // Content-Length over what is drained: stop at the header, close.
  response_reader r;
  auto st = feed_all(r,
                     "HTTP/1.1 200 OK\r\nContent-Length: 104857600\r\n\r\n" +
                         std::string(5000, 'x'),
                     4096);
  BOOST_TEST((st == state::stopped));
  BOOST_TEST(r.status() == 200);
  BOOST_TEST(!r.reusable());
  BOOST_TEST(r.error().find("not read") != std::string::npos, r.error());
  // Chunked: read (and discarded) until the drain bound, then stopped.
  response_reader chunked;
  std::string chunks = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 100; ++i)
    chunks += "1000\r\n" + std::string(4096, 'c') + "\r\n";
  st = feed_all(chunked, chunks, 4096);
  BOOST_TEST((st == state::stopped));
  BOOST_TEST(chunked.status() == 200);
  BOOST_TEST(chunked.body_prefix().size() == 1024u);
  // Byte by byte, a final chunk with a trailer (Beast asserts when it is
  // given fewer than 5 bytes of it again: found by fuzzing).
  response_reader bytes;
  st = feed_all(bytes,
                "HTTP/1.1 415 No\r\nTransfer-Encoding: chunked\r\n\r\n"
                "3\r\nabc\r\n0\r\nX-Trailer: t\r\n\r\n",
                1);
  BOOST_TEST((st == state::complete));
  BOOST_TEST(bytes.status() == 415);
  BOOST_TEST(bytes.body_prefix() == "abc");
  // A body under the bound is drained, and the connection kept.
  response_reader small;
  st = feed_all(small, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "5\r\nhello\r\n0\r\n\r\n");
  BOOST_TEST((st == state::complete));
  BOOST_TEST(small.body_prefix() == "hello");
  BOOST_TEST(small.reusable());
}

BOOST_AUTO_TEST_CASE(oversized_or_broken_headers_keep_the_status_line) {
  response_reader big;
  auto st = feed_all(big, "HTTP/1.1 202 Accepted\r\nX-Pad: " +
                              std::string(9000, 'p') + "\r\n\r\n");
  BOOST_TEST((st == state::stopped));
  BOOST_TEST(big.status() == 202);
  BOOST_TEST(big.error().find("headers over") != std::string::npos,
             big.error());
  response_reader broken;
  st = feed_all(broken, "HTTP/1.1 503 Busy\r\nBad Header\r\n\r\n");
  BOOST_TEST((st == state::stopped));
  BOOST_TEST(broken.status() == 503);
  // A status that is no HTTP status (found by fuzzing): failed.
  response_reader low;
  st = feed_all(low, "HTTP/1.0 011 x\r\n::\r\n\r\n");
  BOOST_TEST((st == state::failed));
  BOOST_TEST(low.status() == 0);
  // No status line at all: failed.
  response_reader garbage;
  st = feed_all(garbage, "SMTP ready\r\n\r\n");
  BOOST_TEST((st == state::failed));
  BOOST_TEST(garbage.status() == 0);
  BOOST_TEST(!garbage.error().empty());
}

BOOST_AUTO_TEST_CASE(a_head_cut_short_keeps_its_status_line) {
  // A receiver that answers "200" and then stalls in its headers (until the
  // attempt's deadline) did answer: the status line counts.
  response_reader stalled;
  BOOST_TEST(
      (feed_all(stalled, "HTTP/1.1 200 OK\r\nX-Slow: aaa") == state::reading));
  BOOST_TEST((stalled.cut_short("timed out") == state::stopped));
  BOOST_TEST(stalled.status() == 200);
  BOOST_TEST(stalled.error() == "timed out");
  // Without a whole status line there is nothing to go by.
  response_reader early;
  feed_all(early, "HTTP/1.1 20");
  BOOST_TEST((early.cut_short("timed out") == state::failed));
  BOOST_TEST(early.status() == 0);
  // Closed by the peer in the middle of the head: the same.
  response_reader closed;
  feed_all(closed, "HTTP/1.1 503 Busy\r\nRetry");
  BOOST_TEST((closed.finish() == state::stopped));
  BOOST_TEST(closed.status() == 503);
}

BOOST_AUTO_TEST_CASE(endless_lines_are_bounded) {
  // A chunk header whose extension never ends must not grow memory.
  response_reader r;
  auto st = feed_all(r,
                     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;" +
                         std::string(100000, 'e'),
                     1000);
  BOOST_TEST((st == state::stopped));
  BOOST_TEST(r.status() == 200);
}

BOOST_AUTO_TEST_CASE(interim_responses_eof_bodies_and_trailing_bytes) {
  response_reader r;
  auto st = feed_all(r,
                     "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\n"
                     "Connection: close\r\n\r\nuntil the end",
                     5, true);
  BOOST_TEST((st == state::complete));
  BOOST_TEST(r.status() == 201);
  BOOST_TEST(r.body_prefix() == "until the end");
  BOOST_TEST(!r.reusable()); // read to EOF
  // Bytes after a complete response: not reused.
  response_reader extra;
  st = feed_all(extra, "HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\n",
                100);
  BOOST_TEST((st == state::complete));
  BOOST_TEST(extra.status() == 204);
  BOOST_TEST(!extra.reusable());
  // Closed before anything came; closed mid-body.
  response_reader nothing;
  BOOST_TEST((nothing.finish() == state::failed));
  BOOST_TEST(!nothing.got_some());
  response_reader cut;
  st = feed_all(cut, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 100,
                true);
  BOOST_TEST((st == state::stopped));
  BOOST_TEST(cut.status() == 200);
}

BOOST_AUTO_TEST_SUITE_END()
