// The only translation unit (with http_client.cpp) that pulls in Beast/Asio:
// they are expensive to compile, so headers stay Boost-free via pimpl.
#include <utility>

#include "tests/support/https_receiver.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <type_traits>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

namespace tocsin::test {

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

constexpr std::size_t body_limit = 8 * 1024 * 1024;
constexpr std::chrono::seconds handshake_timeout{30};
constexpr std::chrono::seconds shutdown_timeout{5};

class session_base {
public:
  virtual ~session_base() = default;
  // Only called by stop() after every io thread has been joined, so it needs
  // no synchronisation with the session's own handlers.
  virtual void force_close() = 0;
};

// State shared by the acceptor and all sessions. Lives inside
// https_receiver::impl, which outlives every io thread.
struct core {
  receiver_options opts;
  responder respond;
  // Declared before the io_context so it is destroyed after the TLS streams
  // that the io_context's pending handlers still own.
  std::optional<ssl::context> tls;
  net::io_context ioc;
  tcp::acceptor acceptor{ioc};
  std::vector<std::thread> threads;
  std::atomic<bool> stopped{false};
  std::atomic<std::size_t> accepted{0}; ///< connections accepted so far
  std::uint16_t port = 0;

  mutable std::mutex mutex;
  mutable std::condition_variable cv;
  std::vector<received_request> requests; ///< when keep_requests
  std::size_t received = 0;
  std::vector<std::weak_ptr<session_base>> sessions;

  // Returns the request's index: recording and numbering happen under one
  // lock so indices match arrival order even with several io threads.
  std::size_t record(const received_request& req) {
    std::size_t index;
    {
      std::lock_guard lock{mutex};
      index = received++;
      if (opts.keep_requests)
        requests.push_back(req);
    }
    cv.notify_all();
    return index;
  }

  void track(const std::shared_ptr<session_base>& s) {
    std::lock_guard lock{mutex};
    std::erase_if(sessions, [](const auto& w) { return w.expired(); });
    sessions.push_back(s);
  }
};

received_request to_received(const http::request<http::string_body>& req) {
  received_request rec;
  rec.method = std::string(req.method_string());
  rec.target = std::string(req.target());
  for (const auto& field : req) {
    std::string name(field.name_string());
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) {
      return static_cast<char>(std::tolower(c));
    });
    std::string value(field.value());
    auto [it, inserted] = rec.headers.emplace(std::move(name), value);
    if (!inserted)
      it->second += ", " + value;
  }
  rec.body = req.body();
  rec.at = std::chrono::steady_clock::now();
  rec.unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  return rec;
}

