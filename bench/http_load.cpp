#include <utility> // Asio 1.74 needs it before its own headers

#include "bench/http_load.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <memory>

#include <nlohmann/json.hpp>

namespace tocsin::bench {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using clock_type = std::chrono::steady_clock;

struct shared_state {
  const load_options& opts;
  load_result& result;
  int issued = 0;
  clock_type::time_point start = clock_type::now();
};

class connection : public std::enable_shared_from_this<connection> {
public:
  connection(asio::io_context& ioc, shared_state& shared, std::uint16_t port)
      : stream_(ioc), timer_(ioc), shared_(shared), port_(port) {
    req_.method(http::verb::post);
    req_.target(shared.opts.target);
    req_.version(11);
    req_.set(http::field::host, "127.0.0.1");
    if (!shared.opts.token.empty())
      req_.set(http::field::authorization, "Bearer " + shared.opts.token);
    req_.set(http::field::content_type, "application/json");
    req_.keep_alive(true);
    req_.body() = shared.opts.body;
    req_.prepare_payload();
  }

  void start() {
    tcp::endpoint ep{asio::ip::make_address("127.0.0.1"), port_};
    stream_.async_connect(
        ep, [self = shared_from_this()](beast::error_code ec) {
          if (ec)
            return self->fail("connect: " + ec.message());
          self->stream_.socket().set_option(tcp::no_delay(true));
          self->next();
        });
  }

private:
  void next() {
    if (shared_.issued >= shared_.opts.requests)
      return;
    auto index = shared_.issued++;
    index_ = index;
    if (shared_.opts.body_of) {
      req_.body() = shared_.opts.body_of(index);
      req_.prepare_payload();
    }
    sent_ = clock_type::now();
    if (shared_.opts.rate > 0) {
      auto due = shared_.start +
                 std::chrono::duration_cast<clock_type::duration>(
                     std::chrono::duration<double>(index / shared_.opts.rate));
      sent_ = due;
      if (due > clock_type::now()) {
        timer_.expires_at(due);
        timer_.async_wait(
            [self = shared_from_this()](beast::error_code) { self->write(); });
        return;
      }
    }
    write();
  }

  void write() {
    http::async_write(
        stream_, req_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) {
          if (ec)
            return self->fail("write: " + ec.message());
          self->read();
        });
  }

  void read() {
    res_ = {};
    http::async_read(
        stream_, buffer_, res_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) {
          if (ec)
            return self->fail("read: " + ec.message());
          self->on_response();
        });
  }

  void on_response() {
    shared_.result.answer_ms.push_back(
        std::chrono::duration<double, std::milli>(clock_type::now() - sent_)
            .count());
    if (static_cast<int>(res_.result_int()) != shared_.opts.expect_status) {
      ++shared_.result.failures;
      if (shared_.result.first_failure.empty())
        shared_.result.first_failure =
            std::to_string(res_.result_int()) + " " + res_.body();
    } else {
      auto answer = nlohmann::json::parse(res_.body(), nullptr, false);
      if (answer.is_object() && answer.contains("ids"))
        for (auto& id : answer["ids"])
          shared_.result.accepted.emplace_back(id.get<std::string>(), sent_);
      else
        shared_.result.accepted.emplace_back(std::to_string(index_), sent_);
    }
    next();
  }

  void fail(std::string what) {
    ++shared_.result.failures;
    if (shared_.result.first_failure.empty())
      shared_.result.first_failure = std::move(what);
  }

  beast::tcp_stream stream_;
  asio::steady_timer timer_;
  shared_state& shared_;
  std::uint16_t port_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> req_;
  http::response<http::string_body> res_;
  clock_type::time_point sent_;
  int index_ = 0;
};

} // namespace

load_result run_load(const load_options& opts) {
  load_result result;
  shared_state shared{opts, result};
  shared.start = clock_type::now();
  asio::io_context ioc{1};
  for (int i = 0; i < opts.connections; ++i) {
    auto port =
        opts.ports.empty()
            ? opts.port
            : opts.ports[static_cast<std::size_t>(i) % opts.ports.size()];
    std::make_shared<connection>(ioc, shared, port)->start();
  }
  ioc.run();
  return result;
}

} // namespace tocsin::bench
