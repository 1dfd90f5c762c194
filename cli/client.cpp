#include "cli/client.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <optional>

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace tocsin::cli {

namespace {

using clock = std::chrono::steady_clock;

constexpr std::size_t max_header_bytes = 64 * 1024;

std::string lower(std::string_view s) {
  std::string out{s};
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) {
    return static_cast<char>(std::tolower(c));
  });
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

/// Milliseconds left until `deadline` for poll(), at least 0.
int ms_until(clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                  deadline - clock::now())
                  .count();
  return static_cast<int>(std::clamp<long long>(left, 0, 1 << 30));
}

class socket_fd {
public:
  explicit socket_fd(int fd = -1) : fd_(fd) {}
  ~socket_fd() {
    if (fd_ >= 0)
      ::close(fd_);
  }
  socket_fd(socket_fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  socket_fd& operator=(socket_fd&& other) noexcept {
    std::swap(fd_, other.fd_);
    return *this;
  }
  int get() const { return fd_; }

private:
  int fd_;
};

/// Waits until `fd` is ready for `events`; false on timeout.
bool wait_ready(int fd, short events, clock::time_point deadline) {
  for (;;) {
    pollfd pfd{fd, events, 0};
    int n = ::poll(&pfd, 1, ms_until(deadline));
    if (n > 0)
      return true;
    if (n == 0)
      return false;
    if (errno != EINTR)
      return true; // let the following call report the error
  }
}

/// Reads the response from a connected socket, buffering as it goes.
class response_reader {
public:
  response_reader(int fd, clock::time_point deadline, std::size_t limit,
                  const std::string& server)
      : fd_(fd), deadline_(deadline), limit_(limit), server_(server) {}

  /// Reads more bytes; sets eof() when the server closed.
  status more() {
    char chunk[16384];
    for (;;) {
      auto n = ::recv(fd_, chunk, sizeof(chunk), 0);
      if (n > 0) {
        if (buf_.size() - pos_ + static_cast<std::size_t>(n) >
            limit_ + max_header_bytes)
          return bad("response larger than " + std::to_string(limit_) +
                     " bytes");
        buf_.append(chunk, static_cast<std::size_t>(n));
        return {};
      }
      if (n == 0) {
        eof_ = true;
        return {};
      }
      if (errno == EINTR)
        continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK)
        return error{"io", "connection to " + server_ +
                               " broke: " + std::strerror(errno)};
      if (!wait_ready(fd_, POLLIN, deadline_))
        return error{"timeout", "no answer from " + server_ + " in time"};
    }
  }

  /// One line without its CRLF (a bare LF is accepted too).
  status line(std::string& out) {
    for (;;) {
      auto lf = buf_.find('\n', pos_);
      if (lf != std::string::npos) {
        auto end = lf > pos_ && buf_[lf - 1] == '\r' ? lf - 1 : lf;
        out.assign(buf_, pos_, end - pos_);
        pos_ = lf + 1;
        return {};
      }
      if (buf_.size() - pos_ > max_header_bytes)
        return bad("header line too long");
      if (eof_)
        return bad("connection closed in the middle of the header");
      if (auto s = more(); !s)
        return s;
    }
  }

  /// Exactly `n` bytes, appended to `out`.
  status exact(std::size_t n, std::string& out) {
    if (out.size() + n > limit_)
      return bad("response larger than " + std::to_string(limit_) + " bytes");
    while (buf_.size() - pos_ < n) {
      if (eof_)
        return bad("connection closed before the end of the body");
      if (auto s = more(); !s)
        return s;
    }
    out.append(buf_, pos_, n);
    pos_ += n;
    return {};
  }

  /// Everything until the server closes, appended to `out`.
  status rest(std::string& out) {
    while (!eof_)
      if (auto s = more(); !s)
        return s;
    if (out.size() + (buf_.size() - pos_) > limit_)
      return bad("response larger than " + std::to_string(limit_) + " bytes");
    out.append(buf_, pos_);
    pos_ = buf_.size();
    return {};
  }

  error bad(std::string what) const {
    return error{"bad_response",
                 "bad response from " + server_ + ": " + std::move(what)};
  }

private:
  int fd_;
  clock::time_point deadline_;
  std::size_t limit_;
  const std::string& server_;
  std::string buf_;
  std::size_t pos_ = 0;
  bool eof_ = false;
};

bool parse_size(std::string_view text, int base, std::size_t& out) {
  text = trim(text);
  auto [p, ec] =
      std::from_chars(text.data(), text.data() + text.size(), out, base);
  return ec == std::errc{} && p == text.data() + text.size() && !text.empty();
}

status read_chunked(response_reader& in, std::string& body) {
  std::string line;
  for (;;) {
    if (auto s = in.line(line); !s)
      return s;
    std::size_t size = 0;
    if (!parse_size(std::string_view{line}.substr(0, line.find(';')), 16, size))
      return in.bad("invalid chunk size");
    if (size == 0)
      break;
    if (auto s = in.exact(size, body); !s)
      return s;
    if (auto s = in.line(line); !s)
      return s;
    if (!line.empty())
      return in.bad("chunk not followed by CRLF");
  }
  // Trailer fields, up to the empty line.
  do {
    if (auto s = in.line(line); !s)
      return s;
  } while (!line.empty());
  return {};
}

