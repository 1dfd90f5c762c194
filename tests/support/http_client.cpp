// One of the two translation units allowed to include Beast/Asio (see
// https_receiver.cpp); the header stays Boost-free via pimpl.
#include <utility>

#include "tests/support/http_client.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <optional>

#include <poll.h>
#include <sys/socket.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace tocsin::test {

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

constexpr std::chrono::seconds request_timeout{30};
constexpr std::size_t response_body_limit = 64 * 1024 * 1024;

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) {
    return static_cast<char>(std::tolower(c));
  });
  return s;
}

} // namespace

struct http_client::impl {
  std::string host;
  std::uint16_t port;
  // Async operations driven to completion one at a time: the blocking API
  // stays simple while beast::tcp_stream still enforces timeouts (its sync
  // calls cannot time out).
  net::io_context ioc;
  std::optional<beast::tcp_stream> stream;
  beast::flat_buffer buffer;

  impl(std::string h, std::uint16_t p) : host(std::move(h)), port(p) {}

  void run() {
    ioc.restart();
    ioc.run();
  }

  // Connects `s` with the given deadline; returns an error text or "".
  std::string connect(beast::tcp_stream& s,
                      std::chrono::steady_clock::time_point deadline) {
    beast::error_code ec;
    tcp::resolver resolver{ioc};
    auto endpoints = resolver.resolve(host, std::to_string(port), ec);
    if (ec)
      return "resolve: " + ec.message();
    s.expires_at(deadline);
    s.async_connect(endpoints,
                    [&](beast::error_code e, const tcp::endpoint&) { ec = e; });
    run();
    if (ec)
      return "connect: " + ec.message();
    return {};
  }

  void close() {
    if (stream) {
      beast::error_code ignored;
      stream->socket().shutdown(tcp::socket::shutdown_both, ignored);
      stream->close();
    }
    stream.reset();
    buffer.clear();
  }

  // A kept-alive connection the server has since closed shows up as readable
  // (EOF). Checking first avoids resending a request the server never saw
  // only by luck of the retry path.
  bool peer_closed() {
    pollfd pfd{};
    pfd.fd = stream->socket().native_handle();
    pfd.events = POLLIN;
    if (::poll(&pfd, 1, 0) == 0)
      return false;
    char byte;
    // Any pending byte or error between requests means the connection is
    // unusable for a new request/response pair.
    return ::recv(pfd.fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) != -1 ||
           (errno != EAGAIN && errno != EWOULDBLOCK);
  }
};

http_client::http_client(std::string host, std::uint16_t port)
    : impl_(std::make_unique<impl>(std::move(host), port)) {}

http_client::~http_client() = default;

http_result http_client::request(
    const std::string& method, const std::string& target,
    const std::string& body,
    const std::vector<std::pair<std::string, std::string>>& headers) {
  http_result result;
  for (int attempt = 0; attempt < 2; ++attempt) {
    const auto deadline = std::chrono::steady_clock::now() + request_timeout;
    bool reused = impl_->stream.has_value();
    if (reused && impl_->peer_closed()) {
      impl_->close();
      reused = false;
    }
    if (!reused) {
      impl_->stream.emplace(impl_->ioc);
      if (auto err = impl_->connect(*impl_->stream, deadline); !err.empty()) {
        impl_->close();
        result.error = err;
        return result;
      }
    }

    http::request<http::string_body> req;
    req.method_string(method);
    req.target(target);
    req.version(11);
    req.set(http::field::host, impl_->host + ":" + std::to_string(impl_->port));
    req.set(http::field::user_agent, "tocsin-test");
    for (const auto& [name, value] : headers)
      req.set(name, value);
    req.body() = body;
    req.prepare_payload();

    beast::error_code ec;
    impl_->stream->expires_at(deadline);
    http::async_write(*impl_->stream, req,
                      [&](beast::error_code e, std::size_t) { ec = e; });
    impl_->run();
    if (ec) {
      impl_->close();
      // A reused connection may have been closed by the server in the
      // meantime; one retry on a fresh connection hides that race.
      if (reused)
        continue;
      result.error = "write: " + ec.message();
      return result;
    }

    http::response_parser<http::string_body> parser;
    parser.body_limit(response_body_limit);
    if (req.method() == http::verb::head)
      parser.skip(true);
    http::async_read(*impl_->stream, impl_->buffer, parser,
                     [&](beast::error_code e, std::size_t) { ec = e; });
    impl_->run();
    if (ec) {
      impl_->close();
      // end_of_stream means the server closed before sending any byte of a
      // response: usually the idle-close race again. But the server may also
      // have processed the request and died, so only idempotent methods are
      // resent; a duplicated POST would corrupt delivery counts in tests.
      const auto verb = req.method();
      const bool idempotent =
          verb == http::verb::get || verb == http::verb::head ||
          verb == http::verb::put || verb == http::verb::delete_ ||
          verb == http::verb::options;
      if (reused && idempotent &&
          (ec == http::error::end_of_stream ||
           ec == net::error::connection_reset))
        continue;
      result.error = "read: " + ec.message();
      return result;
    }

    const auto& res = parser.get();
    result.status = static_cast<int>(res.result_int());
    result.body = res.body();
    for (const auto& field : res) {
      std::string name = lower(std::string(field.name_string()));
      std::string value(field.value());
      auto [it, inserted] = result.headers.emplace(std::move(name), value);
      if (!inserted)
        it->second += ", " + value;
    }
    if (!res.keep_alive())
      impl_->close();
    return result;
  }
  result.error = "connection closed by server twice";
  return result;
}

std::string http_client::raw(const std::string& bytes,
                             std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  beast::tcp_stream s{impl_->ioc};
  if (!impl_->connect(s, deadline).empty())
    return {};

  beast::error_code ec;
  s.expires_at(deadline);
  net::async_write(s, net::buffer(bytes),
                   [&](beast::error_code e, std::size_t) { ec = e; });
  impl_->run();
  // Even if the write failed (server closed early on garbage) it may already
  // have answered, so read regardless.
  std::string out;
  std::array<char, 4096> chunk;
  for (;;) {
    std::size_t n = 0;
    s.expires_at(deadline);
    s.async_read_some(net::buffer(chunk),
                      [&](beast::error_code e, std::size_t got) {
                        ec = e;
                        n = got;
                      });
    impl_->run();
    out.append(chunk.data(), n);
    if (ec)
      break;
  }
  beast::error_code ignored;
  s.socket().close(ignored);
  return out;
}

} // namespace tocsin::test
