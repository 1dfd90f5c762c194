// Structured logging: one JSON object per line on stderr. Never pass secrets or
// tokens as fields.
#pragma once

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

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

} // namespace tocsin::log
