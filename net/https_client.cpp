// The only translation unit of transports/ that includes Asio and Beast.
#include <utility> // Asio 1.74 needs it before its own headers

#include "net/https_client.hpp"

#include "common/version.hpp"
#include "net/h2_session.hpp"
#include "net/request_writer.hpp"
#include "net/response_reader.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/version.hpp>

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
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

/// ALPN offers (RFC 7301 wire format): HTTP/2 first when the request allows
/// it, HTTP/1.1 alone otherwise.
constexpr std::string_view alpn_h2_h1{"\x02h2\x08http/1.1", 12};
constexpr std::string_view alpn_h1{"\x08http/1.1", 9};

std::string user_agent() {
  return std::string{"tocsin/"} + version;
}

/// One TLS connection to an origin: kept alive for the next HTTP/1.1
/// request, or carrying HTTP/2 streams (h2_connection).
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
class h2_connection;

/// The connections of one origin (shared by every endpoint that sends
/// there): at most `max_open_per_origin` exist at once, idle or in use,
/// HTTP/1.1 or HTTP/2; exchanges beyond what they can carry wait, so a
/// thousand endpoints on one host share its connections instead of opening
/// (and closing) one per request in flight. Over HTTP/2 one connection
/// carries as many streams as the server allows; a second is opened when
/// the first is full. Everything here is guarded by `mtx`, the h2
/// connections' counters included.
struct origin_pool {
  enum class protocol { unknown, http1, h2 };

  std::mutex mtx;
  std::vector<std::unique_ptr<connection>> idle; ///< HTTP/1.1, kept alive
  std::size_t open = 0; ///< connections that exist, idle, in use or opening
  std::deque<std::shared_ptr<exchange>> waiting;
  std::size_t waiting_h1_only = 0; ///< of `waiting`, those with http2 false
  session_ptr session;
  /// HTTP/2 connections, those that take no new stream too (until closed).
  std::vector<std::shared_ptr<h2_connection>> h2;
  /// Connections being opened that offered h2: requests that may use it
  /// wait for them rather than each opening its own.
  std::size_t opening_h2 = 0;
  /// What the origin chose at the last handshake that offered h2.
  protocol learned = protocol::unknown;
};

class client_impl;

/// One request/response exchange, from picking a connection to `done`.
class exchange : public std::enable_shared_from_this<exchange> {
public:
  exchange(client_impl& client, std::shared_ptr<origin_pool> pool,
           outbound_request req, https_client::completion done);

  void start();
  /// An idle HTTP/1.1 connection of the pool comes to this exchange.
  void take(std::unique_ptr<connection> conn);
  /// A connection slot of the pool comes to this exchange: it opens one
  /// (offering h2 if `offer_h2`; the pool counts it in opening_h2).
  void open_slot(bool offer_h2);
  /// The HTTP/2 stream of this exchange ended (on its connection's strand).
  void on_stream_end(h2_result r, bool paid_setup);

  bool allows_h2() const { return req_.http2; }
  const outbound_request& request() const { return req_; }
  clock_type::time_point started() const { return started_; }
  clock_type::time_point deadline() const { return deadline_; }

private:
  /// Gives the connection back for the next exchange (or closes it), and
  /// with it the slot.
  void give_back();
  /// The slot of a connection that is gone goes to the next waiting exchange.
  void release_slot();
  /// The pool stops counting this exchange's connection as one that may
  /// come out HTTP/2 (call with the pool's mutex held).
  void opening_done(origin_pool::protocol learned);
  void open_new_connection();
  void on_resolve(beast::error_code ec, tcp::resolver::results_type results);
  void on_connect(beast::error_code ec);
  void on_handshake(beast::error_code ec);
  /// The server chose h2: the connection becomes shared, this exchange its
  /// first stream.
  void become_h2();
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
  bool holds_slot_ = false;   ///< counts in pool_->open
  bool offered_h2_ = false;   ///< counts in pool_->opening_h2
  bool refused_once_ = false; ///< an h2 stream of it was refused (§8.7)
  std::string protocol_;
  tcp::resolver resolver_;
  /// The request's bytes (empty until a connection is ready; then kept for
  /// a second try on a fresh connection).
  std::string wire_;
  std::optional<response_reader> reader_;
};

/// One HTTP/2 connection and the streams it carries, on the connection's
/// strand: a read loop feeding the h2_session, a write loop sending what it
/// gives, a deadline timer per stream. The pool's view of it (how many
/// streams it may still take) is kept under the pool's mutex.
class h2_connection : public std::enable_shared_from_this<h2_connection> {
public:
  h2_connection(client_impl& client, std::shared_ptr<origin_pool> pool,
                std::unique_ptr<connection> conn);

