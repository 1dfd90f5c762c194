#include "net/h2_session.hpp"

#include "common/encoding.hpp"
#include "net/request_writer.hpp"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <optional>
#include <unordered_map>

namespace tocsin::net {

namespace {

/// The connection's receive window: data is consumed as it arrives (kept
/// to keep_body_bytes, counted, discarded), so a wide window costs no
/// memory; it lets many streams answer at once without waiting for
/// WINDOW_UPDATEs. Each stream's own window stays at the default 64 KiB.
constexpr std::int32_t connection_window = 1 << 20;

/// Headers the client sets itself, or that HTTP/2 forbids (§8.2.2).
bool not_forwarded(std::string_view name) {
  constexpr std::array<std::string_view, 9> skip{
      "host",       "content-length",   "transfer-encoding", "connection",
      "keep-alive", "proxy-connection", "upgrade",           "te",
      "user-agent"};
  return std::any_of(skip.begin(), skip.end(), [&](std::string_view s) {
    return ascii_iequals(name, s);
  });
}

std::string lower(std::string_view s) {
  std::string out{s};
  for (auto& c : out)
    if (c >= 'A' && c <= 'Z')
      c = static_cast<char>(c - 'A' + 'a');
  return out;
}

nghttp2_nv make_nv(const std::string& name, const std::string& value) {
  // nghttp2 copies names and values (no NO_COPY flags).
  return nghttp2_nv{
      reinterpret_cast<std::uint8_t*>(const_cast<char*>(name.data())),
      reinterpret_cast<std::uint8_t*>(const_cast<char*>(value.data())),
      name.size(), value.size(), NGHTTP2_NV_FLAG_NONE};
}

std::string_view view(const std::uint8_t* p, std::size_t n) {
  return {reinterpret_cast<const char*>(p), n};
}

} // namespace

struct h2_session::impl {
  struct stream {
    std::string body; ///< request body still to send
    std::size_t body_sent = 0;
    bool sent = false; ///< its HEADERS went out
    bool reported = false;
    int status = 0;
    std::size_t head_bytes = 0;
    std::size_t drained = 0;
    std::optional<std::uint64_t> content_length;
    std::string body_prefix;
    std::string retry_after;
  };

  explicit impl(const response_limits& l) : limits(l) {
    nghttp2_session_callbacks* cbs = nullptr;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_on_header_callback(cbs, &impl::on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs,
                                                              &impl::on_data);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs,
                                                         &impl::on_frame_recv);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs,
                                                         &impl::on_frame_send);
    nghttp2_session_callbacks_set_on_stream_close_callback(
        cbs, &impl::on_stream_close);
    nghttp2_session_callbacks_set_error_callback2(cbs, &impl::on_error);
    nghttp2_option* opt = nullptr;
    nghttp2_option_new(&opt);
    // Our own header blocks stay within what a server takes by default.
    nghttp2_option_set_max_send_header_block_length(opt, 64 * 1024);
    nghttp2_session_client_new2(&session, cbs, this, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);

