// Talks to the service manager that started the daemon (systemd's Type=notify
// protocol, sd_notify(3)): ready, stopping, and watchdog keep-alives sent only
// while the daemon shows it is alive. Without a service manager listening
// (NOTIFY_SOCKET unset) nothing is sent and no thread runs.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

namespace tocsin::app {

/// Sends one notification (newline-separated "KEY=value" lines) to the
/// service manager; false only when one listens and the message failed.
using notification_sender = std::function<bool(std::string_view message)>;

/// sd_notify(3) to NOTIFY_SOCKET; true without doing anything when unset.
bool notify_service_manager(std::string_view message);

/// "READY=1" with `status` (systemctl status shows it): the store is open,
/// recovery is under way and the API listens.
void notify_ready(std::string_view status);
/// "STOPPING=1" with `status`: draining has begun.
void notify_stopping(std::string_view status);

/// Half of the watchdog timeout the service manager set for this process
/// (WatchdogSec=, passed as WATCHDOG_USEC and WATCHDOG_PID), the period of
/// the keep-alives; nothing when there is no watchdog.
std::optional<std::chrono::milliseconds> watchdog_interval();

/// Sends "WATCHDOG=1" once per interval, each time only after `alive`
/// answered yes within half an interval (so that a keep-alive is never
/// later than 3/4 of the watchdog timeout after the previous one). A daemon
/// whose API or engine hangs stops sending them, and the service manager
/// kills and restarts it.
class watchdog {
public:
  /// Whether the daemon does its work, found out within `timeout`.
  using probe = std::function<bool(std::chrono::milliseconds timeout)>;

  /// Starts the thread, which makes a first round at once.
  watchdog(std::chrono::milliseconds interval, probe alive,
           notification_sender send = notify_service_manager);
  /// Stops the thread (a round under way finishes first).
  ~watchdog();

  watchdog(const watchdog&) = delete;
  watchdog& operator=(const watchdog&) = delete;

  /// One round, as the thread makes it: probes and, if the daemon is alive,
  /// sends a keep-alive. True when one was sent. Thread-safe.
  bool round();

private:
  void run();

  std::chrono::milliseconds interval_;
  probe alive_;
  notification_sender send_;
  std::mutex round_mtx_;
  bool failing_ = false; ///< the last round found the daemon not alive
  std::mutex mtx_;       ///< for stop_
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
};

} // namespace tocsin::app
