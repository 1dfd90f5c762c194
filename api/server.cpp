// The only translation unit of app/ that includes Asio and Beast.
#include <utility> // Asio 1.74 needs it before its own headers

#include "api/server.hpp"

#include "api/connection_table.hpp"
#include "api/http_head.hpp"
#include "common/log.hpp"
#include "common/metric_families.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <array>
#include <atomic>
#include <functional>
#include <future>
#include <limits>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

namespace tocsin::api {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using clock_type = std::chrono::steady_clock;

class session;

/// What the acceptor and every session share: the options, the handler, the
/// connection table (what each connection is doing: who makes room at the
/// cap) with the sessions by id, and the bytes of the bodies being read.
struct server_shared {
  server_shared(const server_options& o, request_handler& h)
      : opts(o), handler(h),
        table(o.max_connections, o.max_connections_per_address) {}
  const server_options& opts;
  request_handler& handler;

  std::mutex mtx; ///< guards table and sessions
  connection_table table;
  std::unordered_map<connection_table::id_type, std::weak_ptr<session>>
      sessions;

  /// Takes `n` bytes of server.max_reading_bytes; false past it.
  bool reserve_reading(std::size_t n) {
    auto now = reading.load();
    do {
      if (now + n > opts.max_reading_bytes)
        return false;
    } while (!reading.compare_exchange_weak(now, now + n));
    return true;
  }
  void release_reading(std::size_t n) { reading.fetch_sub(n); }
  std::atomic<std::size_t> reading{0};

  /// Updates tocsin_http_connections; call with mtx held.
  void count_connections() {
    static auto& open = metrics::families::http_connections().with();
    open.set(static_cast<std::int64_t>(table.size()));
  }
};

/// A request as the handler sees it, from a parsed head (no body yet).
template <class Message>
request request_of(const Message& msg) {
  request req;
  req.method = std::string{msg.method_string()};
  req.target = std::string{msg.target()};
  req.content_type = std::string{msg[http::field::content_type]};
  req.authorization = std::string{msg[http::field::authorization]};
  req.idempotency_key = std::string{msg["Idempotency-Key"]};
  req.slack_signature = std::string{msg["X-Slack-Signature"]};
  req.slack_timestamp = std::string{msg["X-Slack-Request-Timestamp"]};
  req.pagerduty_signature = std::string{msg["X-PagerDuty-Signature"]};
  req.if_none_match = std::string{msg[http::field::if_none_match]};
  return req;
}

void count_refusal(int status) {
  metrics::families::http_refused_before_body()
      .with({std::to_string(status)})
      .add();
}

namespace websocket = beast::websocket;

/// One client of GET /v1/stream once upgraded: frames from its subscription
/// are written one at a time; what it sends is read and ignored (a close, or
/// nothing, ends it). A client that stops reading has its frames dropped by
/// the hub, and misses pings, which closes it: it costs its queue and
/// nothing else.
class stream_session : public std::enable_shared_from_this<stream_session> {
public:
  stream_session(beast::tcp_stream stream, stream_hub& hub)
      : ws_(std::move(stream)), hub_(hub) {}

  ~stream_session() {
    if (sub_)
      sub_->close();
  }

  void start(http::request<http::string_body> req, stream_filter filter,
             bool tocsin_protocol) {
    filter_ = std::move(filter);
    beast::get_lowest_layer(ws_).expires_never();
    auto timeouts =
        websocket::stream_base::timeout::suggested(beast::role_type::server);
    timeouts.idle_timeout = std::chrono::seconds{60}; // pings every 30 s
    ws_.set_option(timeouts);
    ws_.read_message_max(4096);
    ws_.set_option(websocket::stream_base::decorator(
        [tocsin_protocol](websocket::response_type& r) {
          r.set(http::field::server, "tocsin");
          if (tocsin_protocol)
            r.set(http::field::sec_websocket_protocol, "tocsin");
        }));
    ws_.text(true);
    ws_.async_accept(req, beast::bind_front_handler(&stream_session::on_accept,
                                                    shared_from_this()));
  }

private:
  void on_accept(beast::error_code ec) {
    if (ec)
      return;
    auto sub = hub_.subscribe(
        filter_, [weak = weak_from_this(), ex = ws_.get_executor()] {
          asio::post(ex, [weak] {
            if (auto self = weak.lock())
              self->pump();
          });
        });
    if (!sub) {
      ws_.async_close(
          websocket::close_reason{websocket::close_code::try_again_later,
                                  sub.error().message},
          [self = shared_from_this()](beast::error_code) {});
      return;
    }
    sub_ = std::move(*sub);
    read();
    pump();
  }

