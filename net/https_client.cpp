// The only translation unit of transports/ that includes Asio and Beast.
#include <utility> // Asio 1.74 needs it before its own headers

#include "net/https_client.hpp"

#include "common/version.hpp"
#include "net/request_writer.hpp"
#include "net/response_reader.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/version.hpp>

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <array>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

namespace tocsin::net {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using clock_type = std::chrono::steady_clock;

using session_ptr = std::shared_ptr<SSL_SESSION>;

/// One keep-alive TLS connection to an origin.
struct connection {
  connection(asio::io_context& ioc, ssl::context& ctx)
      : stream(asio::make_strand(ioc), ctx) {}

  beast::tcp_stream& lowest() { return stream.next_layer(); }

  beast::ssl_stream<beast::tcp_stream> stream;
  /// Where answers are read into: one per connection, not per request, so
  /// that requests waiting for a connection hold no buffer.
  std::array<char, 16 * 1024> read_buffer;
};

class exchange;

/// The connections of one origin (shared by every endpoint that sends
/// there): at most `max_open_per_origin` exist at once, idle or in use;
/// exchanges beyond that wait for one to come free, so a thousand endpoints
/// on one host share its connections instead of opening (and closing) one
/// per request in flight.
struct origin_pool {
  std::mutex mtx;
  std::vector<std::unique_ptr<connection>> idle;
  std::size_t open = 0; ///< connections that exist, idle or in use
  std::deque<std::shared_ptr<exchange>> waiting;
  session_ptr session;
};

class client_impl;

/// One request/response exchange, from picking a connection to `done`.
class exchange : public std::enable_shared_from_this<exchange> {
public:
  exchange(client_impl& client, std::shared_ptr<origin_pool> pool,
           outbound_request req, https_client::completion done);

  void start();
  /// A connection of the pool comes to this waiting exchange.
  void take(std::unique_ptr<connection> conn);
  /// A connection slot of the pool comes to this waiting exchange.
  void open_slot();

private:
  /// Gives the connection back for the next exchange (or closes it), and
  /// with it the slot.
  void give_back();
  /// The slot of a connection that is gone goes to the next waiting exchange.
  void release_slot();
  void open_new_connection();
  void on_resolve(beast::error_code ec, tcp::resolver::results_type results);
  void on_connect(beast::error_code ec);
  void on_handshake(beast::error_code ec);
  void write_request();
  void on_write(beast::error_code ec, std::size_t);
  void read_some();
  void on_read(beast::error_code ec, std::size_t n);
  void on_response();
  void fail(beast::error_code ec, std::string_view what);
  void finish(inbound_response resp);
  void arm_deadline() { conn_->lowest().expires_at(deadline_); }

  client_impl& client_;
  std::shared_ptr<origin_pool> pool_;
  outbound_request req_;
  https_client::completion done_;
  clock_type::time_point started_;
  clock_type::time_point deadline_;
  std::unique_ptr<connection> conn_;
  bool reused_ = false;
  bool holds_slot_ = false; ///< counts in pool_->open
  tcp::resolver resolver_;
  /// The request's bytes (empty until a connection is ready; then kept for
  /// a second try on a fresh connection).
  std::string wire_;
  std::optional<response_reader> reader_;
};

class client_impl final : public https_client {
public:
  explicit client_impl(const https_client_options& opts)
      : opts_(opts), ssl_ctx_(ssl::context::tls_client),
        work_(asio::make_work_guard(ioc_)) {}

  status init() {
    beast::error_code ec;
    ssl_ctx_.set_default_verify_paths(ec);
    if (ec)
      return error{"tls_setup",
                   "cannot load system trust store: " + ec.message()};
    if (!opts_.ca_file.empty()) {
      ssl_ctx_.load_verify_file(opts_.ca_file, ec);
      if (ec)
        return error{"tls_setup", "cannot load delivery.ca_file " +
                                      opts_.ca_file + ": " + ec.message()};
    }
    ssl_ctx_.set_verify_mode(ssl::verify_peer);
    SSL_CTX_set_min_proto_version(ssl_ctx_.native_handle(), TLS1_2_VERSION);
    // Sessions are cached by us, per origin; OpenSSL's client cache only
    // needs to hand them over.
    SSL_CTX_set_session_cache_mode(ssl_ctx_.native_handle(),
                                   SSL_SESS_CACHE_CLIENT |
                                       SSL_SESS_CACHE_NO_INTERNAL_STORE);
    for (unsigned i = 0; i < std::max(1u, opts_.io_threads); ++i)
      threads_.emplace_back([this] { ioc_.run(); });
    return {};
  }

  ~client_impl() override { stop(); }

  void send(outbound_request req, completion done) override {
    if (auto ex = exchange_for(std::move(req), std::move(done)))
      asio::post(ioc_, [ex = std::move(ex)] { ex->start(); });
  }