  /// Starts reading and writing (on the strand).
  void start();
  /// Opens a stream for `ex` (placed here by the pool, which counted it in
  /// `assigned`). Any thread.
  void start_stream(std::shared_ptr<exchange> ex);
  /// The first stream, of the exchange that opened the connection (on the
  /// strand, before start()).
  void start_first(std::shared_ptr<exchange> ex);

  /// Streams it may still take (under the pool's mutex).
  std::size_t capacity() const {
    if (!accepting_)
      return 0;
    auto used = open_ + assigned_;
    return used >= limit_ ? 0 : limit_ - used;
  }
  /// A stream placed here, not yet opened (under the pool's mutex).
  void assign() { ++assigned_; }

private:
  struct stream_entry {
    std::shared_ptr<exchange> ex;
    std::unique_ptr<asio::steady_timer> deadline;
  };

  void open_stream(std::shared_ptr<exchange> ex);
  void read_some();
  void on_read(beast::error_code ec, std::size_t n);
  void flush();
  void on_write(beast::error_code ec, std::size_t);
  void on_deadline(std::int32_t id, std::chrono::milliseconds timeout);
  void check_ping(clock_type::time_point sent);
  /// Hands every ended stream to its exchange, closes the connection when
  /// it has no use left, tells the pool what changed.
  void settle();
  void close(std::string why);
  /// The pool's view follows the session's (under the pool's mutex); true
  /// when it may take more streams than before.
  bool publish();

  client_impl& client_;
  std::shared_ptr<origin_pool> pool_;
  std::unique_ptr<connection> conn_;
  h2_session session_;
  clock_type::time_point established_;
  std::unordered_map<std::int32_t, stream_entry> streams_;
  std::string out_;     ///< being written
  std::string pending_; ///< to write next
  bool writing_ = false;
  bool closed_ = false;
  bool session_saved_ = false;
  clock_type::time_point last_read_;
  std::optional<asio::steady_timer> ping_timer_;
  bool ping_outstanding_ = false;
  // The pool's view, under pool_->mtx.
  std::size_t limit_ = 1;
  std::size_t open_ = 0;
  std::size_t assigned_ = 0;
  bool accepting_ = true;
  /// No longer counted in the pool's opening_h2 (its SETTINGS came).
  bool settled_ = false;
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

  ~client_impl() override {
    stop();
    // Idle HTTP/2 connections and the pools refer to each other: break the
    // cycle (no I/O thread runs any more).
    std::lock_guard guard{pools_mtx_};
    for (auto& [key, pool] : pools_) {
      std::lock_guard pool_guard{pool->mtx};
      pool->h2.clear();
      pool->waiting.clear();
    }
  }

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

  /// Puts `ex` in its origin's queue (at the front: it had been placed
  /// before) and places what the pool can carry.
  void enqueue(const std::shared_ptr<origin_pool>& pool,
               std::shared_ptr<exchange> ex, bool front = false) {
    {
      std::lock_guard guard{pool->mtx};
      if (!ex->allows_h2())
        ++pool->waiting_h1_only;
      if (front)
        pool->waiting.push_front(std::move(ex));
      else
        pool->waiting.push_back(std::move(ex));
    }
    serve(pool);
  }

  /// Places waiting exchanges, in order, on what the pool has: a stream of
  /// an HTTP/2 connection with room, an idle HTTP/1.1 connection, or a new
  /// connection while fewer than max_open_per_origin exist. Called whenever
  /// any of that changes.
  void serve(const std::shared_ptr<origin_pool>& pool) {
    std::vector<placement> placed;
    {
      std::lock_guard guard{pool->mtx};
      auto& p = *pool;
      for (auto it = p.waiting.begin(); it != p.waiting.end();) {
        bool h1_ok = !p.idle.empty() || p.open < opts_.max_open_per_origin;
        bool h2_ok = h2_room(p) || !p.idle.empty() ||
                     (p.open < opts_.max_open_per_origin && !wait_for_h2(p));
        if ((!h1_ok && !h2_ok) || (!h2_ok && p.waiting_h1_only == 0) ||
            (!h1_ok && p.waiting_h1_only == p.waiting.size()))
          break; // nothing waiting can be placed
        auto where = place(p, **it);
        if (!where) {
          ++it;
          continue;
        }
        if (!(*it)->allows_h2())
          --p.waiting_h1_only;
        where->ex = std::move(*it);
        it = p.waiting.erase(it);
        placed.push_back(std::move(*where));
      }
    }
    // Outside the lock: these may run the exchange at once (same strand).
    for (auto& pl : placed) {
      if (pl.h2)
        pl.h2->start_stream(std::move(pl.ex));
      else if (pl.idle)
        pl.ex->take(std::move(pl.idle));
      else
        pl.ex->open_slot(pl.offer_h2);
    }
  }