  void read() {
    ws_.async_read(
        in_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
          if (ec)
            return self->sub_->close(); // closed, gone or timed out
          self->in_.clear();
          self->read();
        });
  }

  void pump() {
    if (writing_ || !sub_ || sub_->closed())
      return;
    if (next_ >= batch_.size()) {
      batch_ = sub_->take();
      next_ = 0;
      if (batch_.empty())
        return; // the hub calls back when there is more
    }
    writing_ = true;
    auto frame = batch_[next_++];
    ws_.async_write(
        asio::buffer(*frame),
        [self = shared_from_this(), frame](beast::error_code ec, std::size_t) {
          self->writing_ = false;
          if (ec)
            return self->sub_->close();
          self->pump();
        });
  }

  websocket::stream<beast::tcp_stream> ws_;
  stream_hub& hub_;
  stream_filter filter_;
  std::shared_ptr<stream_subscription> sub_;
  beast::flat_buffer in_;
  std::vector<std::shared_ptr<const std::string>> batch_;
  std::size_t next_ = 0;
  bool writing_ = false;
};

class session : public std::enable_shared_from_this<session> {
public:
  session(tcp::socket socket, std::shared_ptr<server_shared> shared,
          connection_table::id_type id)
      : stream_(std::move(socket)), shared_(std::move(shared)), id_(id),
        answer_timer_(stream_.get_executor()) {}

  ~session() {
    release_reading();
    std::lock_guard guard{shared_->mtx};
    shared_->table.remove(id_);
    shared_->sessions.erase(id_);
    shared_->count_connections();
  }

  void start() {
    asio::dispatch(stream_.get_executor(),
                   beast::bind_front_handler(&session::wait_for_request,
                                             shared_from_this()));
  }

  auto get_executor() { return stream_.get_executor(); }

  /// Closes the connection, which left the table to make room for another
  /// (on its own strand). Whatever it was waiting for ends with an error;
  /// had it moved on meanwhile, enter() fails and it closes all the same.
  void evict() { close(); }

private:
  static constexpr std::size_t read_chunk = 4096;

  /// This connection is now in `phase`; false (and closed) when it was
  /// made to leave the table.
  bool enter(conn_phase phase) {
    bool in;
    {
      std::lock_guard guard{shared_->mtx};
      in = shared_->table.enter(id_, phase);
    }
    if (!in)
      close();
    return in;
  }

  void release_reading() {
    if (reading_)
      shared_->release_reading(reading_);
    reading_ = 0;
  }

  // -- idle: no request in progress ------------------------------------------

  void wait_for_request() {
    if (buffer_.size() > 0)
      return begin_request(); // pipelined: the next request is here already
    // A new connection is in phase head (the least progress) from the
    // start; one kept alive after an answer is idle until its next request.
    if (answered_ && !enter(conn_phase::idle))
      return;
    stream_.expires_after(shared_->opts.idle_timeout);
    stream_.async_read_some(
        buffer_.prepare(read_chunk),
        beast::bind_front_handler(&session::on_idle_read, shared_from_this()));
  }

  void on_idle_read(beast::error_code ec, std::size_t n) {
    if (ec)
      return close(); // idle too long, closed by the peer, or evicted
    buffer_.commit(n);
    begin_request();
  }

  // -- the head: request line and headers ------------------------------------

  void begin_request() {
    if (answered_ && !enter(conn_phase::head))
      return;
    auto now = clock_type::now();
    request_deadline_ = now + shared_->opts.request_timeout;
    head_deadline_ =
        std::min(now + shared_->opts.header_timeout, request_deadline_);
    scanned_ = 0;
    read_head();
  }

