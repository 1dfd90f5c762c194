// The only translation unit of app/ that includes Asio and Beast.
#include <utility> // Asio 1.74 needs it before its own headers

#include "app/api_server.hpp"

#include "common/log.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <array>
#include <atomic>
#include <thread>
#include <vector>

namespace tocsin::app {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct server_shared {
  server_shared(const api_server_options& o, api& h) : opts(o), handler(h) {}
  const api_server_options& opts;
  api& handler;
  std::atomic<std::size_t> connections{0};
};

class session : public std::enable_shared_from_this<session> {
public:
  session(tcp::socket socket, std::shared_ptr<server_shared> shared)
      : stream_(std::move(socket)), shared_(std::move(shared)) {
    ++shared_->connections;
  }

  ~session() { --shared_->connections; }

  void start() {
    asio::dispatch(
        stream_.get_executor(),
        beast::bind_front_handler(&session::read_request, shared_from_this()));
  }

private:
  void read_request() {
    parser_.emplace();
    parser_->header_limit(
        static_cast<std::uint32_t>(shared_->opts.max_header_bytes));
    parser_->body_limit(shared_->opts.max_body_bytes);
    // One deadline from the end of the last answer to the end of the next
    // request: an idle keep-alive connection and a client trickling its
    // request byte by byte are both cut off when it passes.
    stream_.expires_after(shared_->opts.request_timeout);
    http::async_read(
        stream_, buffer_, *parser_,
        beast::bind_front_handler(&session::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::connection_reset || ec == asio::error::eof)
      return close();
    if (ec == http::error::body_limit)
      return reply(error_response(
                       413, {"payload_too_large",
                             "the body exceeds " +
                                 std::to_string(shared_->opts.max_body_bytes) +
                                 " bytes"}),
                   false);
    if (ec == http::error::header_limit)
      return reply(error_response(431, {"headers_too_large",
                                        "the request headers are too large"}),
                   false);
    if (ec)
      return reply(
          error_response(
              400, {"bad_request", "malformed HTTP request: " + ec.message()}),
          false);
    auto& msg = parser_->get();
    keep_alive_ = msg.keep_alive();
    api_request req;
    req.method = std::string{msg.method_string()};
    req.target = std::string{msg.target()};
    req.content_type = std::string{msg[http::field::content_type]};
    req.authorization = std::string{msg[http::field::authorization]};
    req.idempotency_key = std::string{msg["Idempotency-Key"]};
    req.body = std::move(msg.body());
    head_ = req.method == "HEAD";
    stream_.expires_never(); // the answer may wait for a synced write
    shared_->handler.handle(
        std::move(req), [self = shared_from_this()](api_response resp) {
          asio::post(self->stream_.get_executor(),
                     [self, resp = std::move(resp)]() mutable {
                       self->reply(std::move(resp), self->keep_alive_);
                     });
        });
  }

  void reply(api_response resp, bool keep_alive) {
    response_.emplace();
    response_->version(11);
    response_->result(static_cast<unsigned>(resp.status));
    response_->set(http::field::server, "tocsin");
    response_->set(http::field::content_type, "application/json");
    for (auto& [k, v] : resp.headers)
      response_->set(k, v);
    response_->body() = head_ ? std::string{} : std::move(resp.body);
    response_->keep_alive(keep_alive);
    response_->prepare_payload();
    stream_.expires_after(shared_->opts.request_timeout);
    http::async_write(
        stream_, *response_,
        beast::bind_front_handler(&session::on_write, shared_from_this()));
  }

  void on_write(beast::error_code ec, std::size_t) {
    if (ec)
      return close();
    if (!response_->keep_alive())
      return linger();
    read_request();
  }

  /// After an answer that ends the connection (413, 400, ...) the client may
  /// still be sending its body: closing now would reset the connection and
  /// could destroy the answer in flight. Send FIN, then read and discard what
  /// still comes (bounded in bytes and time) before closing, as nginx does.
  void linger() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    if (ec)
      return close();
    lingered_ = 0;
    stream_.expires_after(std::chrono::seconds{2});
    discard();
  }