  void send_all(
      std::vector<std::pair<outbound_request, completion>> batch) override {
    std::vector<std::shared_ptr<exchange>> exchanges;
    exchanges.reserve(batch.size());
    for (auto& [req, done] : batch)
      if (auto ex = exchange_for(std::move(req), std::move(done)))
        exchanges.push_back(std::move(ex));
    if (exchanges.empty())
      return;
    asio::post(ioc_, [exchanges = std::move(exchanges)] {
      for (auto& ex : exchanges)
        ex->start();
    });
  }

  void stop() override {
    std::call_once(stopped_, [this] {
      work_.reset();
      ioc_.stop();
      for (auto& t : threads_)
        if (t.joinable())
          t.join();
    });
  }

  asio::io_context& ioc() { return ioc_; }
  ssl::context& ssl_ctx() { return ssl_ctx_; }
  const https_client_options& opts() const { return opts_; }

private:
  /// The exchange that sends `req`; nothing (and `done` has run) when the
  /// request is refused before any I/O.
  std::shared_ptr<exchange> exchange_for(outbound_request req,
                                         completion done) {
    if (req.target.scheme != "https") {
      inbound_response resp;
      resp.error = "refusing non-https URL";
      done(std::move(resp));
      return nullptr;
    }
    auto pool = pool_for(req.target);
    return std::make_shared<exchange>(*this, std::move(pool), std::move(req),
                                      std::move(done));
  }

  std::shared_ptr<origin_pool> pool_for(const tocsin::url& u) {
    auto key = u.scheme + "://" + u.authority();
    std::lock_guard guard{pools_mtx_};
    auto& p = pools_[key];
    if (!p)
      p = std::make_shared<origin_pool>();
    return p;
  }

  https_client_options opts_;
  asio::io_context ioc_;
  ssl::context ssl_ctx_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::vector<std::thread> threads_;
  std::once_flag stopped_;
  std::mutex pools_mtx_;
  std::unordered_map<std::string, std::shared_ptr<origin_pool>> pools_;
};

exchange::exchange(client_impl& client, std::shared_ptr<origin_pool> pool,
                   outbound_request req, https_client::completion done)
    : client_(client), pool_(std::move(pool)), req_(std::move(req)),
      done_(std::move(done)), resolver_(client.ioc()) {}

void exchange::start() {
  started_ = clock_type::now();
  deadline_ = started_ + req_.timeout;
  std::unique_ptr<connection> idle;
  {
    std::lock_guard guard{pool_->mtx};
    if (!pool_->idle.empty()) {
      idle = std::move(pool_->idle.back());
      pool_->idle.pop_back();
    } else if (pool_->open < client_.opts().max_open_per_origin) {
      ++pool_->open;
      holds_slot_ = true;
    } else {
      pool_->waiting.push_back(shared_from_this());
      return; // take() or open_slot() goes on
    }
  }
  if (idle)
    take(std::move(idle));
  else
    open_new_connection();
}

void exchange::take(std::unique_ptr<connection> conn) {
  conn_ = std::move(conn);
  holds_slot_ = true;
  reused_ = true;
  // Continue on the connection's strand.
  asio::dispatch(conn_->lowest().get_executor(),
                 [self = shared_from_this()] { self->write_request(); });
}

void exchange::open_slot() {
  holds_slot_ = true;
  asio::post(client_.ioc(),
             [self = shared_from_this()] { self->open_new_connection(); });
}

void exchange::give_back() {
  std::shared_ptr<exchange> next;
  {
    std::lock_guard guard{pool_->mtx};
    holds_slot_ = false;
    if (!pool_->waiting.empty()) {
      next = std::move(pool_->waiting.front());
      pool_->waiting.pop_front();
    } else {
      pool_->idle.push_back(std::move(conn_));
      return;
    }
  }
  next->take(std::move(conn_));
}

void exchange::release_slot() {
  std::shared_ptr<exchange> next;
  {
    std::lock_guard guard{pool_->mtx};
    holds_slot_ = false;
    if (pool_->waiting.empty()) {
      --pool_->open;
      return;
    }
    next = std::move(pool_->waiting.front());
    pool_->waiting.pop_front();
  }
  next->open_slot(); // the slot passes on
}

void exchange::open_new_connection() {
  reused_ = false;
  conn_ = std::make_unique<connection>(client_.ioc(), client_.ssl_ctx());
  resolver_.async_resolve(
      req_.target.host, std::to_string(req_.target.port),
      beast::bind_front_handler(&exchange::on_resolve, shared_from_this()));
}

void exchange::on_resolve(beast::error_code ec,
                          tcp::resolver::results_type results) {
  if (ec)
    return fail(ec, "resolve");
  // The SSRF guard: only addresses the policy allows are connected to, and
  // the connection goes to exactly those (no second resolution).
  std::vector<tcp::endpoint> allowed;
  std::string refusal;
  for (auto& entry : results) {
    auto ep = entry.endpoint();
    auto a = ip_address::parse(ep.address().to_string());
    auto why = a ? client_.opts().addresses.refusal(*a)
                 : ep.address().to_string() + " is scoped, not global";
    if (why.empty())
      allowed.push_back(ep);
    else if (refusal.empty())
      refusal = std::move(why);
  }
  if (allowed.empty()) {
    inbound_response resp;
    resp.forbidden = true;
    resp.error = "forbidden_address: " + refusal;
    conn_.reset();
    return finish(std::move(resp));
  }
  arm_deadline();
  conn_->lowest().async_connect(
      allowed,
      [self = shared_from_this()](beast::error_code ec, const tcp::endpoint&) {
        self->on_connect(ec);
      });
}

void exchange::on_connect(beast::error_code ec) {
  if (ec)
    return fail(ec, "connect");
  SSL* ssl = conn_->stream.native_handle();
  auto& host = req_.target.host;
  if (req_.target.host_is_ip) {
    // RFC 6066: no SNI for IP literals; match the certificate's IP SAN.
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str());
  } else {
    SSL_set_tlsext_host_name(ssl, host.c_str());
    SSL_set1_host(ssl, host.c_str());
  }
  {
    std::lock_guard guard{pool_->mtx};
    if (pool_->session)
      SSL_set_session(ssl, pool_->session.get());
  }
  arm_deadline();
  conn_->stream.async_handshake(
      ssl::stream_base::client,
      beast::bind_front_handler(&exchange::on_handshake, shared_from_this()));
}