template <class Stream>
class session : public session_base,
                public std::enable_shared_from_this<session<Stream>> {
  static constexpr bool is_tls = !std::is_same_v<Stream, beast::tcp_stream>;

public:
  session(core& c, tcp::socket&& socket)
      : core_(c), stream_(make_stream(c, std::move(socket))),
        delay_timer_(stream_.get_executor()) {}

  void start() {
    // The accept handler ran outside this connection's strand; hop onto it
    // before touching the stream.
    net::dispatch(stream_.get_executor(),
                  beast::bind_front_handler(&session::on_start,
                                            this->shared_from_this()));
  }

  void force_close() override {
    beast::error_code ec;
    delay_timer_.cancel();
    beast::get_lowest_layer(stream_).socket().shutdown(
        tcp::socket::shutdown_both, ec);
    beast::get_lowest_layer(stream_).close();
  }

private:
  static Stream make_stream(core& c, tcp::socket&& socket) {
    if constexpr (is_tls)
      return Stream(std::move(socket), *c.tls);
    else
      return Stream(std::move(socket));
  }

  void on_start() {
    if constexpr (is_tls) {
      beast::get_lowest_layer(stream_).expires_after(handshake_timeout);
      stream_.async_handshake(
          ssl::stream_base::server,
          beast::bind_front_handler(&session::on_handshake,
                                    this->shared_from_this()));
    } else {
      do_read();
    }
  }

  void on_handshake(beast::error_code ec) {
    // A client that rejects our certificate aborts the handshake: that is an
    // expected test scenario, so the connection is simply dropped.
    if (ec)
      return;
    do_read();
  }

  void do_read() {
    parser_.emplace();
    parser_->body_limit(body_limit);
    // Idle keep-alive connections are legitimate (the daemon pools them), so
    // no read timeout; stop() closes whatever is left.
    beast::get_lowest_layer(stream_).expires_never();
    http::async_read(
        stream_, buffer_, *parser_,
        beast::bind_front_handler(&session::on_read, this->shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec == http::error::end_of_stream)
      return do_close();
    // Anything else (including ssl stream_truncated from a peer that closed
    // without close_notify, or a parse error) just drops the connection.
    if (ec || core_.stopped)
      return;

    auto req = parser_->release();
    received_request rec = to_received(req);
    if (!core_.opts.webhook_secret.empty())
      rec.signature_valid =
          verify_standard_webhook(core_.opts.webhook_secret, rec);
    const std::size_t index = core_.record(rec);

    canned_response answer;
    if (core_.respond) {
      try {
        answer = core_.respond(rec, index);
      } catch (const std::exception& e) {
        answer = canned_response{};
        answer.status = 500;
        answer.body = std::string("responder threw: ") + e.what();
      }
    }
    if (!answer.raw.empty()) {
      raw_ = std::move(answer.raw);
      stream_left_ = answer.stream_bytes;
      stream_chunked_ = answer.stream_chunked;
      return net::async_write(
          stream_, net::buffer(raw_),
          beast::bind_front_handler(&session::on_stream,
                                    this->shared_from_this()));
    }
    if (answer.drop_connection) {
      beast::error_code ignored;
      beast::get_lowest_layer(stream_).socket().shutdown(
          tcp::socket::shutdown_both, ignored);
      beast::get_lowest_layer(stream_).close();
      return;
    }

    res_ = {};
    res_.version(req.version());
    res_.result(static_cast<unsigned>(answer.status));
    for (const auto& [name, value] : answer.headers)
      res_.insert(name, value);
    if (res_.find(http::field::content_type) == res_.end())
      res_.set(http::field::content_type, "text/plain");
    // These statuses must not carry a body; Beast throws if they do.
    if (answer.status < 200 || answer.status == 204 || answer.status == 304)
      answer.body.clear();
    res_.body() = std::move(answer.body);
    res_.keep_alive(req.keep_alive() && !answer.close_connection);
    res_.prepare_payload();

    if (answer.delay.count() > 0) {
      delay_timer_.expires_after(answer.delay);
      delay_timer_.async_wait(
          [self = this->shared_from_this()](beast::error_code wait_ec) {
            if (!wait_ec)
              self->do_write();
          });
    } else {
      do_write();
    }
  }

  /// Writes the next piece of filler after a raw answer, then closes.
  void on_stream(beast::error_code ec, std::size_t) {
    if (ec || core_.stopped)
      return; // the client stopped reading and closed: expected
    if (stream_left_ == 0) {
      if (stream_chunked_ && !stream_done_) {
        stream_done_ = true;
        raw_ = "0\r\n\r\n";
        return net::async_write(
            stream_, net::buffer(raw_),
            beast::bind_front_handler(&session::on_stream,
                                      this->shared_from_this()));
      }
      return do_close();
    }
    static const std::string filler(64 * 1024, 'x');
    auto n = std::min(stream_left_, filler.size());
    stream_left_ -= n;
    if (stream_chunked_) {
      char size[32];
      std::snprintf(size, sizeof(size), "%zx\r\n", n);
      raw_ = size + filler.substr(0, n) + "\r\n";
    } else {
      raw_ = filler.substr(0, n);
    }
    net::async_write(stream_, net::buffer(raw_),
                     beast::bind_front_handler(&session::on_stream,
                                               this->shared_from_this()));
  }

  void do_write() {
    http::async_write(stream_, res_,
                      beast::bind_front_handler(&session::on_write,
                                                this->shared_from_this()));
  }

  void on_write(beast::error_code ec, std::size_t) {
    if (ec)
      return;
    if (!res_.keep_alive())
      return do_close();
    do_read();
  }

  void do_close() {
    if constexpr (is_tls) {
      beast::get_lowest_layer(stream_).expires_after(shutdown_timeout);
      // The result is irrelevant: peers often close without close_notify
      // (stream_truncated); the socket closes when the session dies.
      stream_.async_shutdown(
          [self = this->shared_from_this()](beast::error_code) {});
    } else {
      beast::error_code ignored;
      stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    }
  }

  core& core_;
  Stream stream_;
  net::steady_timer delay_timer_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> res_;
  std::string raw_;
  std::size_t stream_left_ = 0;
  bool stream_chunked_ = false;
  bool stream_done_ = false;
};

template <class Stream>
void start_session(core& c, tcp::socket&& socket) {
  auto s = std::make_shared<session<Stream>>(c, std::move(socket));
  c.track(s);
  s->start();
}

void do_accept(core& c) {
  // Each connection gets its own strand so a multi-threaded receiver never
  // runs two handlers of one stream (or its timeout timer) concurrently.
  c.acceptor.async_accept(net::make_strand(c.ioc), [&c](beast::error_code ec,
                                                        tcp::socket socket) {
    if (ec == net::error::operation_aborted || c.stopped)
      return;
    if (!ec) {
      ++c.accepted;
      if (c.tls)
        start_session<beast::ssl_stream<beast::tcp_stream>>(c,
                                                            std::move(socket));
      else
        start_session<beast::tcp_stream>(c, std::move(socket));
    }
    do_accept(c);
  });
}

} // namespace