  std::string_view buffered() const {
    auto data = buffer_.data();
    return {static_cast<const char*>(data.data()), data.size()};
  }

  void read_head() {
    auto data = buffered();
    // Look again only where the end could have arrived since last time.
    auto from = scanned_ > 3 ? scanned_ - 3 : 0;
    if (auto end = find_head_end(data.substr(from)))
      return on_head(from + *end);
    scanned_ = data.size();
    if (data.size() >= shared_->opts.max_header_bytes)
      return reply(error_response(431, {"headers_too_large",
                                        "the request headers are too large"}),
                   false);
    stream_.expires_at(head_deadline_);
    stream_.async_read_some(
        buffer_.prepare(read_chunk),
        beast::bind_front_handler(&session::on_head_read, shared_from_this()));
  }

  void on_head_read(beast::error_code ec, std::size_t n) {
    if (ec)
      return close(); // too slow, or gone
    buffer_.commit(n);
    read_head();
  }

  void on_head(std::size_t end) {
    auto head = buffered().substr(0, end);
    if (head.size() > shared_->opts.max_header_bytes)
      return reply(error_response(431, {"headers_too_large",
                                        "the request headers are too large"}),
                   false);
    if (auto why = check_request_head(head))
      return bad_request(*why);
    parser_.emplace();
    parser_->header_limit(
        static_cast<std::uint32_t>(shared_->opts.max_header_bytes));
    // The body's limit is the route's: checked once the head is read.
    // (Not boost::none: Beast 1.74 compares a length with it as greater.)
    parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    beast::error_code ec;
    auto used = parser_->put(asio::buffer(head.data(), head.size()), ec);
    buffer_.consume(used);
    if (ec || !parser_->is_header_done())
      return bad_request(ec ? ec.message() : "incomplete head");
    if (parser_->is_done())
      return on_request();
    // A body is announced: the head decides whether any of it is read.
    std::optional<std::uint64_t> length;
    if (auto announced = parser_->content_length())
      length = *announced;
    auto verdict =
        shared_->handler.check_head(request_of(parser_->get()), length);
    if (verdict.refusal) {
      count_refusal(verdict.refusal->status);
      return reply(std::move(*verdict.refusal), false);
    }
    body_limit_ = verdict.body_limit;
    parser_->body_limit(body_limit_);
    if (length && !shared_->reserve_reading(*length)) {
      count_refusal(503);
      return overloaded();
    }
    reading_ = length.value_or(0);
    if (!enter(conn_phase::body))
      return;
    if (parser_->chunked())
      parser_->on_chunk_body(count_chunk_);
    parser_->eager(true);
    read_body();
  }

  /// A chunked body counts against server.max_reading_bytes as it comes
  /// (Beast has checked the route's limit already).
  std::size_t count_chunk(std::uint64_t, beast::string_view data,
                          beast::error_code& ec) {
    if (!shared_->reserve_reading(data.size())) {
      over_budget_ = true;
      ec = asio::error::no_buffer_space;
      return 0;
    }
    reading_ += data.size();
    parser_->get().body().append(data.data(), data.size());
    return data.size();
  }

  void read_body() {
    stream_.expires_at(request_deadline_);
    http::async_read_some(
        stream_, buffer_, *parser_,
        beast::bind_front_handler(&session::on_body, shared_from_this()));
  }

  void on_body(beast::error_code ec, std::size_t) {
    if (ec == http::error::body_limit)
      return too_large();
    if (ec == beast::error::timeout || ec == asio::error::connection_reset ||
        ec == asio::error::eof || ec == http::error::end_of_stream ||
        ec == http::error::partial_message ||
        ec == asio::error::operation_aborted ||
        ec == asio::error::bad_descriptor)
      return close();
    if (over_budget_)
      return overloaded();
    if (ec)
      return bad_request(ec.message());
    if (!parser_->is_done())
      return read_body();
    release_reading();
    on_request();
  }

  void too_large() {
    release_reading();
    reply(error_response(413, {"payload_too_large",
                               "the body exceeds " +
                                   std::to_string(body_limit_) + " bytes"}),
          false);
  }

