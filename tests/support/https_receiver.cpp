// The only translation unit (with http_client.cpp) that pulls in Beast/Asio:
// they are expensive to compile, so headers stay Boost-free via pimpl.
#include <utility>

#include "tests/support/https_receiver.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <cstdio>
#include <cstring>
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

#include <nghttp2/nghttp2.h>

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
  std::size_t arrived = 0; ///< received + refused: the responder's index
  std::size_t refused = 0;
  std::size_t max_open_streams = 0; ///< on one HTTP/2 connection
  std::size_t client_resets = 0;
  std::vector<std::weak_ptr<session_base>> sessions;

  // Returns the request's index: recording and numbering happen under one
  // lock so indices match arrival order even with several io threads.
  std::size_t record(const received_request& req) {
    std::size_t index;
    {
      std::lock_guard lock{mutex};
      index = arrived++;
      keep_locked(req);
    }
    cv.notify_all();
    return index;
  }

  // HTTP/2: the index comes first (the responder decides whether the
  // stream is processed at all), then keep() or refuse().
  std::size_t arrive() {
    std::lock_guard lock{mutex};
    return arrived++;
  }

  void keep(const received_request& req) {
    {
      std::lock_guard lock{mutex};
      keep_locked(req);
    }
    cv.notify_all();
  }

  void refuse() {
    {
      std::lock_guard lock{mutex};
      ++refused;
    }
    cv.notify_all();
  }

  void keep_locked(const received_request& req) {
    ++received;
    if (opts.keep_requests)
      requests.push_back(req);
  }

  // The responder's answer, a 500 if it throws.
  canned_response answer(const received_request& rec, std::size_t index) {
    if (!respond)
      return {};
    try {
      return respond(rec, index);
    } catch (const std::exception& e) {
      canned_response answer;
      answer.status = 500;
      answer.body = std::string("responder threw: ") + e.what();
      return answer;
    }
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
  rec.protocol = "http/1.1";
  return rec;
}

void stamp(received_request& rec) {
  rec.at = std::chrono::steady_clock::now();
  rec.unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
}

using tls_stream = beast::ssl_stream<beast::tcp_stream>;

std::shared_ptr<session_base> start_h2_session(core& c, tls_stream&& stream);

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
    if constexpr (is_tls) {
      const unsigned char* alpn = nullptr;
      unsigned len = 0;
      SSL_get0_alpn_selected(stream_.native_handle(), &alpn, &len);
      if (std::string_view{reinterpret_cast<const char*>(alpn), len} == "h2") {
        // The connection is served over HTTP/2 from here on.
        start_h2_session(core_, std::move(stream_));
        return;
      }
    }
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
    stamp(rec);
    if (!core_.opts.webhook_secret.empty())
      rec.signature_valid =
          verify_standard_webhook(core_.opts.webhook_secret, rec);
    const std::size_t index = core_.record(rec);
    canned_response answer = core_.answer(rec, index);
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

// One HTTP/2 connection (nghttp2's server side), on its strand: a read
// loop feeding the session, a write loop sending what it produces, and each
// stream answered on its own (its delay a timer of its own).
class h2_session final : public session_base,
                         public std::enable_shared_from_this<h2_session> {
public:
  h2_session(core& c, tls_stream&& stream)
      : core_(c), stream_(std::move(stream)) {}

  ~h2_session() override { nghttp2_session_del(session_); }

  void start() {
    nghttp2_session_callbacks* cbs = nullptr;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs,
                                                            &on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, &on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, &on_data);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, &on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs,
                                                           &on_stream_close);
    nghttp2_session_server_new(&session_, cbs, this);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_settings_entry settings{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS,
                                    core_.opts.max_concurrent_streams};
    (void)nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, &settings, 1);
    beast::get_lowest_layer(stream_).expires_never();
    // Answers of independent streams go out as they come (no Nagle delay).
    beast::error_code ignored;
    beast::get_lowest_layer(stream_).socket().set_option(tcp::no_delay(true),
                                                         ignored);
    read_some();
    flush();
  }

  void force_close() override {
    beast::error_code ec;
    beast::get_lowest_layer(stream_).socket().shutdown(
        tcp::socket::shutdown_both, ec);
    beast::get_lowest_layer(stream_).close();
  }