  asio::io_context& ioc() { return ioc_; }
  ssl::context& ssl_ctx() { return ssl_ctx_; }
  const https_client_options& opts() const { return opts_; }

private:
  struct placement {
    std::shared_ptr<exchange> ex;
    std::shared_ptr<h2_connection> h2; ///< a stream on it
    std::unique_ptr<connection> idle;  ///< this HTTP/1.1 connection
    bool offer_h2 = false;             ///< else: a new connection
  };

  static bool h2_room(const origin_pool& p) {
    return std::any_of(p.h2.begin(), p.h2.end(),
                       [](auto& c) { return c->capacity() > 0; });
  }

  /// A connection being opened will likely carry HTTP/2 streams: requests
  /// that may use it wait for it rather than open their own.
  static bool wait_for_h2(const origin_pool& p) {
    return p.opening_h2 > 0 && p.learned != origin_pool::protocol::http1;
  }

  /// Where `ex` goes now, if anywhere (under the pool's mutex).
  std::optional<placement> place(origin_pool& p, const exchange& ex) {
    placement pl;
    if (ex.allows_h2()) {
      for (auto& c : p.h2) {
        if (c->capacity() > 0) {
          c->assign();
          pl.h2 = c;
          return pl;
        }
      }
    }
    if (!p.idle.empty()) {
      pl.idle = std::move(p.idle.back());
      p.idle.pop_back();
      return pl;
    }
    if (ex.allows_h2() && wait_for_h2(p))
      return std::nullopt;
    if (p.open >= opts_.max_open_per_origin)
      return std::nullopt;
    ++p.open;
    if (ex.allows_h2()) {
      ++p.opening_h2;
      pl.offer_h2 = true;
    }
    return pl;
  }

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
  client_.enqueue(pool_, shared_from_this());
}

void exchange::take(std::unique_ptr<connection> conn) {
  conn_ = std::move(conn);
  holds_slot_ = true;
  reused_ = true;
  // Continue on the connection's strand.
  asio::dispatch(conn_->lowest().get_executor(),
                 [self = shared_from_this()] { self->write_request(); });
}

void exchange::open_slot(bool offer_h2) {
  holds_slot_ = true;
  offered_h2_ = offer_h2;
  asio::post(client_.ioc(),
             [self = shared_from_this()] { self->open_new_connection(); });
}

void exchange::give_back() {
  {
    std::lock_guard guard{pool_->mtx};
    holds_slot_ = false;
    pool_->idle.push_back(std::move(conn_));
  }
  client_.serve(pool_);
}

void exchange::release_slot() {
  {
    std::lock_guard guard{pool_->mtx};
    holds_slot_ = false;
    --pool_->open;
    opening_done(origin_pool::protocol::unknown);
  }
  client_.serve(pool_); // the slot passes on
}

void exchange::opening_done(origin_pool::protocol learned) {
  if (!offered_h2_)
    return;
  offered_h2_ = false;
  --pool_->opening_h2;
  if (learned != origin_pool::protocol::unknown)
    pool_->learned = learned;
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
  // A request that may not go over HTTP/2 never offers it: the connection
  // it opens stays HTTP/1.1, for it and for the next ones.
  auto alpn = offered_h2_ ? alpn_h2_h1 : alpn_h1;
  SSL_set_alpn_protos(ssl, reinterpret_cast<const unsigned char*>(alpn.data()),
                      static_cast<unsigned>(alpn.size()));
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
  const unsigned char* alpn = nullptr;
  unsigned alpn_len = 0;
  SSL_get0_alpn_selected(conn_->stream.native_handle(), &alpn, &alpn_len);
  if (offered_h2_ &&
      std::string_view{reinterpret_cast<const char*>(alpn), alpn_len} == "h2")
    return become_h2();
  if (offered_h2_) {
    // HTTP/1.1 it is: the requests that waited for this connection to
    // carry their streams open their own now.
    {
      std::lock_guard guard{pool_->mtx};
      opening_done(origin_pool::protocol::http1);
    }
    client_.serve(pool_);
  }
  write_request();
}

