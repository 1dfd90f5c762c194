#include "storage/postgres/news.hpp"

#include "common/log.hpp"
#include "storage/postgres/store_impl.hpp"

#include <pqxx/pqxx>

#include <charconv>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace tocsin::storage::postgres {

namespace {

class receiver final : public pqxx::notification_receiver {
public:
  receiver(pqxx::connection_base& c, const std::string& channel,
           std::function<void(const std::string&)> fn)
      : notification_receiver(c, channel), fn_(std::move(fn)) {}

  void operator()(const std::string& payload, int) override { fn_(payload); }

private:
  std::function<void(const std::string&)> fn_;
};

/// A connection that only listens sends nothing, so it would never notice
/// a server gone without a word (its host lost, a partition): TCP
/// keepalive probes it after 10 s of quiet, every 5 s, and gives up after
/// 3 unanswered. (Not over a Unix socket, where the calls fail harmlessly.)
void probe_when_quiet(int fd) {
  int on = 1, idle = 10, interval = 5, count = 3;
  ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
}

} // namespace

news_listener::news_listener(std::string url, std::string name, handler fn)
    : url_(std::move(url)), name_(std::move(name)), fn_(std::move(fn)) {
  if (::pipe(wake_) != 0)
    throw std::system_error{errno, std::generic_category(), "pipe"};
  thread_ = std::thread{[this] { run(); }};
  std::unique_lock lock{mtx_};
  cv_.wait(lock, [&] { return started_; });
}

news_listener::~news_listener() {
  {
    std::lock_guard lock{mtx_};
    stopping_ = true;
  }
  cv_.notify_all();
  char byte = 0;
  (void)!::write(wake_[1], &byte, 1);
  thread_.join();
  ::close(wake_[0]);
  ::close(wake_[1]);
}

void news_listener::first_attempt_done() {
  {
    std::lock_guard lock{mtx_};
    started_ = true;
  }
  cv_.notify_all();
}

bool news_listener::wait_readable(int fd) {
  pollfd fds[2] = {{fd, POLLIN, 0}, {wake_[0], POLLIN, 0}};
  for (;;) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR)
        continue;
      throw std::system_error{errno, std::generic_category(), "poll"};
    }
    if (fds[1].revents != 0)
      return false;
    if (fds[0].revents != 0) // news, or the connection's end (POLLHUP/ERR)
      return true;
  }
}

void news_listener::run() {
  // Heard news may have been missed before a connection listens: when one
  // was lost, or the first could not be made.
  bool missed = false;
  bool quiet = false; // the failure to connect again was logged
  auto next = std::chrono::steady_clock::now();
  for (;;) {
    {
      std::unique_lock lock{mtx_};
      if (cv_.wait_until(lock, next, [&] { return stopping_; }))
        return;
    }
    // At most one attempt a second.
    next = std::chrono::steady_clock::now() + std::chrono::seconds{1};
    bool listening = false;
    try {
      listen_once(missed, listening);
      return; // stopped
    } catch (const std::exception& e) {
      if (listening) // a new outage
        quiet = false;
      if (!quiet)
        log::warn("PostgreSQL: the connection that hears other nodes' "
                  "commits was lost; trying again every second",
                  {{"error", store_failure(e).message}});
      quiet = true;
    }
    missed = true;
    first_attempt_done();
  }
}

void news_listener::listen_once(bool missed, bool& listening) {
  pqxx::connection c{url_};
  {
    pqxx::nontransaction t{c};
    t.exec_params("SELECT set_config('application_name', $1, false)", name_);
  }
  receiver log_channel{c, "tocsin_log", [&](const std::string& payload) {
                         std::uint64_t seq = 0;
                         auto end = payload.data() + payload.size();
                         auto [at, ec] =
                             std::from_chars(payload.data(), end, seq);
                         if (ec == std::errc{} && at == end)
                           fn_(cluster_news::log_advanced, seq);
                       }};
  receiver cluster_channel{c, "tocsin_cluster", [&](const std::string&) {
                             fn_(cluster_news::leases_released, 0);
                           }};
  // LISTEN failing for a broken connection is not thrown: asked here.
  if (!c.is_open())
    throw pqxx::broken_connection{"the connection broke as it began to "
                                  "listen"};
  probe_when_quiet(c.sock());
  if (missed) {
    std::uint64_t head = 0;
    {
      pqxx::nontransaction t{c};
      head = t.exec1("SELECT seq FROM tocsin_log_head")[0].as<std::uint64_t>();
    }
    log::warn("PostgreSQL: hearing other nodes' commits again");
    fn_(cluster_news::reconnected, head);
  }
  listening = true;
  first_attempt_done();
  for (;;) {
    if (c.sock() < 0 || !c.is_open())
      throw pqxx::broken_connection{"the listening connection was closed"};
    if (!wait_readable(c.sock()))
      return;
    c.get_notifs(); // throws when the connection is gone
  }
}

} // namespace tocsin::storage::postgres
