// The HTTP/1.1 server of the API (Boost.Beast): keep-alive, deadlines for
// every phase of a request, strict parsing of request heads (api/http_head),
// a request with a body checked from its head (route, token or signature
// headers, the route's body limit: api::request_handler::check_head) before
// a byte of the body is read, a budget for the bodies read at once, and a
// cap on connections (per client address too) at which the connection that
// has made the least progress makes room (api/connection_table). Each
// request goes to `api::handle`.
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
  /// Open connections. At the cap a new connection closes the one that has
  /// made the least progress (see connection_table::admit); only when every
  /// connection is busy (being answered) is the new one refused.
  std::size_t max_connections = 1024;
  /// Connections from one client address; past it a new connection from
  /// that address is closed at once (no other is closed for it).
  std::size_t max_connections_per_address = 256;
  /// The bodies being read at once, by their Content-Length (chunked ones
  /// as they arrive): past it a new body is answered 503 with Retry-After
  /// before any of it is read.
  std::size_t max_reading_bytes = 64 << 20;
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
  /// Whether the I/O threads run work given to them within `timeout` (none
  /// stuck, the server not stopped): the service manager's watchdog asks.
  virtual bool responsive(std::chrono::milliseconds timeout) = 0;
};

/// Binds and starts serving; error "listen_failed" names the address and why
/// (e.g. the port is in use).
result<std::unique_ptr<server>> start_server(const server_options& opts,
                                             request_handler& handler);

} // namespace tocsin::api
