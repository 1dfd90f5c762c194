// Debian's nginx as the HTTPS sink of the end-to-end benchmark: the sink the
// throughput targets were set with. Unlike the builtin receiver it costs
// little CPU (no signature checks, no request kept), so on a 2-core machine
// it leaves the daemon most of the other core. It answers every request 200
// with an empty body over keep-alive; what arrived, where and when is read
// back from its access log.
#pragma once

#include "tests/support/daemon_process.hpp"
#include "tests/support/test_ca.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <sys/types.h>

namespace tocsin::bench {

/// One request nginx logged that carried a webhook-id.
struct sink_arrival {
  std::string webhook_id;
  std::string path; ///< the endpoint's path, e.g. "/hook/3"
  /// When nginx logged it (at the end of the request), converted to
  /// steady_clock; nginx's $msec has millisecond resolution.
  std::chrono::steady_clock::time_point at;
};

class nginx_sink {
public:
  static constexpr const char* binary = "/usr/sbin/nginx";

  /// Writes nginx.conf into `dir` (every file nginx writes stays there:
  /// pid, logs, temp paths), starts nginx in the foreground with `workers`
  /// worker processes on a free loopback port serving `cert`, and waits until
  /// it accepts connections. Throws std::runtime_error, with nginx's own
  /// log, if it does not within 5 s. With `http2`, it offers h2 by ALPN
  /// (`listen ... ssl http2`), HTTP/1.1 to clients that do not take it.
  nginx_sink(const std::filesystem::path& dir, const test::pem_files& cert,
             int workers, bool http2 = false);
  /// Graceful stop (SIGQUIT: the workers flush the access log), SIGKILL to
  /// master and workers after 5 s.
  ~nginx_sink();

  nginx_sink(const nginx_sink&) = delete;
  nginx_sink& operator=(const nginx_sink&) = delete;

  std::uint16_t port() const { return port_; }
  int workers() const { return workers_; }
  /// "1.22.1", from `nginx -v`.
  const std::string& version() const { return version_; }

  /// User + system CPU seconds of the master and its workers so far
  /// (server_cpu_seconds).
  double cpu_seconds() const;

  /// The arrivals in access-log lines completed since the last call. nginx
  /// buffers the log and writes it at least once a second, so an arrival
  /// shows up here up to about a second after it happened (its time is when
  /// it happened). Requests without a webhook-id (the ceiling's) are left
  /// out.
  std::vector<sink_arrival> take_arrivals();

  /// nginx's stderr and error log (warnings and worse).
  std::string log() const { return process_.log(); }

private:
  void stop();
  std::vector<pid_t> worker_pids() const;
  bool wait_accepting(std::chrono::milliseconds timeout);
  /// $msec ("1795845697.570", wall clock) on steady_clock.
  std::chrono::steady_clock::time_point
  steady_time(std::string_view msec) const;

  std::filesystem::path access_log_;
  std::uint16_t port_;
  int workers_;
  std::string version_;
  test::daemon_process process_;
  // The wall clock and the steady clock at the same moment, taken once, to
  // put nginx's wall-clock times on the bench's steady clock.
  std::chrono::system_clock::time_point wall_at_start_;
  std::chrono::steady_clock::time_point steady_at_start_;
  std::uintmax_t log_read_ = 0; ///< bytes of the access log consumed
  std::string partial_line_;    ///< read, but its '\n' not written yet
};

} // namespace tocsin::bench
