// The host-side shape of one outbound HTTP exchange, shared by the transports
// (which build requests and classify responses) and the HTTPS client.
#pragma once

#include "common/url.hpp"

#include <chrono>
#include <string>
#include <utility>
#include <vector>

namespace tocsin::net {

struct outbound_request {
  tocsin::url target;
  std::string method = "POST";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::chrono::milliseconds timeout{10000};
  /// May go over HTTP/2 when the receiver offers it (ALPN); false: only
  /// ever HTTP/1.1 (never a stream of a shared HTTP/2 connection).
  bool http2 = true;
};

struct inbound_response {
  int status = 0;    ///< 0 when no response arrived
  std::string error; ///< why no (complete) response arrived ("...: timed out")
  bool forbidden = false; ///< refused by the address policy (SSRF guard)
  /// Not sent and never will be: the transport could not build the request.
  bool unsendable = false;
  std::string body_prefix; ///< first 1 KiB of the body
  std::string retry_after; ///< raw Retry-After header, if any
  double latency_ms = 0;   ///< from the start of the attempt to the response
  /// "h2" or "http/1.1": what the attempt went over (empty when no
  /// connection got that far).
  std::string protocol;
  /// The latency includes setting up a connection (TCP and TLS handshakes):
  /// this attempt opened it, or (HTTP/2) waited for it to open.
  bool new_connection = false;
};

} // namespace tocsin::net
