#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace tocsin::test {

struct received_request {
  std::string method{};
  std::string target{};
  // Names lower-cased; repeated headers are joined with ", ".
  std::map<std::string, std::string> headers{};
  std::string body{};
  std::chrono::steady_clock::time_point at{}; // when fully received
  std::int64_t unix_ms = 0;                   // wall clock when received
  // See verify_standard_webhook; false when no secret is configured.
  bool signature_valid = false;
  std::string protocol{}; // "http/1.1" or "h2"
};

struct canned_response {
  int status = 200;
  std::string body = "ok";
  std::vector<std::pair<std::string, std::string>> headers{};
  // Extras for failure-mode tests. The delay is waited asynchronously, so it
  // only stalls this connection (not the receiver's other connections).
  std::chrono::milliseconds delay{0};
  bool close_connection = false; // answer with "Connection: close", then close
  bool drop_connection = false;  // close without answering at all
  // Malformed or oversized answers: when `raw` is set it is written as is
  // instead of a response built from the fields above, followed by
  // `stream_bytes` filler bytes written 64 KiB at a time (a huge body that
  // the receiver never holds in memory), as chunks if `stream_chunked`. The
  // connection is closed after it.
  std::string raw{};
  std::size_t stream_bytes = 0;
  bool stream_chunked = false;
  // HTTP/2 only (ignored over HTTP/1.1), the request not processed (not in
  // requests(), counted by refused()), so a client may send it again:
  // `goaway` sends GOAWAY whose last stream is the one below this one (or
  // the highest already processed), refusing this stream and every later
  // one of the connection (those below still complete); `refuse_stream`
  // resets this stream with REFUSED_STREAM. Over HTTP/2, `raw` is ignored;
  // `stream_bytes` filler bytes follow `body` as DATA, and
  // `close_connection` answers, then sends GOAWAY.
  bool goaway = false;
  bool refuse_stream = false;
};

// index = 0-based count of requests that arrived before this one (across
// connections, refused HTTP/2 streams included).
using responder =
    std::function<canned_response(const received_request&, std::size_t index)>;

struct receiver_options {
  // Every member has an initializer so designated initializers that name
  // only some of them compile cleanly under -Wextra.
  std::string cert_file{}, key_file{}; // both empty => plain HTTP
  std::string webhook_secret{}; // "whsec_..." or "whpk_..."; empty => don't
                                // verify (see verify_standard_webhook)
  std::string bind_address = "127.0.0.1";
  std::uint16_t port = 0; // 0 => ephemeral
  unsigned threads = 1;
  bool keep_requests = true; ///< false: count them only (benchmarks)
  // TLS only: select "h2" by ALPN when the client offers it (HTTP/1.1
  // otherwise), served with nghttp2; each stream answered on its own (a
  // delay stalls only its stream).
  bool http2 = false;
  std::uint32_t max_concurrent_streams = 100; // announced in SETTINGS
};

// A real HTTP(S) server on loopback with its own io_context thread(s), so tests
// exercise the daemon's actual network path (TLS, keep-alive, timeouts).
// The responder runs on a receiver thread; it must not call stop().
class https_receiver {
public:
  // Listens immediately (SO_REUSEADDR on, so a test can rebind a port a
  // previous receiver used). Default responder: 200 "ok".
  explicit https_receiver(receiver_options opts, responder r = {});
  ~https_receiver(); // stops & joins

  https_receiver(const https_receiver&) = delete;
  https_receiver& operator=(const https_receiver&) = delete;

  std::uint16_t port() const;
  std::size_t count() const;   // requests received
  std::size_t refused() const; // HTTP/2 streams refused (goaway etc.)
  // The most HTTP/2 streams open at once on one connection.
  std::size_t max_open_streams() const;
  // HTTP/2 streams the client reset (RST_STREAM) before their end.
  std::size_t client_resets() const;
  std::size_t connections() const;                // connections accepted
  std::vector<received_request> requests() const; // copy, in arrival order
  // True once count() >= n; waits on a condition variable.
  bool wait_for(std::size_t n, std::chrono::milliseconds timeout) const;
  // Closes the listener and every open connection (clients see resets or
  // EOF). Idempotent; the recorded requests stay readable.
  void stop();

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

// Independent Standard Webhooks verification (deliberately shares no code with
// the daemon, so a bug there cannot hide in both). Requires webhook-id and
// webhook-timestamp headers. With a "whsec_<base64>" secret: valid if any
// "v1,<base64>" entry of the space-separated webhook-signature header matches
// HMAC-SHA256 over "{id}.{timestamp}.{body}" keyed with the base64 part. With a
// "whpk_<base64>" Ed25519 public key (32 bytes): valid if any "v1a,<base64>"
// entry is an Ed25519 signature of that content under the key.
bool verify_standard_webhook(const std::string& secret,
                             const received_request& req);

} // namespace tocsin::test