  void discard() {
    stream_.async_read_some(
        asio::buffer(discard_buffer_),
        [self = shared_from_this()](beast::error_code ec, std::size_t n) {
          self->lingered_ += n;
          if (ec || self->lingered_ > max_linger_bytes)
            return self->close();
          self->discard();
        });
  }

  void close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    // Closing anyway; the error (peer already gone) needs no handling.
    stream_.close();
  }

  static constexpr std::size_t max_linger_bytes = 8 << 20;
  std::array<char, 16 * 1024> discard_buffer_;
  std::size_t lingered_ = 0;

  beast::tcp_stream stream_;
  std::shared_ptr<server_shared> shared_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::string_body>> response_;
  bool keep_alive_ = false;
  bool head_ = false;
};

class server_impl final : public api_server {
public:
  server_impl(const api_server_options& opts, api& handler)
      : opts_(opts), shared_(std::make_shared<server_shared>(opts_, handler)),
        acceptor_(ioc_) {}

  ~server_impl() override { stop(); }

  status listen() {
    auto colon = opts_.listen.rfind(':');
    if (colon == std::string::npos)
      return error{"listen_failed", "server.listen must be host:port, got '" +
                                        opts_.listen + "'"};
    auto host = opts_.listen.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
      host = host.substr(1, host.size() - 2);
    beast::error_code ec;
    auto addr = asio::ip::make_address(host, ec);
    if (ec)
      return error{"listen_failed",
                   "server.listen needs an IP address, got '" + host + "'"};
    unsigned long port = 0;
    try {
      port = std::stoul(opts_.listen.substr(colon + 1));
    } catch (const std::exception&) {
      port = 70000;
    }
    if (port > 65535)
      return error{"listen_failed",
                   "bad port in server.listen '" + opts_.listen + "'"};
    tcp::endpoint ep{addr, static_cast<unsigned short>(port)};
    auto fail = [&](const char* what) {
      return error{"listen_failed", std::string{"cannot "} + what + " " +
                                        opts_.listen + ": " + ec.message()};
    };
    if (acceptor_.open(ep.protocol(), ec); ec)
      return fail("open");
    if (acceptor_.set_option(asio::socket_base::reuse_address(true), ec); ec)
      return fail("configure");
    if (acceptor_.bind(ep, ec); ec)
      return fail("bind");
    if (acceptor_.listen(asio::socket_base::max_listen_connections, ec); ec)
      return fail("listen on");
    auto local = acceptor_.local_endpoint(ec);
    address_ =
        (local.address().is_v6() ? "[" + local.address().to_string() + "]"
                                 : local.address().to_string()) +
        ":" + std::to_string(local.port());
    accept();
    for (unsigned i = 0; i < std::max(1u, opts_.threads); ++i)
      threads_.emplace_back([this] { ioc_.run(); });
    return {};
  }

  std::string address() const override { return address_; }

  void stop() override {
    std::call_once(stopped_, [this] {
      asio::post(ioc_, [this] {
        beast::error_code ec;
        acceptor_.close(ec);
      });
      ioc_.stop();
      for (auto& t : threads_)
        if (t.joinable())
          t.join();
    });
  }

private:
  void accept() {
    acceptor_.async_accept(asio::make_strand(ioc_), [this](beast::error_code ec,
                                                           tcp::socket socket) {
      if (ec == asio::error::operation_aborted)
        return;
      if (!ec) {
        if (shared_->connections >= opts_.max_connections) {
          beast::error_code ignored;
          socket.close(ignored); // over the cap: refuse
        } else {
          std::make_shared<session>(std::move(socket), shared_)->start();
        }
      }
      accept();
    });
  }

  api_server_options opts_;
  std::shared_ptr<server_shared> shared_;
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  std::vector<std::thread> threads_;
  std::once_flag stopped_;
  std::string address_;
};

} // namespace

result<std::unique_ptr<api_server>>
start_api_server(const api_server_options& opts, api& handler) {
  auto s = std::make_unique<server_impl>(opts, handler);
  if (auto st = s->listen(); !st)
    return st.error();
  return std::unique_ptr<api_server>{std::move(s)};
}

} // namespace tocsin::app