    // No pushes; header lists announced as bounded (and cut short here when
    // a server sends more anyway: on_header).
    std::array<nghttp2_settings_entry, 2> settings{{
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE,
         static_cast<std::uint32_t>(std::min<std::size_t>(
             limits.max_head_bytes, std::numeric_limits<std::int32_t>::max()))},
    }};
    (void)nghttp2_submit_settings(session, NGHTTP2_FLAG_NONE, settings.data(),
                                  settings.size());
    (void)nghttp2_session_set_local_window_size(session, NGHTTP2_FLAG_NONE, 0,
                                                connection_window);
  }

  ~impl() { nghttp2_session_del(session); }

  static impl& self(void* user_data) { return *static_cast<impl*>(user_data); }

  stream* find(std::int32_t id) {
    auto it = streams.find(id);
    return it == streams.end() ? nullptr : &it->second;
  }

  void report(std::int32_t id, stream& s, h2_result::outcome kind,
              std::string error = {}) {
    if (s.reported)
      return;
    s.reported = true;
    h2_result r;
    r.kind = kind;
    r.status = kind == h2_result::outcome::answered ? s.status : 0;
    if (kind == h2_result::outcome::answered) {
      r.body_prefix = std::move(s.body_prefix);
      r.retry_after = std::move(s.retry_after);
    }
    r.error = std::move(error);
    results.emplace_back(id, std::move(r));
    s.body = {}; // nothing more goes out for it (read_body)
    s.body_sent = 0;
  }

  /// The stream ends here, before its answer is complete: the status stands
  /// if it came; the rest is refused with RST_STREAM(CANCEL).
  void stop(std::int32_t id, stream& s, std::string why) {
    if (s.reported)
      return;
    report(id, s,
           s.status != 0 ? h2_result::outcome::answered
                         : h2_result::outcome::failed,
           std::move(why));
    (void)nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, id,
                                    NGHTTP2_CANCEL);
  }

  std::string over_drain() const {
    return "body over " + std::to_string(limits.max_drain_bytes) +
           " bytes: not read";
  }

  static int on_header(nghttp2_session*, const nghttp2_frame* frame,
                       const std::uint8_t* name, std::size_t namelen,
                       const std::uint8_t* value, std::size_t valuelen,
                       std::uint8_t, void* user_data) {
    auto& me = self(user_data);
    if (frame->hd.type != NGHTTP2_HEADERS)
      return 0;
    auto id = frame->hd.stream_id;
    auto* s = me.find(id);
    if (!s || s->reported)
      return 0;
    // What RFC 9113 counts against SETTINGS_MAX_HEADER_LIST_SIZE, over all
    // the stream's header blocks (interim ones and trailers too).
    s->head_bytes += namelen + valuelen + 32;
    if (s->head_bytes > me.limits.max_head_bytes) {
      me.stop(id, *s,
              "response headers over " +
                  std::to_string(me.limits.max_head_bytes) + " bytes");
      return 0;
    }
    auto n = view(name, namelen);
    auto v = view(value, valuelen);
    if (n == ":status") {
      // nghttp2 has checked it is three digits; 1xx are interim.
      int code = 0;
      for (char c : v)
        code = code * 10 + (c - '0');
      if (code >= 200)
        s->status = code;
    } else if (n == "retry-after" && s->retry_after.empty()) {
      s->retry_after.assign(v.substr(0, 256));
    } else if (n == "content-length") {
      std::uint64_t len = 0;
      for (char c : v.substr(0, 19))
        len = len * 10 + static_cast<std::uint64_t>(c - '0');
      s->content_length = len;
    }
    return 0;
  }

  static int on_data(nghttp2_session*, std::uint8_t, std::int32_t id,
                     const std::uint8_t* data, std::size_t len,
                     void* user_data) {
    auto& me = self(user_data);
    auto* s = me.find(id);
    if (!s || s->reported)
      return 0;
    auto keep = me.limits.keep_body_bytes;
    if (s->body_prefix.size() < keep)
      s->body_prefix.append(
          view(data, std::min(len, keep - s->body_prefix.size())));
    s->drained += len;
    if (s->drained > me.limits.max_drain_bytes)
      me.stop(id, *s, me.over_drain());
    return 0;
  }

  static int on_frame_recv(nghttp2_session*, const nghttp2_frame* frame,
                           void* user_data) {
    auto& me = self(user_data);
    auto id = frame->hd.stream_id;
    if (frame->hd.type == NGHTTP2_SETTINGS &&
        !(frame->hd.flags & NGHTTP2_FLAG_ACK)) {
      me.got_settings = true;
      return 0;
    }
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
      return 0;
    auto* s = me.find(id);
    if (!s || s->reported || s->status == 0)
      return 0;
    if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
      me.report(id, *s, h2_result::outcome::answered);
    else if (s->content_length &&
             *s->content_length > me.limits.max_drain_bytes)
      me.stop(id, *s, me.over_drain()); // not worth reading
    return 0;
  }

  static int on_frame_send(nghttp2_session*, const nghttp2_frame* frame,
                           void* user_data) {
    if (frame->hd.type == NGHTTP2_HEADERS)
      if (auto* s = self(user_data).find(frame->hd.stream_id))
        s->sent = true;
    return 0;
  }

  static int on_stream_close(nghttp2_session*, std::int32_t id,
                             std::uint32_t code, void* user_data) {
    auto& me = self(user_data);
    auto it = me.streams.find(id);
    if (it == me.streams.end())
      return 0;
    auto& s = it->second;
    using outcome = h2_result::outcome;
    if (s.status != 0)
      me.report(id, s, outcome::answered,
                code == NGHTTP2_NO_ERROR ? std::string{}
                                         : std::string{"stream reset: "} +
                                               nghttp2_http2_strerror(code));
    else if (code == NGHTTP2_REFUSED_STREAM || !s.sent)
      me.report(id, s, outcome::refused);
    else
      me.report(id, s, outcome::failed,
                code == NGHTTP2_NO_ERROR
                    ? std::string{"stream closed before a response"}
                    : std::string{"stream reset: "} +
                          nghttp2_http2_strerror(code));
    me.streams.erase(it);
    return 0;
  }

  static int on_error(nghttp2_session*, int, const char* msg, std::size_t len,
                      void* user_data) {
    auto& me = self(user_data);
    if (me.last_error.empty())
      me.last_error.assign(msg, std::min<std::size_t>(len, 256));
    return 0;
  }

  static ssize_t read_body(nghttp2_session*, std::int32_t id, std::uint8_t* buf,
                           std::size_t length, std::uint32_t* flags,
                           nghttp2_data_source*, void* user_data) {
    auto* s = self(user_data).find(id);
    if (!s || s->reported || s->body_sent >= s->body.size()) {
      // Ended (its answer came, or it was cancelled): nothing more of it.
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      return 0;
    }
    auto n = std::min(length, s->body.size() - s->body_sent);
    std::memcpy(buf, s->body.data() + s->body_sent, n);
    s->body_sent += n;
    if (s->body_sent == s->body.size()) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      s->body = {};
      s->body_sent = 0;
    }
    return static_cast<ssize_t>(n);
  }

  /// Every stream not reported yet ends now.
  void end_all(std::string_view why) {
    for (auto& [id, s] : streams) {
      if (s.status != 0)
        report(id, s, h2_result::outcome::answered, std::string{why});
      else if (!s.sent)
        report(id, s, h2_result::outcome::refused);
      else
        report(id, s, h2_result::outcome::failed, std::string{why});
    }
  }

  void fail_connection(std::string why) {
    if (broken)
      return;
    broken = true;
    error = std::move(why);
    end_all(error);
  }

  response_limits limits;
  nghttp2_session* session = nullptr;
  std::unordered_map<std::int32_t, stream> streams;
  std::vector<std::pair<std::int32_t, h2_result>> results;
  bool got_settings = false;
  bool broken = false;
  std::string error;
  std::string last_error; ///< nghttp2's own words on a protocol error
};

