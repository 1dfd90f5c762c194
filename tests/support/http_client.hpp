#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace tocsin::test {

struct http_result {
  int status = 0;
  std::string body{};
  std::map<std::string, std::string> headers{}; // names lower-cased
  std::string error{}; // non-empty if no response (connection refused etc.)
};

// Small blocking HTTP/1.1 client (plain TCP) for driving the daemon's API.
// Not thread-safe: use one client per thread.
class http_client {
public:
  http_client(std::string host, std::uint16_t port);
  ~http_client();

  http_client(const http_client&) = delete;
  http_client& operator=(const http_client&) = delete;

  // One request on a kept-alive connection; reconnects transparently when the
  // server closed it. `headers` are extra headers, e.g.
  // {"authorization", "Bearer x"}. Timeout 30 s per request.
  http_result
  request(const std::string& method, const std::string& target,
          const std::string& body = {},
          const std::vector<std::pair<std::string, std::string>>& headers = {});

  // Sends raw bytes on a fresh connection and returns whatever comes back
  // until the server closes or the timeout expires (malformed-HTTP tests).
  // Returns an empty string if the connection cannot be made.
  std::string raw(const std::string& bytes,
                  std::chrono::milliseconds timeout = std::chrono::milliseconds{
                      5000});

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace tocsin::test
