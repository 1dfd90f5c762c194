// Reads one HTTP/1.1 response from the bytes a connection delivers, in
// constant memory: the status line and headers (bounded), the first KiB of
// the body for the attempt record, and the rest counted and discarded. What
// decides an attempt is the status line: a receiver's oversized, endless or
// malformed body or headers cannot turn a 2xx into a failure, nor hold more
// than a few KiB of the daemon's memory. No I/O here (https_client feeds it).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace tocsin::net {

struct response_limits {
  /// Status line and headers; beyond, only the status line is read.
  std::size_t max_head_bytes = 8 * 1024;
  /// Body bytes kept for the attempt record.
  std::size_t keep_body_bytes = 1024;
  /// Body bytes read (and discarded) so that the connection can be reused;
  /// a longer body stops the reading and the connection is closed.
  std::size_t max_drain_bytes = 64 * 1024;
};

class response_reader {
public:
  enum class state {
    reading,  ///< give it more bytes
    complete, ///< the whole response was read
    stopped,  ///< the status is known, the rest is not read: close
    failed,   ///< no usable response: see error()
  };

  explicit response_reader(const response_limits& limits = {});
  ~response_reader();
  response_reader(response_reader&&) noexcept;
  response_reader& operator=(response_reader&&) noexcept;

  /// Takes the next bytes from the connection (all of them).
  state feed(std::string_view bytes);
  /// The connection ended (EOF from the peer).
  state finish();
  /// The connection failed or timed out (`why`): stopped if the status line
  /// came, failed otherwise.
  state cut_short(std::string why);

  state current() const { return state_; }
  /// Whether any byte of a response arrived.
  bool got_some() const { return got_some_; }
  /// The final status, 0 until known.
  int status() const { return status_; }
  /// Up to keep_body_bytes of the body (as received, undecoded).
  const std::string& body_prefix() const { return body_prefix_; }
  const std::string& retry_after() const { return retry_after_; }
  /// Complete, keep-alive, and nothing after it: the connection may carry
  /// the next request.
  bool reusable() const;
  /// Why the response is failed (or stopped), for the attempt record.
  const std::string& error() const { return error_; }

private:
  struct parser;
  void start_parser();
  state on_parse_error(std::string what);
  state settle_header();

  response_limits limits_;
  std::unique_ptr<parser> parser_;
  state state_ = state::reading;
  bool got_some_ = false;
  bool trailing_bytes_ = false;
  int status_ = 0;
  int interim_ = 0;     ///< 1xx responses skipped
  std::string pending_; ///< received, not yet taken by the parser (bounded)
  std::string body_prefix_;
  std::string retry_after_;
  std::string error_;
};

} // namespace tocsin::net