void exchange::on_handshake(beast::error_code ec) {
  if (ec)
    return fail(ec, "tls handshake");
  write_request();
}

void exchange::write_request() {
  // Written once a connection is ready (a request waiting for one holds only
  // what it was given), in one piece.
  if (wire_.empty()) {
    wire_ = net::write_request(req_, std::string{"tocsin/"} + version);
    req_.body = {};
  }
  arm_deadline();
  asio::async_write(
      conn_->stream, asio::buffer(wire_),
      beast::bind_front_handler(&exchange::on_write, shared_from_this()));
}

void exchange::on_write(beast::error_code ec, std::size_t) {
  if (ec)
    return fail(ec, "write");
  reader_.emplace(client_.opts().response);
  read_some();
}

void exchange::read_some() {
  arm_deadline();
  conn_->stream.async_read_some(
      asio::buffer(conn_->read_buffer),
      beast::bind_front_handler(&exchange::on_read, shared_from_this()));
}

void exchange::on_read(beast::error_code ec, std::size_t n) {
  using state = response_reader::state;
  auto st = reader_->feed({conn_->read_buffer.data(), n});
  if (ec && st == state::reading) {
    if (!reader_->got_some())
      return fail(ec, "read"); // nothing came: retried on a fresh connection
    bool closed = ec == asio::error::eof || ec == ssl::error::stream_truncated;
    st = closed ? reader_->finish()
                : reader_->cut_short(
                      ec == beast::error::timeout ? "timed out" : ec.message());
  }
  if (st == state::reading)
    return read_some();
  if (st == state::failed)
    return fail(ec, "read");
  on_response();
}

void exchange::on_response() {
  // The status line decides, whatever came (or did not come) after it.
  inbound_response resp;
  resp.status = reader_->status();
  resp.body_prefix = reader_->body_prefix();
  resp.retry_after = reader_->retry_after();
  {
    std::lock_guard guard{pool_->mtx};
    if (!pool_->session)
      pool_->session = session_ptr{
          SSL_get1_session(conn_->stream.native_handle()), SSL_SESSION_free};
  }
  if (reader_->reusable()) {
    conn_->lowest().expires_never();
    give_back();
  }
  conn_.reset(); // not reusable: closed
  finish(std::move(resp));
}

void exchange::fail(beast::error_code ec, std::string_view what) {
  // A kept-alive connection the server has closed meanwhile: try once more on
  // a fresh one (nothing of the request was processed).
  if (reused_ && (what == "write" ||
                  (what == "read" && reader_ && !reader_->got_some()))) {
    conn_.reset();
    reader_.reset();
    return open_new_connection();
  }
  // Once the status line is in, the answer stands (a body cut short by the
  // deadline or the peer does not undo it).
  if (what == "read" && reader_ && reader_->status() != 0)
    return on_response();
  inbound_response resp;
  if (ec == beast::error::timeout)
    resp.error = std::string{what} + ": timed out";
  else if (ec)
    resp.error = std::string{what} + ": " + ec.message();
  else
    resp.error = std::string{what} + ": " +
                 (reader_ ? reader_->error() : std::string{"failed"});
  conn_.reset();
  finish(std::move(resp));
}

void exchange::finish(inbound_response resp) {
  conn_.reset();
  if (holds_slot_)
    release_slot();
  resp.latency_ms =
      std::chrono::duration<double, std::milli>(clock_type::now() - started_)
          .count();
  auto done = std::move(done_);
  done(std::move(resp));
}

} // namespace

result<std::unique_ptr<https_client>>
make_https_client(const https_client_options& opts) {
  auto client = std::make_unique<client_impl>(opts);
  if (auto st = client->init(); !st)
    return st.error();
  return std::unique_ptr<https_client>{std::move(client)};
}

} // namespace tocsin::net
