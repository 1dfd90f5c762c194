#include "net/response_reader.hpp"

#include <limits>

#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>

namespace tocsin::net {

namespace http = boost::beast::http;
using boost::beast::error_code;
using boost::beast::string_view;

/// Beast's response parser with tocsin's body handling: the first bytes are
/// kept, the rest counted, and the count bounded.
struct response_reader::parser final : http::basic_parser<false> {
  parser(response_reader& r, const response_limits& limits)
      : reader(r), limits(limits) {
    header_limit(static_cast<std::uint32_t>(limits.max_head_bytes));
    // Bounded here, by max_drain_bytes. Not boost::none: Beast 1.74 compares
    // a Content-Length with an empty optional as "over the limit".
    body_limit(std::numeric_limits<std::uint64_t>::max());
  }

  void on_request_impl(http::verb, string_view, string_view, int,
                       error_code&) override {}

  void on_response_impl(int code, string_view, int, error_code& ec) override {
    if (code < 100) { // Beast takes any three digits, "011" too
      ec = http::error::bad_status;
      return;
    }
    reader.status_ = code;
  }

  void on_field_impl(http::field name, string_view, string_view value,
                     error_code&) override {
    if (name == http::field::retry_after && reader.retry_after_.empty())
      reader.retry_after_.assign(value.substr(0, 256));
  }

  void on_header_impl(error_code&) override {}

  void on_body_init_impl(const boost::optional<std::uint64_t>& length,
                         error_code& ec) override {
    if (length && *length > limits.max_drain_bytes) {
      drain_exceeded = true;
      ec = http::error::body_limit; // not worth reading: stop here
    }
  }

  std::size_t on_body_impl(string_view body, error_code& ec) override {
    return take(body, ec);
  }

  void on_chunk_header_impl(std::uint64_t, string_view, error_code&) override {}

  std::size_t on_chunk_body_impl(std::uint64_t, string_view body,
                                 error_code& ec) override {
    return take(body, ec);
  }

  void on_finish_impl(error_code&) override {}

  std::size_t take(string_view body, error_code& ec) {
    auto& prefix = reader.body_prefix_;
    if (prefix.size() < limits.keep_body_bytes)
      prefix.append(body.substr(0, limits.keep_body_bytes - prefix.size()));
    drained += body.size();
    if (drained > limits.max_drain_bytes) {
      drain_exceeded = true;
      ec = http::error::body_limit;
    }
    return body.size();
  }

  response_reader& reader;
  const response_limits& limits;
  std::size_t drained = 0;
  bool drain_exceeded = false;
};

namespace {

/// Interim (1xx) responses skipped before a final one; more is a misbehaving
/// receiver.
constexpr int max_interim_responses = 8;

/// "0\r\n\r\n": the least a chunked body still has to come.
constexpr std::size_t min_chunked_bytes = 5;

/// The status code of the status line at the start of `head` ("HTTP/1.1 200
/// OK\r\n..."), or 0. Beast parses nothing before the whole head is in, so
/// a head over the limit is read this far by hand.
int status_line_code(std::string_view head) {
  if (head.size() < 13 || head.substr(0, 7) != "HTTP/1." ||
      (head[7] != '0' && head[7] != '1') || head[8] != ' ' ||
      (head[12] != ' ' && head[12] != '\r'))
    return 0;
  int code = 0;
  for (int i = 9; i < 12; ++i) {
    if (head[static_cast<std::size_t>(i)] < '0' ||
        head[static_cast<std::size_t>(i)] > '9')
      return 0;
    code = code * 10 + (head[static_cast<std::size_t>(i)] - '0');
  }
  return code >= 100 ? code : 0;
}

} // namespace

response_reader::response_reader(const response_limits& limits)
    : limits_(limits) {
  start_parser();
}

response_reader::~response_reader() = default;
response_reader::response_reader(response_reader&&) noexcept = default;
response_reader&
response_reader::operator=(response_reader&&) noexcept = default;

void response_reader::start_parser() {
  parser_ = std::make_unique<parser>(*this, limits_);
  parser_->eager(true);
  status_ = 0;
  retry_after_.clear();
  body_prefix_.clear();
}

response_reader::state response_reader::on_parse_error(std::string what) {
  // Beast reads nothing of a head before all of it is in: a head cut short
  // or over the limit is read as far as its status line by hand.
  if (status_ == 0 && !parser_->is_header_done())
    status_ = status_line_code(pending_);
  error_ = std::move(what);
  // After the status line, the status decides: what follows it cannot
  // undo an answer the receiver gave.
  state_ = status_ != 0 ? state::stopped : state::failed;
  return state_;
}

response_reader::state response_reader::settle_header() {
  if (status_ >= 100 && status_ < 200 && status_ != 101) {
    if (++interim_ > max_interim_responses)
      return on_parse_error("more than " +
                            std::to_string(max_interim_responses) +
                            " interim (1xx) responses");
    start_parser(); // the final response follows
    return state::reading;
  }
  state_ = state::complete;
  return state_;
}

response_reader::state response_reader::feed(std::string_view bytes) {
  if (state_ != state::reading)
    return state_;
  if (!bytes.empty())
    got_some_ = true;
  pending_.append(bytes);
  while (!pending_.empty() && state_ == state::reading) {
    // Beast 1.74 asserts (debug builds) that a chunk header it has begun is
    // presented again with at least 5 bytes (found by fuzzing with 1-byte
    // reads); a chunked message cannot end in fewer, so wait for them.
    if (parser_->is_header_done() && parser_->chunked() &&
        pending_.size() < min_chunked_bytes)
      break;
    error_code ec;
    auto used = parser_->put(
        boost::asio::const_buffer{pending_.data(), pending_.size()}, ec);
    pending_.erase(0, used);
    if (ec == http::error::need_more) {
      // Only a line Beast cannot finish (a chunk header with endless
      // extensions, a head over the limit) waits here; bound it.
      if (pending_.size() > limits_.max_head_bytes) {
        return on_parse_error("a line longer than " +
                              std::to_string(limits_.max_head_bytes) +
                              " bytes");
      }
      break;
    }
    if (ec) {
      if (parser_->drain_exceeded)
        return on_parse_error("body over " +
                              std::to_string(limits_.max_drain_bytes) +
                              " bytes: not read");
      if (ec == http::error::header_limit) {
        return on_parse_error("response headers over " +
                              std::to_string(limits_.max_head_bytes) +
                              " bytes");
      }
      return on_parse_error("malformed response: " + ec.message());
    }
    if (parser_->is_done()) {
      if (settle_header() == state::complete) {
        trailing_bytes_ = !pending_.empty();
        pending_.clear();
      }
    } else if (used == 0) {
      break;
    }
  }
  return state_;
}

response_reader::state response_reader::finish() {
  if (state_ != state::reading)
    return state_;
  if (!parser_->got_some())
    return on_parse_error(got_some_ ? "connection closed after an interim "
                                      "response"
                                    : "connection closed before a response");
  error_code ec;
  parser_->put_eof(ec);
  if (ec)
    return on_parse_error("connection closed before the response ended");
  return settle_header();
}

response_reader::state response_reader::cut_short(std::string why) {
  if (state_ != state::reading)
    return state_;
  return on_parse_error(std::move(why));
}

bool response_reader::reusable() const {
  return state_ == state::complete && parser_->keep_alive() &&
         !parser_->need_eof() && !trailing_bytes_;
}

} // namespace tocsin::net