void exchange::become_h2() {
  auto conn = std::make_shared<h2_connection>(client_, pool_, std::move(conn_));
  {
    // The connection takes over the slot, and counts as opening (others
    // wait for it) until the server's SETTINGS say how many streams fit.
    std::lock_guard guard{pool_->mtx};
    holds_slot_ = false;
    offered_h2_ = false;
    pool_->learned = origin_pool::protocol::h2;
    pool_->h2.push_back(conn);
  }
  conn->start_first(shared_from_this());
  conn->start();
}

void exchange::write_request() {
  protocol_ = "http/1.1";
  // Written once a connection is ready (a request waiting for one holds only
  // what it was given), in one piece.
  if (wire_.empty()) {
    wire_ = net::write_request(req_, user_agent());
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
  resp.new_connection = !reused_;
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

void exchange::on_stream_end(h2_result r, bool paid_setup) {
  using outcome = h2_result::outcome;
  // Not processed by the server (RFC 9113 §8.7): sent again, once, as a
  // new request would be (a GOAWAY'd connection takes no new stream, so it
  // goes to another or a new one).
  if (r.kind == outcome::refused && !refused_once_) {
    refused_once_ = true;
    return client_.enqueue(pool_, shared_from_this(), true);
  }
  inbound_response resp;
  resp.protocol = "h2";
  resp.new_connection = paid_setup;
  if (r.kind == outcome::answered) {
    // The status decides, as over HTTP/1.1 (a body cut short does not
    // undo it).
    resp.status = r.status;
    resp.body_prefix = std::move(r.body_prefix);
    resp.retry_after = std::move(r.retry_after);
  } else if (r.kind == outcome::refused) {
    resp.error = "h2: stream refused by the server, twice (not processed)";
  } else {
    resp.error = std::move(r.error);
  }
  finish(std::move(resp));
}

void exchange::fail(beast::error_code ec, std::string_view what) {
  // A kept-alive connection the server has closed meanwhile: try once more on
  // a fresh one (nothing of the request was processed).
  if (reused_ && (what == "write" ||
                  (what == "read" && reader_ && !reader_->got_some()))) {
    conn_.reset();
    reader_.reset();
    if (req_.http2) {
      std::lock_guard guard{pool_->mtx};
      offered_h2_ = true;
      ++pool_->opening_h2;
    }
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
  resp.new_connection = !reused_;
  conn_.reset();
  finish(std::move(resp));
}

void exchange::finish(inbound_response resp) {
  conn_.reset();
  if (holds_slot_)
    release_slot();
  if (resp.protocol.empty())
    resp.protocol = protocol_;
  resp.latency_ms =
      std::chrono::duration<double, std::milli>(clock_type::now() - started_)
          .count();
  auto done = std::move(done_);
  done(std::move(resp));
}

h2_connection::h2_connection(client_impl& client,
                             std::shared_ptr<origin_pool> pool,
                             std::unique_ptr<connection> conn)
    : client_(client), pool_(std::move(pool)), conn_(std::move(conn)),
      session_(client.opts().response), established_(clock_type::now()),
      last_read_(established_) {
  // Streams have deadlines of their own; the connection has none.
  conn_->lowest().expires_never();
  // Many small writes (frames of streams that do not wait for each other):
  // Nagle's algorithm would hold each behind the previous one's ACK.
  beast::error_code ignored;
  conn_->lowest().socket().set_option(tcp::no_delay(true), ignored);
}

void h2_connection::start_first(std::shared_ptr<exchange> ex) {
  {
    std::lock_guard guard{pool_->mtx};
    assign();
  }
  open_stream(std::move(ex));
}

void h2_connection::start() {
  read_some();
  flush();
}

void h2_connection::start_stream(std::shared_ptr<exchange> ex) {
  asio::dispatch(conn_->lowest().get_executor(),
                 [self = shared_from_this(), ex = std::move(ex)]() mutable {
                   self->open_stream(std::move(ex));
                 });
}

void h2_connection::open_stream(std::shared_ptr<exchange> ex) {
  {
    std::lock_guard guard{pool_->mtx};
    --assigned_;
  }
  auto id = closed_ ? 0 : session_.submit(ex->request(), user_agent());
  if (id == 0) {
    // GOAWAY came (or the connection went) after it was placed here: never
    // sent, so it goes back to the pool (not counted as a retry).
    settle();
    return client_.enqueue(pool_, std::move(ex), true);
  }
  auto timer =
      std::make_unique<asio::steady_timer>(conn_->lowest().get_executor());
  timer->expires_at(ex->deadline());
  auto timeout = ex->request().timeout;
  timer->async_wait(
      [self = shared_from_this(), id, timeout](beast::error_code ec) {
        if (!ec)
          self->on_deadline(id, timeout);
      });
  streams_.emplace(id, stream_entry{std::move(ex), std::move(timer)});
  flush();
  settle();
}

void h2_connection::read_some() {
  conn_->stream.async_read_some(
      asio::buffer(conn_->read_buffer),
      beast::bind_front_handler(&h2_connection::on_read, shared_from_this()));
}

void h2_connection::on_read(beast::error_code ec, std::size_t n) {
  if (closed_)
    return;
  if (n > 0) {
    last_read_ = clock_type::now();
    if (!session_.receive({conn_->read_buffer.data(), n}))
      return close(session_.error());
    if (!session_saved_) {
      // After the first bytes, a TLS 1.3 server's tickets have come: the
      // session can resume the next connection's handshake.
      session_saved_ = true;
      std::lock_guard guard{pool_->mtx};
      if (!pool_->session)
        pool_->session = session_ptr{
            SSL_get1_session(conn_->stream.native_handle()), SSL_SESSION_free};
    }
  }
  if (ec)
    return close("read: " + ec.message());
  flush();
  settle();
  if (!closed_)
    read_some();
}

void h2_connection::flush() {
  if (writing_ || closed_)
    return;
  session_.output(pending_);
  if (pending_.empty())
    return;
  std::swap(out_, pending_);
  pending_.clear();
  writing_ = true;
  asio::async_write(
      conn_->stream, asio::buffer(out_),
      beast::bind_front_handler(&h2_connection::on_write, shared_from_this()));
}

void h2_connection::on_write(beast::error_code ec, std::size_t) {
  writing_ = false;
  if (closed_)
    return;
  if (ec)
    return close("write: " + ec.message());
  flush();
  settle();
}

void h2_connection::on_deadline(std::int32_t id,
                                std::chrono::milliseconds timeout) {
  if (closed_ || !streams_.count(id))
    return;
  // The stream alone ends (RST_STREAM(CANCEL)); the connection stays for
  // the others. Whether it is alive at all is asked with a PING: no answer
  // within the same time, and it is closed.
  session_.cancel(id, "read: timed out");
  if (!ping_outstanding_) {
    ping_outstanding_ = true;
    session_.ping();
    auto sent = clock_type::now();
    ping_timer_.emplace(conn_->lowest().get_executor());
    ping_timer_->expires_at(sent + timeout);
    ping_timer_->async_wait(
        [self = shared_from_this(), sent](beast::error_code ec) {
          if (!ec)
            self->check_ping(sent);
        });
  }
  flush();
  settle();
}

void h2_connection::check_ping(clock_type::time_point sent) {
  ping_outstanding_ = false;
  if (!closed_ && last_read_ < sent)
    close("read: no answer to PING: timed out");
}

void h2_connection::settle() {
  auto results = session_.take_results();
  // The pool's view first: a refused stream sent again must not come back
  // to a connection that takes no new stream.
  bool more_room = publish();
  for (auto& [id, r] : results) {
    auto it = streams_.find(id);
    if (it == streams_.end())
      continue;
    auto entry = std::move(it->second);
    streams_.erase(it);
    entry.deadline->cancel();
    bool paid_setup = entry.ex->started() <= established_;
    entry.ex->on_stream_end(std::move(r), paid_setup);
  }
  if (!closed_ && !writing_ && !session_.alive())
    return close("connection closed"); // GOAWAY, and every stream done
  if (more_room)
    client_.serve(pool_);
}

bool h2_connection::publish() {
  std::lock_guard guard{pool_->mtx};
  auto before = capacity();
  limit_ = session_.max_streams();
  open_ = session_.open_streams();
  accepting_ = !closed_ && session_.accepting();
  if (!settled_ && (session_.settings_received() || !accepting_)) {
    settled_ = true;
    --pool_->opening_h2;
  }
  return capacity() > before;
}

void h2_connection::close(std::string why) {
  if (closed_)
    return;
  closed_ = true;
  session_.lost(why);
  beast::error_code ignored;
  conn_->lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
  conn_->lowest().close();
  if (ping_timer_)
    ping_timer_->cancel();
  settle(); // every stream ends (refused ones go back to the pool)
  {
    std::lock_guard guard{pool_->mtx};
    if (!settled_) {
      settled_ = true;
      --pool_->opening_h2;
    }
    std::erase(pool_->h2, shared_from_this());
    --pool_->open;
  }
  client_.serve(pool_);
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
