// The HTTP/1.1 server of the API (Boost.Beast): keep-alive, a body limit
// answered with 413 before the body is read, deadlines for every phase of a
// request, a cap on connections that closes idle ones first, and strict
// parsing of request heads (app/http_head). Each request goes to
// `api::handle`.
#pragma once

#include "api/handler.hpp"
#include "common/defaults.hpp"
#include "common/result.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace tocsin::api {

struct server_options {
  std::string listen = "127.0.0.1:8650"; ///< host:port, [v6]:port; port 0 = any
  std::size_t max_body_bytes = defaults::max_body_bytes;
  std::size_t max_header_bytes = 16 * 1024;
  /// Open connections. At the cap a new connection closes the one idle the
  /// longest (no request in progress); only when none is idle is the new one
  /// refused.
  std::size_t max_connections = 1024;
  /// A connection with no request in progress (new, or kept alive after an
  /// answer) is closed after this.
  std::chrono::milliseconds idle_timeout{60000};
  /// A request's head (request line and headers) must be complete within
  /// this of its first byte.
  std::chrono::milliseconds header_timeout{10000};
  /// The whole request (head and body) must arrive within this of its first
  /// byte; the answer must be ready within this of the request's end (else
  /// 503), and written within this.
  std::chrono::milliseconds request_timeout{30000};
  unsigned threads = 1;
};

class server {
public:
  virtual ~server() = default;
  /// "127.0.0.1:8650" with the port actually bound.
  virtual std::string address() const = 0;
  /// Stops accepting and closes connections; returns when I/O has stopped.
  virtual void stop() = 0;
};

/// Binds and starts serving; error "listen_failed" names the address and why
/// (e.g. the port is in use).
result<std::unique_ptr<server>> start_server(const server_options& opts,
                                             request_handler& handler);

} // namespace tocsin::api
