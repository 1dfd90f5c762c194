#include "app/service_manager.hpp"

#include "common/log.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>

#include <systemd/sd-daemon.h>

namespace tocsin::app {

namespace {

void notify_or_warn(std::string_view message, std::string_view what) {
  if (!notify_service_manager(message))
    log::warn("cannot notify the service manager",
              {{"notification", std::string{what}}});
}

/// STATUS= takes one line.
std::string one_line(std::string_view text) {
  std::string s{text};
  for (auto& c : s)
    if (c == '\n' || c == '\r')
      c = ' ';
  return s;
}

} // namespace

bool notify_service_manager(std::string_view message) {
  // 0: no NOTIFY_SOCKET (not run by a service manager), > 0: sent.
  return ::sd_notify(0, std::string{message}.c_str()) >= 0;
}

void notify_ready(std::string_view status) {
  notify_or_warn("READY=1\nSTATUS=" + one_line(status), "READY=1");
}

void notify_stopping(std::string_view status) {
  notify_or_warn("STOPPING=1\nSTATUS=" + one_line(status), "STOPPING=1");
}

std::optional<std::chrono::milliseconds> watchdog_interval() {
  std::uint64_t usec = 0;
  // > 0 only when WATCHDOG_USEC is set and WATCHDOG_PID, if set, is ours.
  int enabled = ::sd_watchdog_enabled(0, &usec);
  if (enabled < 0)
    log::warn("the service manager's watchdog settings cannot be read; no "
              "keep-alives are sent",
              {{"error", std::strerror(-enabled)}});
  if (enabled <= 0 || usec == 0)
    return std::nullopt;
  // At least a millisecond: a timeout under 2 ms would give a zero period.
  return std::max(std::chrono::milliseconds{1},
                  std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::microseconds{usec / 2}));
}

watchdog::watchdog(std::chrono::milliseconds interval, probe alive,
                   notification_sender send)
    : interval_(interval), alive_(std::move(alive)), send_(std::move(send)),
      thread_([this] { run(); }) {}

watchdog::~watchdog() {
  {
    std::lock_guard g{mtx_};
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

bool watchdog::round() {
  std::lock_guard g{round_mtx_};
  auto timeout = std::max(std::chrono::milliseconds{1}, interval_ / 2);
  if (!alive_(timeout)) {
    if (!failing_)
      log::warn("not alive: no watchdog keep-alive sent (the service manager "
                "restarts tocsin if this lasts)",
                {{"probe_timeout_ms", std::to_string(timeout.count())}});
    failing_ = true;
    return false;
  }
  if (failing_)
    log::info("alive again: watchdog keep-alives resumed");
  failing_ = false;
  if (!send_("WATCHDOG=1")) {
    log::warn("cannot send the watchdog keep-alive to the service manager");
    return false;
  }
  return true;
}

void watchdog::run() {
  std::unique_lock lock{mtx_};
  while (!stop_) {
    lock.unlock();
    round();
    lock.lock();
    wake_.wait_for(lock, interval_, [this] { return stop_; });
  }
}

} // namespace tocsin::app