/// Status line and header fields; interim 1xx responses are skipped.
status read_head(response_reader& in, http_response& res) {
  std::string line;
  for (;;) {
    if (auto s = in.line(line); !s)
      return s;
    // "HTTP/1.1 200 OK"
    std::size_t code = 0;
    if (line.size() < 12 || line.compare(0, 5, "HTTP/") != 0 ||
        line[8] != ' ' || (line.size() > 12 && line[12] != ' ') ||
        !parse_size(std::string_view{line}.substr(9, 3), 10, code) ||
        code < 100)
      return in.bad("invalid status line");
    res.status = static_cast<int>(code);
    res.headers.clear();
    for (;;) {
      if (auto s = in.line(line); !s)
        return s;
      if (line.empty())
        break;
      auto colon = line.find(':');
      if (colon == std::string::npos || colon == 0)
        return in.bad("invalid header field");
      if (res.headers.size() >= 1000)
        return in.bad("too many header fields");
      std::string_view field{line};
      res.headers.emplace_back(lower(field.substr(0, colon)),
                               std::string{trim(field.substr(colon + 1))});
    }
    if (res.status >= 200 || res.status == 101)
      return {};
  }
}

/// By Transfer-Encoding, Content-Length, or until the server closes.
status read_body(response_reader& in, const http_request& req,
                 http_response& res) {
  if (req.method == "HEAD" || res.status == 204 || res.status == 304)
    return {};
  auto coding = lower(trim(res.header("transfer-encoding")));
  if (!coding.empty()) {
    constexpr std::string_view chunked = "chunked";
    if (coding.size() >= chunked.size() &&
        coding.compare(coding.size() - chunked.size(), chunked.size(),
                       chunked) == 0)
      return read_chunked(in, res.body);
    return in.rest(res.body);
  }
  auto length = res.header("content-length");
  if (length.empty())
    return in.rest(res.body);
  std::size_t n = 0;
  if (!parse_size(length, 10, n))
    return in.bad("invalid Content-Length");
  return in.exact(n, res.body);
}

} // namespace

std::string http_response::header(std::string_view name) const {
  for (auto& [n, v] : headers)
    if (n == name)
      return v;
  return {};
}

std::string percent_encode(std::string_view s) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

result<api_client> api_client::make(std::string_view server,
                                    api_client_options opts) {
  while (!server.empty() && server.back() == '/')
    server.remove_suffix(1);
  auto u = parse_url(server);
  if (!u)
    return error{"bad_server", "invalid server URL " + std::string{server} +
                                   ": " + u.error().message};
  if (u->scheme != "http")
    return error{"bad_server", "the API speaks plain HTTP; use http:// for " +
                                   std::string{server}};
  if (u->target.find('?') != std::string::npos)
    return error{"bad_server", "the server URL must not have a query: " +
                                   std::string{server}};
  if (u->target == "/")
    u->target.clear();
  return api_client{std::string{server}, std::move(*u), opts};
}

result<http_response> api_client::request(const http_request& req) const {
  const auto deadline = clock::now() + opts_.timeout;
  auto unreachable = [&](std::string why) {
    return error{"connect", "cannot connect to " + server_ + ": " + why};
  };

  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  auto port = std::to_string(url_.port);
  if (int rc = ::getaddrinfo(url_.host.c_str(), port.c_str(), &hints, &found);
      rc != 0)
    return unreachable(rc == EAI_SYSTEM ? std::strerror(errno)
                                        : ::gai_strerror(rc));
  socket_fd sock;
  std::string why = "no address";
  const auto connect_deadline =
      std::min(deadline, clock::now() + opts_.connect_timeout);
  for (auto* ai = found; ai != nullptr && sock.get() < 0; ai = ai->ai_next) {
    socket_fd s{::socket(ai->ai_family,
                         ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                         ai->ai_protocol)};
    if (s.get() < 0) {
      why = std::strerror(errno);
      continue;
    }
    int rc = ::connect(s.get(), ai->ai_addr, ai->ai_addrlen);
    if (rc != 0 && errno != EINPROGRESS) {
      why = std::strerror(errno);
      continue;
    }
    if (rc != 0) {
      if (!wait_ready(s.get(), POLLOUT, connect_deadline)) {
        why = "timed out";
        continue;
      }
      int err = 0;
      socklen_t len = sizeof(err);
      if (::getsockopt(s.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = errno;
      if (err != 0) {
        why = std::strerror(err);
        continue;
      }
    }
    sock = std::move(s);
  }
  ::freeaddrinfo(found);
  if (sock.get() < 0)
    return unreachable(why);

  std::string out;
  out.reserve(256 + req.body.size());
  out += req.method + " " + url_.target + req.target + " HTTP/1.1\r\n";
  out += "Host: " + url_.authority() + "\r\n";
  for (auto& [name, value] : req.headers)
    out += name + ": " + value + "\r\n";
  out += "Content-Length: " + std::to_string(req.body.size()) + "\r\n";
  out += "Connection: close\r\n\r\n";
  out += req.body;

  // A server may answer early (413, 401) and close before taking the whole
  // body: a failed send still reads what came back.
  std::optional<error> send_error;
  for (std::size_t sent = 0; sent < out.size();) {
    auto n =
        ::send(sock.get(), out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
    if (n >= 0) {
      sent += static_cast<std::size_t>(n);
      continue;
    }
    if (errno == EINTR)
      continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      send_error = error{"io", "connection to " + server_ +
                                   " broke: " + std::strerror(errno)};
      break;
    }
    if (!wait_ready(sock.get(), POLLOUT, deadline))
      return error{"timeout",
                   "cannot send the request to " + server_ + " in time"};
  }

  response_reader in{sock.get(), deadline, opts_.max_response_bytes, server_};
  http_response res;
  if (auto s = read_head(in, res); !s)
    return send_error ? *send_error : s.error();
  if (auto s = read_body(in, req, res); !s)
    return s.error();
  return res;
}

} // namespace tocsin::cli
