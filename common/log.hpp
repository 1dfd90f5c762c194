// Structured logging: one JSON object per line on stderr. Never pass secrets or
// tokens as fields.
#pragma once

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tocsin::log {

enum class level { debug, info, warn, error };

/// "debug", "info", "warn", "error".
std::optional<level> level_from(std::string_view name);

/// Records below `lvl` are not written (default: info).
void set_min_level(level lvl);
bool enabled(level lvl);

using field = std::pair<std::string_view, std::string>;

void write(level lvl, std::string_view msg,
           std::initializer_list<field> fields);
/// The same, with fields known only at run time.
void write(level lvl, std::string_view msg, const std::vector<field>& fields);

inline void debug(std::string_view msg, std::initializer_list<field> f = {}) {
  if (enabled(level::debug))
    write(level::debug, msg, f);
}
inline void info(std::string_view msg, std::initializer_list<field> f = {}) {
  write(level::info, msg, f);
}
inline void warn(std::string_view msg, std::initializer_list<field> f = {}) {
  write(level::warn, msg, f);
}
inline void error(std::string_view msg, std::initializer_list<field> f = {}) {
  write(level::error, msg, f);
}

/// Lets a recurring record through at most once per interval (a store that
/// refuses every write must not flood the log with one line per request),
/// counting the ones held back.
class throttle {
public:
  using clock = std::chrono::steady_clock;
  explicit throttle(clock::duration interval = std::chrono::seconds{10})
      : interval_{interval} {}

  /// Whether to write the record now; if so, `held_back()` says how many
  /// were not written since the last one.
  bool admit(clock::time_point now = clock::now()) {
    if (written_ && now - last_ < interval_) {
      ++held_;
      return false;
    }
    written_ = true;
    last_ = now;
    reported_ = held_;
    held_ = 0;
    return true;
  }
  std::uint64_t held_back() const { return reported_; }

private:
  clock::duration interval_;
  clock::time_point last_{};
  bool written_ = false;
  std::uint64_t held_ = 0;
  std::uint64_t reported_ = 0;
};

} // namespace tocsin::log