struct https_receiver::impl {
  core c;
};

https_receiver::https_receiver(receiver_options opts, responder r)
    : impl_(std::make_unique<impl>()) {
  core& c = impl_->c;
  c.opts = std::move(opts);
  c.respond = std::move(r);

  if (c.opts.cert_file.empty() != c.opts.key_file.empty())
    throw std::invalid_argument(
        "https_receiver: set both cert_file and key_file, or neither");
  if (!c.opts.cert_file.empty()) {
    c.tls.emplace(ssl::context::tls_server);
    c.tls->set_options(ssl::context::default_workarounds |
                       ssl::context::no_sslv2 | ssl::context::no_sslv3);
    c.tls->use_certificate_chain_file(c.opts.cert_file);
    c.tls->use_private_key_file(c.opts.key_file, ssl::context::pem);
  }

  tcp::endpoint endpoint{net::ip::make_address(c.opts.bind_address),
                         c.opts.port};
  c.acceptor.open(endpoint.protocol());
  c.acceptor.set_option(net::socket_base::reuse_address(true));
  c.acceptor.bind(endpoint);
  c.acceptor.listen(net::socket_base::max_listen_connections);
  c.port = c.acceptor.local_endpoint().port();

  do_accept(c);
  const unsigned n = std::max(1u, c.opts.threads);
  for (unsigned i = 0; i < n; ++i)
    c.threads.emplace_back([&c] { c.ioc.run(); });
}

https_receiver::~https_receiver() {
  stop();
}

std::uint16_t https_receiver::port() const {
  return impl_->c.port;
}

std::size_t https_receiver::count() const {
  std::lock_guard lock{impl_->c.mutex};
  return impl_->c.received;
}

std::size_t https_receiver::connections() const {
  return impl_->c.accepted;
}

std::vector<received_request> https_receiver::requests() const {
  std::lock_guard lock{impl_->c.mutex};
  return impl_->c.requests;
}

bool https_receiver::wait_for(std::size_t n,
                              std::chrono::milliseconds timeout) const {
  std::unique_lock lock{impl_->c.mutex};
  return impl_->c.cv.wait_for(lock, timeout,
                              [&] { return impl_->c.received >= n; });
}

void https_receiver::stop() {
  core& c = impl_->c;
  if (c.stopped.exchange(true))
    return;
  c.ioc.stop();
  for (auto& t : c.threads)
    if (t.joinable())
      t.join();
  c.threads.clear();

  // No io thread runs any more, so sockets can be closed from here directly.
  // Pending handlers (and the sessions they own) are destroyed together with
  // the io_context.
  beast::error_code ignored;
  c.acceptor.close(ignored);
  std::vector<std::shared_ptr<session_base>> live;
  {
    std::lock_guard lock{c.mutex};
    for (const auto& w : c.sessions)
      if (auto s = w.lock())
        live.push_back(std::move(s));
    c.sessions.clear();
  }
  for (const auto& s : live)
    s->force_close();
}

} // namespace tocsin::test
