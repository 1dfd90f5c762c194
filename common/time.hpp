// Wall-clock time in the forms tocsin stores and prints: Unix milliseconds and
// RFC 3339 (UTC, millisecond precision).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tocsin {

/// Milliseconds since the Unix epoch.
using unix_ms = std::int64_t;

unix_ms now_ms();

/// "2026-11-27T05:10:00.123Z".
std::string format_rfc3339(unix_ms t);

/// Parses RFC 3339 date-time (any offset, optional fraction); nullopt if
/// invalid.
std::optional<unix_ms> parse_rfc3339(std::string_view s);

/// Parses an IMF-fixdate HTTP date ("Sun, 06 Nov 1994 08:49:37 GMT").
std::optional<unix_ms> parse_http_date(std::string_view s);

} // namespace tocsin
