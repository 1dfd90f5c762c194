// Includes Beast's websocket: a slow unit, kept apart like http_client.cpp.
#include <utility>

#include "tests/support/ws_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

namespace tocsin::test {

namespace {
namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;
} // namespace

struct ws_client::impl {
  net::io_context ioc;
  websocket::stream<beast::tcp_stream> ws{ioc};
  bool ok = false;
  std::string error;
  int status = 0;
  std::string protocol;
  beast::flat_buffer buffer;
};

ws_client::ws_client(
    std::uint16_t port, const std::string& target,
    const std::vector<std::pair<std::string, std::string>>& headers)
    : impl_(std::make_unique<impl>()) {
  auto& s = *impl_;
  beast::error_code ec;
  auto& tcp_stream = beast::get_lowest_layer(s.ws);
  tcp_stream.expires_after(std::chrono::seconds{10});
  tcp_stream.connect(tcp::endpoint{net::ip::make_address("127.0.0.1"), port},
                     ec);
  if (ec) {
    s.error = "connect: " + ec.message();
    return;
  }
  s.ws.set_option(websocket::stream_base::decorator(
      [headers](websocket::request_type& req) {
        for (auto& [k, v] : headers)
          req.set(k, v);
      }));
  websocket::response_type res;
  auto host = "127.0.0.1:" + std::to_string(port);
  s.ws.handshake(res, host, target, ec);
  if (ec == websocket::error::upgrade_declined) {
    // Beast 1.74 keeps the refusal to itself: ask again over plain HTTP,
    // the same upgrade request, to read the status and body.
    beast::tcp_stream plain{s.ioc};
    plain.expires_after(std::chrono::seconds{10});
    beast::error_code ec2;
    plain.connect(tcp::endpoint{net::ip::make_address("127.0.0.1"), port}, ec2);
    http::request<http::empty_body> req{http::verb::get, target, 11};
    req.set(http::field::host, host);
    req.set(http::field::connection, "Upgrade");
    req.set(http::field::upgrade, "websocket");
    req.set(http::field::sec_websocket_version, "13");
    req.set(http::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ==");
    for (auto& [k, v] : headers)
      req.set(k, v);
    http::response<http::string_body> refusal;
    beast::flat_buffer buf;
    if (!ec2)
      http::write(plain, req, ec2);
    if (!ec2)
      http::read(plain, buf, refusal, ec2);
    if (!ec2) {
      s.status = static_cast<int>(refusal.result_int());
      s.error =
          "refused: HTTP " + std::to_string(s.status) + " " + refusal.body();
      return;
    }
  }
  if (ec) {
    s.error = "handshake: " + ec.message();
    return;
  }
  s.protocol = std::string{res[http::field::sec_websocket_protocol]};
  tcp_stream.expires_never();
  s.ok = true;
}

ws_client::~ws_client() {
  beast::error_code ec;
  beast::get_lowest_layer(impl_->ws).socket().close(ec);
}

bool ws_client::ok() const {
  return impl_->ok;
}
const std::string& ws_client::error() const {
  return impl_->error;
}
int ws_client::status() const {
  return impl_->status;
}
std::string ws_client::protocol() const {
  return impl_->protocol;
}

std::optional<std::string> ws_client::read(std::chrono::milliseconds timeout) {
  auto& s = *impl_;
  if (!s.ok)
    return std::nullopt;
  // A deadline on a synchronous read: run the async read on the context
  // for at most `timeout`.
  std::optional<std::string> out;
  bool done = false;
  s.ws.async_read(s.buffer, [&](beast::error_code ec, std::size_t) {
    done = true;
    if (ec) {
      s.ok = false;
      s.error = "read: " + ec.message();
      return;
    }
    out = beast::buffers_to_string(s.buffer.data());
    s.buffer.consume(s.buffer.size());
  });
  s.ioc.restart();
  s.ioc.run_for(timeout);
  if (!done) {
    // Gave up waiting: the read is cancelled (and the stream with it: a
    // websocket read cannot be resumed after a cancel).
    beast::get_lowest_layer(s.ws).cancel();
    s.ioc.restart();
    s.ioc.run();
    s.ok = false;
    s.error = "read: timed out";
    return std::nullopt;
  }
  return out;
}

bool ws_client::send(const std::string& text) {
  auto& s = *impl_;
  if (!s.ok)
    return false;
  beast::error_code ec;
  beast::get_lowest_layer(s.ws).expires_after(std::chrono::seconds{10});
  s.ws.text(true);
  s.ws.write(net::buffer(text), ec);
  beast::get_lowest_layer(s.ws).expires_never();
  if (ec) {
    s.ok = false;
    s.error = "write: " + ec.message();
  }
  return !ec;
}

void ws_client::close() {
  auto& s = *impl_;
  if (!s.ok)
    return;
  beast::error_code ec;
  beast::get_lowest_layer(s.ws).expires_after(std::chrono::seconds{5});
  s.ws.close(websocket::close_code::normal, ec);
  s.ok = false;
}

} // namespace tocsin::test