  /// The bodies being read at once are at server.max_reading_bytes.
  void overloaded() {
    release_reading();
    reply(error_response(
              503, {"overloaded",
                    "too many request bodies are being read at once; retry "
                    "after the time in Retry-After"}),
          false);
  }

  void bad_request(const std::string& why) {
    reply(
        error_response(400, {"bad_request", "malformed HTTP request: " + why}),
        false);
  }

  // -- the answer
  // --------------------------------------------------------------

  void on_request() {
    if (!enter(conn_phase::busy))
      return;
    auto& msg = parser_->get();
    if (websocket::is_upgrade(msg))
      return upgrade();
    keep_alive_ = msg.keep_alive();
    auto req = request_of(msg);
    req.body = std::move(msg.body());
    head_ = req.method == "HEAD";
    // The answer may wait for a synced write, but not forever.
    stream_.expires_never();
    awaiting_answer_ = true;
    answer_timer_.expires_after(shared_->opts.request_timeout);
    answer_timer_.async_wait(beast::bind_front_handler(
        &session::on_answer_deadline, shared_from_this()));
    // The engine holds the answer callback until the request is durable;
    // it must not keep the connection (and its timers, which belong to the
    // server's io_context) alive: a connection already gone takes no answer.
    shared_->handler.handle(
        std::move(req), [weak = weak_from_this()](response resp) {
          if (auto self = weak.lock())
            asio::post(self->stream_.get_executor(),
                       [self, resp = std::move(resp)]() mutable {
                         self->on_answer(std::move(resp));
                       });
        });
  }

  /// A websocket upgrade: GET /v1/stream with a token and valid filters
  /// becomes a stream_session; anything else gets its error and the
  /// connection ends.
  void upgrade() {
    auto msg = parser_->release();
    request req;
    req.method = std::string{msg.method_string()};
    req.target = std::string{msg.target()};
    req.authorization = std::string{msg[http::field::authorization]};
    auto grant = shared_->handler.open_stream(
        req, msg[http::field::sec_websocket_protocol]);
    if (auto* refused = std::get_if<response>(&grant))
      return reply(std::move(*refused), false);
    auto& ok = std::get<request_handler::stream_grant>(grant);
    std::make_shared<stream_session>(std::move(stream_),
                                     *shared_->handler.stream())
        ->start(std::move(msg), std::move(ok.filter), ok.tocsin_protocol);
  }

  void on_answer(response resp) {
    if (!awaiting_answer_)
      return; // the deadline answered already
    awaiting_answer_ = false;
    answer_timer_.cancel();
    reply(std::move(resp), keep_alive_);
  }

  void on_answer_deadline(beast::error_code ec) {
    if (ec || !awaiting_answer_)
      return;
    awaiting_answer_ = false;
    reply(error_response(
              503, {"answer_timeout",
                    "no answer within server.request_timeout; the request "
                    "may still take effect: retry with the same "
                    "Idempotency-Key"}),
          false);
  }

  void reply(response resp, bool keep_alive) {
    response_.emplace();
    response_->version(11);
    response_->result(static_cast<unsigned>(resp.status));
    response_->set(http::field::server, "tocsin");
    response_->set(http::field::content_type, "application/json");
    for (auto& [k, v] : resp.headers)
      response_->set(k, v);
    response_->keep_alive(keep_alive);
    if (head_) {
      // The length the GET would have, and no body (RFC 9110, 9.3.2).
      response_->content_length(resp.body.size());
    } else {
      response_->body() = std::move(resp.body);
      response_->prepare_payload();
    }
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
    head_ = false;
    answered_ = true;
    wait_for_request();
  }

  // -- closing
  // -----------------------------------------------------------------