h2_session::h2_session(const response_limits& limits)
    : impl_(std::make_unique<impl>(limits)) {}

h2_session::~h2_session() = default;

std::int32_t h2_session::submit(const outbound_request& req,
                                std::string_view user_agent) {
  if (!accepting())
    return 0;
  auto& headers = req.headers;
  // Every string outlives nghttp2_submit_request, which copies them.
  std::vector<std::pair<std::string, std::string>> fields{
      {":method", req.method},
      {":scheme", "https"},
      {":authority", req.target.authority()},
      {":path", req.target.target},
  };
  std::string agent{user_agent};
  for (auto& [name, value] : headers)
    if (ascii_iequals(name, "user-agent"))
      agent = value;
  fields.emplace_back("user-agent", agent);
  for (std::size_t i = 0; i < headers.size(); ++i)
    if (!not_forwarded(headers[i].first) && !replaced_later(headers, i))
      fields.emplace_back(lower(headers[i].first), headers[i].second);
  bool with_length = !req.body.empty() || req.method == "POST" ||
                     req.method == "PUT" || req.method == "OPTIONS";
  if (with_length)
    fields.emplace_back("content-length", std::to_string(req.body.size()));
  std::vector<nghttp2_nv> nva;
  nva.reserve(fields.size());
  for (auto& [name, value] : fields)
    nva.push_back(make_nv(name, value));

  nghttp2_data_provider body;
  body.source.ptr = nullptr;
  body.read_callback = &impl::read_body;
  auto id =
      nghttp2_submit_request(impl_->session, nullptr, nva.data(), nva.size(),
                             req.body.empty() ? nullptr : &body, nullptr);
  if (id <= 0)
    return 0;
  impl_->streams[id].body = req.body;
  return id;
}