private:
  struct stream_state {
    received_request rec;
    std::string body; ///< the answer's body, then...
    std::size_t sent = 0;
    std::size_t filler = 0; ///< ...this many filler bytes
    std::unique_ptr<net::steady_timer> delay;
  };

  static h2_session& self(void* p) { return *static_cast<h2_session*>(p); }

  static int on_begin_headers(nghttp2_session*, const nghttp2_frame* frame,
                              void* user_data) {
    if (frame->hd.type != NGHTTP2_HEADERS ||
        frame->headers.cat != NGHTTP2_HCAT_REQUEST)
      return 0;
    auto& me = self(user_data);
    me.streams_[frame->hd.stream_id].rec.protocol = "h2";
    std::lock_guard lock{me.core_.mutex};
    me.core_.max_open_streams =
        std::max(me.core_.max_open_streams, me.streams_.size());
    return 0;
  }

  static int on_header(nghttp2_session*, const nghttp2_frame* frame,
                       const std::uint8_t* name, std::size_t namelen,
                       const std::uint8_t* value, std::size_t valuelen,
                       std::uint8_t, void* user_data) {
    auto it = self(user_data).streams_.find(frame->hd.stream_id);
    if (it == self(user_data).streams_.end())
      return 0;
    auto& rec = it->second.rec;
    std::string n(reinterpret_cast<const char*>(name), namelen);
    std::string v(reinterpret_cast<const char*>(value), valuelen);
    if (n == ":method")
      rec.method = v;
    else if (n == ":path")
      rec.target = v;
    else if (n == ":authority")
      rec.headers["host"] = v; // as HTTP/1.1's Host
    else if (!n.empty() && n[0] != ':') {
      auto [h, inserted] = rec.headers.emplace(n, v);
      if (!inserted)
        h->second += ", " + v;
    }
    return 0;
  }

  static int on_data(nghttp2_session* session, std::uint8_t, std::int32_t id,
                     const std::uint8_t* data, std::size_t len,
                     void* user_data) {
    auto it = self(user_data).streams_.find(id);
    if (it == self(user_data).streams_.end())
      return 0;
    auto& body = it->second.rec.body;
    if (body.size() + len > body_limit)
      return nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, id,
                                       NGHTTP2_REFUSED_STREAM);
    body.append(reinterpret_cast<const char*>(data), len);
    return 0;
  }

  static int on_frame_recv(nghttp2_session*, const nghttp2_frame* frame,
                           void* user_data) {
    if (frame->hd.type == NGHTTP2_RST_STREAM) {
      auto& c = self(user_data).core_;
      std::lock_guard lock{c.mutex};
      ++c.client_resets;
    }
    if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
        (frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
      self(user_data).on_request(frame->hd.stream_id);
    return 0;
  }

  static int on_stream_close(nghttp2_session*, std::int32_t id, std::uint32_t,
                             void* user_data) {
    self(user_data).streams_.erase(id); // a pending delay is cancelled
    return 0;
  }

  static ssize_t read_body(nghttp2_session*, std::int32_t id, std::uint8_t* buf,
                           std::size_t length, std::uint32_t* flags,
                           nghttp2_data_source*, void* user_data) {
    auto it = self(user_data).streams_.find(id);
    if (it == self(user_data).streams_.end()) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      return 0;
    }
    auto& st = it->second;
    std::size_t n = 0;
    if (st.sent < st.body.size()) {
      n = std::min(length, st.body.size() - st.sent);
      std::memcpy(buf, st.body.data() + st.sent, n);
      st.sent += n;
    } else {
      n = std::min(length, st.filler);
      std::memset(buf, 'x', n);
      st.filler -= n;
    }
    if (st.sent == st.body.size() && st.filler == 0)
      *flags |= NGHTTP2_DATA_FLAG_EOF;
    return static_cast<ssize_t>(n);
  }

  // A whole request came on stream `id`: the responder decides.
  void on_request(std::int32_t id) {
    auto it = streams_.find(id);
    if (it == streams_.end() || core_.stopped)
      return;
    if (goaway_last_ && id > *goaway_last_) {
      // Past the GOAWAY (nghttp2 drops it once the frame is out): not
      // processed, the client sends it again elsewhere.
      core_.refuse();
      return;
    }
    auto& st = it->second;
    stamp(st.rec);
    if (!core_.opts.webhook_secret.empty())
      st.rec.signature_valid =
          verify_standard_webhook(core_.opts.webhook_secret, st.rec);
    auto index = core_.arrive();
    canned_response answer = core_.answer(st.rec, index);
    if (answer.goaway || answer.refuse_stream) {
      core_.refuse();
      if (answer.goaway) {
        // Streams below this one (and any already processed) complete;
        // this one and later ones are refused: the client may send them
        // again on another connection.
        auto last = std::max(id - 2, processed_);
        goaway_last_ = last;
        if (last >= id)
          (void)nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id,
                                          NGHTTP2_REFUSED_STREAM);
        (void)nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, last,
                                    NGHTTP2_NO_ERROR, nullptr, 0);
      } else {
        (void)nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id,
                                        NGHTTP2_REFUSED_STREAM);
      }
      return;
    }
    processed_ = std::max(processed_, id);
    core_.keep(st.rec);
    if (answer.drop_connection) {
      dropped_ = true;
      return force_close(); // the stream (and any other) left open
    }
    if (answer.status < 200 || answer.status == 204 || answer.status == 304) {
      answer.body.clear();
      answer.stream_bytes = 0;
    }
    if (answer.delay.count() > 0) {
      st.delay = std::make_unique<net::steady_timer>(stream_.get_executor());
      st.delay->expires_after(answer.delay);
      st.delay->async_wait([self = shared_from_this(), id,
                            answer = std::move(answer)](beast::error_code ec) {
        if (!ec)
          self->respond(id, answer);
      });
      return;
    }
    respond(id, answer);
  }

  void respond(std::int32_t id, const canned_response& answer) {
    auto it = streams_.find(id);
    if (it == streams_.end() || dropped_)
      return; // the client reset it meanwhile
    auto& st = it->second;
    std::vector<std::pair<std::string, std::string>> fields{
        {":status", std::to_string(answer.status)}};
    bool typed = false;
    for (const auto& [name, value] : answer.headers) {
      std::string n = name;
      std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) {
        return static_cast<char>(std::tolower(c));
      });
      typed = typed || n == "content-type";
      fields.emplace_back(std::move(n), value);
    }
    if (!typed)
      fields.emplace_back("content-type", "text/plain");
    if (answer.stream_bytes == 0)
      fields.emplace_back("content-length", std::to_string(answer.body.size()));
    std::vector<nghttp2_nv> nva;
    for (auto& [n, v] : fields)
      nva.push_back({reinterpret_cast<std::uint8_t*>(n.data()),
                     reinterpret_cast<std::uint8_t*>(v.data()), n.size(),
                     v.size(), NGHTTP2_NV_FLAG_NONE});
    st.body = answer.body;
    st.filler = answer.stream_bytes;
    nghttp2_data_provider body;
    body.source.ptr = nullptr;
    body.read_callback = &read_body;
    bool has_body = !st.body.empty() || st.filler > 0;
    (void)nghttp2_submit_response(session_, id, nva.data(), nva.size(),
                                  has_body ? &body : nullptr);
    if (answer.close_connection) {
      goaway_last_ = std::max(id, processed_);
      (void)nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, *goaway_last_,
                                  NGHTTP2_NO_ERROR, nullptr, 0);
    }
    flush();
  }

  void read_some() {
    stream_.async_read_some(
        net::buffer(buffer_),
        [self = shared_from_this()](beast::error_code ec, std::size_t n) {
          self->on_read(ec, n);
        });
  }

  void on_read(beast::error_code ec, std::size_t n) {
    if (ec || dropped_ || core_.stopped)
      return; // the client went (or was dropped): the session ends
    auto rv = nghttp2_session_mem_recv(
        session_, reinterpret_cast<const std::uint8_t*>(buffer_.data()), n);
    if (rv < 0)
      return force_close();
    flush();
    if (!dropped_)
      read_some();
  }

  void flush() {
    if (writing_ || dropped_ || closing_)
      return;
    out_.clear();
    while (out_.size() < 64 * 1024) {
      const std::uint8_t* data = nullptr;
      auto n = nghttp2_session_mem_send(session_, &data);
      if (n <= 0)
        break;
      out_.append(reinterpret_cast<const char*>(data),
                  static_cast<std::size_t>(n));
    }
    if (out_.empty()) {
      if (!nghttp2_session_want_read(session_) &&
          !nghttp2_session_want_write(session_))
        close(); // GOAWAY sent and every stream done
      return;
    }
    writing_ = true;
    net::async_write(
        stream_, net::buffer(out_),
        [self = shared_from_this()](beast::error_code ec, std::size_t) {
          self->writing_ = false;
          if (!ec)
            self->flush();
        });
  }

  void close() {
    if (closing_)
      return;
    closing_ = true;
    // GOAWAY is sent and every stream answered. Not a TLS shutdown (it
    // reads, and this session's read is pending: two reads at once on one
    // stream), and not a close: bytes of the client's still unread would
    // make it a reset, which can destroy answers not yet read on the
    // client's side. A FIN after the last answer, then the read loop runs
    // on to the client's end (or the deadline), as nginx's lingering close.
    auto& tcp = beast::get_lowest_layer(stream_);
    tcp.expires_after(shutdown_timeout);
    beast::error_code ignored;
    tcp.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  core& core_;
  tls_stream stream_;
  nghttp2_session* session_ = nullptr;
  std::array<char, 16 * 1024> buffer_{};
  std::map<std::int32_t, stream_state> streams_;
  std::string out_;
  bool writing_ = false;
  bool dropped_ = false;
  bool closing_ = false;
  std::int32_t processed_ = 0;              ///< the highest stream processed
  std::optional<std::int32_t> goaway_last_; ///< GOAWAY's last stream, once sent
};

std::shared_ptr<session_base> start_h2_session(core& c, tls_stream&& stream) {
  auto s = std::make_shared<h2_session>(c, std::move(stream));
  c.track(s);
  s->start();
  return s;
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

// ALPN: h2 when the client offers it, else HTTP/1.1 (or nothing).
int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen,
                const unsigned char* in, unsigned inlen, void*) {
  static constexpr unsigned char ours[] = "\x02h2\x08http/1.1";
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen, ours, sizeof(ours) - 1, in,
                            inlen) != OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
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
    if (c.opts.http2)
      SSL_CTX_set_alpn_select_cb(c.tls->native_handle(), &select_alpn, nullptr);
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

std::size_t https_receiver::refused() const {
  std::lock_guard lock{impl_->c.mutex};
  return impl_->c.refused;
}

std::size_t https_receiver::max_open_streams() const {
  std::lock_guard lock{impl_->c.mutex};
  return impl_->c.max_open_streams;
}

std::size_t https_receiver::client_resets() const {
  std::lock_guard lock{impl_->c.mutex};
  return impl_->c.client_resets;
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