  /// After an answer that ends the connection (413, 400, ...) the client may
  /// still be sending its body: closing now would reset the connection and
  /// could destroy the answer in flight. Send FIN, then read and discard what
  /// still comes (bounded in bytes and time) before closing, as nginx does.
  void linger() {
    if (!enter(conn_phase::closing))
      return;
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
  connection_table::id_type id_;
  asio::steady_timer answer_timer_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::string_body>> response_;
  clock_type::time_point head_deadline_;
  clock_type::time_point request_deadline_;
  std::size_t scanned_ = 0;    ///< bytes of the head searched for its end
  std::size_t body_limit_ = 0; ///< the route's (check_head)
  std::size_t reading_ = 0;    ///< of server.max_reading_bytes, held
  bool answered_ = false;      ///< a request was answered, kept alive
  bool over_budget_ = false;   ///< a chunk found max_reading_bytes full
  std::function<std::size_t(std::uint64_t, beast::string_view,
                            beast::error_code&)>
      count_chunk_ = [this](std::uint64_t remain, beast::string_view data,
                            beast::error_code& ec) {
        return count_chunk(remain, data, ec);
      };
  bool awaiting_answer_ = false;
  bool keep_alive_ = false;
  bool head_ = false;
};

class server_impl final : public server {
public:
  server_impl(const server_options& opts, request_handler& handler)
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

  bool responsive(std::chrono::milliseconds timeout) override {
    auto ran = std::make_shared<std::promise<void>>();
    auto done = ran->get_future();
    asio::post(ioc_, [ran] { ran->set_value(); });
    return done.wait_for(timeout) == std::future_status::ready;
  }

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
    acceptor_.async_accept(asio::make_strand(ioc_),
                           [this](beast::error_code ec, tcp::socket socket) {
                             if (ec == asio::error::operation_aborted)
                               return;
                             if (!ec)
                               admit(std::move(socket));
                             accept();
                           });
  }

  /// Starts a session for a new connection, or closes it at once: past
  /// its address's bound, or at the cap with every connection busy. At the
  /// cap the connection with the least progress makes room.
  void admit(tcp::socket socket) {
    using metrics::families::http_connections_evicted;
    using metrics::families::http_connections_refused;
    auto id = next_id_++;
    auto address = address_of(socket);
    connection_table::admission in;
    std::shared_ptr<session> victim;
    {
      std::lock_guard guard{shared_->mtx};
      in = shared_->table.admit(id, address);
      if (in.evict) {
        if (auto it = shared_->sessions.find(*in.evict);
            it != shared_->sessions.end()) {
          victim = it->second.lock();
          shared_->sessions.erase(it);
        }
      }
      shared_->count_connections();
    }
    if (in.refused != connection_table::refusal::none) {
      http_connections_refused()
          .with({in.refused == connection_table::refusal::per_address
                     ? "per_address"
                     : "full"})
          .add();
      beast::error_code ignored;
      socket.close(ignored);
      return;
    }
    if (in.evict)
      http_connections_evicted()
          .with({std::string{to_string(in.evicted_phase)}})
          .add();
    if (victim) {
      auto executor = victim->get_executor();
      asio::post(executor, [victim = std::move(victim)] { victim->evict(); });
    }
    auto s = std::make_shared<session>(std::move(socket), shared_, id);
    {
      std::lock_guard guard{shared_->mtx};
      shared_->sessions[id] = s;
    }
    s->start();
  }

  /// The client's address: IPv4 also when it came as IPv4-mapped IPv6.
  static std::string address_of(const tcp::socket& socket) {
    beast::error_code ec;
    auto ep = socket.remote_endpoint(ec);
    if (ec)
      return {};
    auto a = ep.address();
    if (a.is_v6() && a.to_v6().is_v4_mapped())
      return asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6())
          .to_string();
    return a.to_string();
  }

  server_options opts_;
  std::shared_ptr<server_shared> shared_;
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  std::vector<std::thread> threads_;
  std::once_flag stopped_;
  std::string address_;
  connection_table::id_type next_id_ = 1; ///< the acceptor's only
};

} // namespace

result<std::unique_ptr<server>> start_server(const server_options& opts,
                                             request_handler& handler) {
  auto s = std::make_unique<server_impl>(opts, handler);
  if (auto st = s->listen(); !st)
    return st.error();
  return std::unique_ptr<server>{std::move(s)};
}

} // namespace tocsin::api