void h2_session::cancel(std::int32_t stream_id, std::string_view why) {
  if (auto* s = impl_->find(stream_id))
    impl_->stop(stream_id, *s, std::string{why});
}

void h2_session::ping() {
  (void)nghttp2_submit_ping(impl_->session, NGHTTP2_FLAG_NONE, nullptr);
}

bool h2_session::receive(std::string_view bytes) {
  if (impl_->broken)
    return false;
  auto rv = nghttp2_session_mem_recv(
      impl_->session, reinterpret_cast<const std::uint8_t*>(bytes.data()),
      bytes.size());
  if (rv < 0) {
    impl_->fail_connection(std::string{"protocol error: "} +
                           nghttp2_strerror(static_cast<int>(rv)));
    return false;
  }
  return true;
}

void h2_session::output(std::string& out, std::size_t max) {
  while (!impl_->broken && out.size() < max) {
    const std::uint8_t* data = nullptr;
    auto n = nghttp2_session_mem_send(impl_->session, &data);
    if (n < 0) {
      impl_->fail_connection(std::string{"protocol error: "} +
                             nghttp2_strerror(static_cast<int>(n)));
      return;
    }
    if (n == 0)
      return;
    out.append(reinterpret_cast<const char*>(data),
               static_cast<std::size_t>(n));
  }
}

void h2_session::lost(std::string_view why) {
  // nghttp2 ended the session itself (it sent GOAWAY on a protocol error):
  // its own words say more than the socket's.
  std::string reason{why};
  if (!impl_->last_error.empty())
    reason += " (" + impl_->last_error + ")";
  impl_->fail_connection(std::move(reason));
}

std::vector<std::pair<std::int32_t, h2_result>> h2_session::take_results() {
  return std::exchange(impl_->results, {});
}

bool h2_session::accepting() const {
  return !impl_->broken &&
         nghttp2_session_check_request_allowed(impl_->session) != 0 &&
         nghttp2_session_want_read(impl_->session) != 0;
}

bool h2_session::alive() const {
  return !impl_->broken && (nghttp2_session_want_read(impl_->session) != 0 ||
                            nghttp2_session_want_write(impl_->session) != 0);
}

std::size_t h2_session::open_streams() const {
  return impl_->streams.size();
}

std::size_t h2_session::max_streams() const {
  if (!impl_->got_settings)
    return 1;
  return std::min<std::size_t>(
      max_streams_cap,
      nghttp2_session_get_remote_settings(
          impl_->session, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS));
}

bool h2_session::settings_received() const {
  return impl_->got_settings;
}

const std::string& h2_session::error() const {
  return impl_->error;
}

} // namespace tocsin::net
