// The HTTPS client every transport sends through: keep-alive connection pools
// per origin, TLS with chain and host-name (or IP) verification, TLS session
// resumption, a deadline per attempt, no redirects followed.
#pragma once

#include "common/result.hpp"
#include "net/address_policy.hpp"
#include "net/http_types.hpp"
#include "net/response_reader.hpp"

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace tocsin::net {

struct https_client_options {
  /// Extra trust anchors (PEM) on top of the system's; empty: none.
  std::string ca_file;
  /// Threads running the client's I/O.
  unsigned io_threads = 1;
  /// Connections open at once per origin (idle or in use), whatever the
  /// number of endpoints sending there; further requests wait for one. A
  /// connection that comes free stays open for the next request (until the
  /// server closes it): a cap on idle ones below this would close, and open
  /// again with a TLS handshake, every connection above it at every request.
  std::size_t max_open_per_origin = 128;
  /// What is read of a response (status and headers, the body's first KiB,
  /// bytes drained to keep the connection).
  response_limits response;
  /// Which resolved addresses may be connected to (default: global unicast).
  address_policy addresses;
};

class https_client {
public:
  using completion = std::function<void(inbound_response)>;

  virtual ~https_client() = default;

  /// Starts one exchange; `done` runs exactly once, on an I/O thread, with the
  /// response or the reason there is none. Thread-safe.
  virtual void send(outbound_request req, completion done) = 0;

  /// Starts several exchanges, as send() each, handed to the I/O threads
  /// at once (one wake-up of an I/O thread, not one per request).
  virtual void
  send_all(std::vector<std::pair<outbound_request, completion>> batch) {
    for (auto& [req, done] : batch)
      send(std::move(req), std::move(done));
  }

  /// Stops the I/O threads. Exchanges still running are abandoned: their
  /// completions never run.
  virtual void stop() = 0;
};

result<std::unique_ptr<https_client>>
make_https_client(const https_client_options& opts);

} // namespace tocsin::net
