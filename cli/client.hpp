// A small blocking HTTP/1.1 client over POSIX sockets for the operator CLI:
// plain HTTP (the API listens on loopback), one request per connection, a
// deadline for connecting and one for the whole exchange. No Asio here.
#pragma once

#include "common/result.hpp"
#include "common/url.hpp"

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tocsin::cli {

using http_headers = std::vector<std::pair<std::string, std::string>>;

struct http_request {
  std::string method;
  std::string target; ///< path and query, relative to the server's base path
  http_headers headers = {};
  std::string body = {};
};

struct http_response {
  int status = 0;
  http_headers headers; ///< names lower-cased, in arrival order
  std::string body;

  /// The first header of that (lower-case) name, or "".
  std::string header(std::string_view name) const;
};

struct api_client_options {
  std::chrono::milliseconds connect_timeout{5000};
  /// For the whole exchange: connect, send, and read the response.
  std::chrono::milliseconds timeout{60000};
  std::size_t max_response_bytes = 64 << 20;
};

class api_client {
public:
  /// `server` is "http://host[:port][/base]"; https:// is refused (the API
  /// speaks plain HTTP).
  static result<api_client> make(std::string_view server,
                                 api_client_options opts = {});

  /// Sends one request (with Host, Content-Length and Connection: close
  /// added) and reads the whole response. Errors: code "connect" (cannot
  /// reach the server), "timeout", "io" (the connection broke) or
  /// "bad_response"; messages name the server.
  result<http_response> request(const http_request& req) const;

  /// The server as given, without a trailing '/'.
  const std::string& server() const { return server_; }

private:
  api_client(std::string server, url u, api_client_options opts)
      : server_(std::move(server)), url_(std::move(u)), opts_(opts) {}

  std::string server_;
  url url_;
  api_client_options opts_;
};

/// Percent-encodes everything but RFC 3986's unreserved characters, for a
/// path segment or a query value.
std::string percent_encode(std::string_view s);

} // namespace tocsin::cli
