/* tocsin_plugin_util.h: small helpers for writing a transport plugin,
 * header-only. For C (static inline, C99, the C standard library only):
 * strings, UTF-8-safe cutting, failing a call, logging. For C++ (C++17,
 * namespace tocsin::plugin_util, the standard library only): the same with
 * std::string_view, plus counting and cutting by code points and decoding
 * UTF-8 strictly. Nothing here is part of the ABI: a plugin may copy, change
 * or ignore any of it.
 */
#ifndef TOCSIN_PLUGIN_UTIL_H
#define TOCSIN_PLUGIN_UTIL_H

#include "tocsin_plugin.h"

#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A NUL-terminated string as a tocsin_str (borrowing it). */
static inline tocsin_str tocsin_lit(const char* s) {
  tocsin_str r;
  r.ptr = s;
  r.len = s != NULL ? strlen(s) : 0;
  return r;
}

/* Whether `s` holds exactly the NUL-terminated string `lit`. */
static inline int tocsin_str_eq(tocsin_str s, const char* lit) {
  size_t n = strlen(lit);
  return s.len == n && (n == 0 || memcmp(s.ptr, lit, n) == 0);
}

/* The length of the longest prefix of `s` of at most `max_bytes` bytes that
 * ends on a UTF-8 character boundary (the host hands over valid UTF-8). */
static inline size_t tocsin_utf8_cut(tocsin_str s, size_t max_bytes) {
  size_t n;
  if (s.len <= max_bytes)
    return s.len;
  n = max_bytes;
  while (n > 0 && ((unsigned char)s.ptr[n] & 0xC0) == 0x80)
    --n;
  return n;
}

/* Records why the call failed and returns 1, for `return tocsin_fail(...)`
 * from open_endpoint or build_request. */
static inline int tocsin_fail(const tocsin_host_api* host, tocsin_call* call,
                              const char* code, const char* message) {
  host->set_error(call, tocsin_lit(code), tocsin_lit(message));
  return 1;
}

/* Writes a NUL-terminated line to the host's log (TOCSIN_LOG_*). */
static inline void tocsin_log_line(const tocsin_host* host, uint32_t level,
                                   const char* message) {
  if (host != NULL && host->log != NULL)
    host->log(host, level, tocsin_lit(message));
}

#ifdef __cplusplus
}

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace tocsin::plugin_util {

inline std::string_view view(tocsin_str s) {
  return s.ptr != nullptr ? std::string_view{s.ptr, s.len} : std::string_view{};
}

/// Borrows `s`: valid while `s` is.
inline tocsin_str str(std::string_view s) {
  return {s.data(), s.size()};
}

/// Records why the call failed and returns 1 (see tocsin_fail).
inline int fail(const tocsin_host_api* host, tocsin_call* call,
                std::string_view code, std::string_view message) {
  host->set_error(call, str(code), str(message));
  return 1;
}

/// Writes a line to the host's log (TOCSIN_LOG_*).
inline void log(const tocsin_host* host, std::uint32_t level,
                std::string_view message) {
  if (host != nullptr && host->log != nullptr)
    host->log(host, level, str(message));
}

/// "…", one code point (three bytes).
inline constexpr std::string_view ellipsis = "\xe2\x80\xa6";
inline constexpr char32_t replacement_character = 0xFFFD;

/// The code point at `i` (advancing `i` past it); U+FFFD for a byte that does
/// not start a well-formed sequence (overlong, surrogate, past U+10FFFF,
/// truncated), which is then skipped alone. For text from outside the host
/// (a receiver's answer); what the host hands over is valid UTF-8.
inline char32_t next_code_point(std::string_view s, std::size_t& i) {
  auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = b(i);
  if (c < 0x80) {
    ++i;
    return c;
  }
  std::size_t n;
  char32_t cp, min;
  if ((c & 0xE0) == 0xC0) {
    n = 2, cp = c & 0x1F, min = 0x80;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3, cp = c & 0x0F, min = 0x800;
  } else if ((c & 0xF8) == 0xF0) {
    n = 4, cp = c & 0x07, min = 0x10000;
  } else {
    ++i;
    return replacement_character;
  }
  if (i + n > s.size()) {
    ++i;
    return replacement_character;
  }
  for (std::size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) {
      ++i;
      return replacement_character;
    }
    cp = (cp << 6) | (b(i + k) & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    ++i;
    return replacement_character;
  }
  i += n;
  return cp;
}

/// Appends `cp` (at most U+10FFFF, no surrogate) as UTF-8.
inline void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

/// How many code points `s` has (each ill-formed byte counts as one).
inline std::size_t code_points(std::string_view s) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < s.size(); ++n)
    next_code_point(s, i);
  return n;
}

/// The longest prefix of `s` of at most `max_bytes` bytes that does not end
/// inside a UTF-8 sequence.
inline std::string_view cut_bytes(std::string_view s, std::size_t max_bytes) {
  if (s.size() <= max_bytes)
    return s;
  std::size_t end = max_bytes;
  while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80)
    --end;
  return s.substr(0, end);
}

/// Valid UTF-8 `s` cut to at most `max` (at least 1) code points, the last
/// one "…" when it was cut.
inline std::string cut_code_points(std::string_view s, std::size_t max) {
  if (code_points(s) <= max)
    return std::string{s};
  std::size_t i = 0;
  for (std::size_t kept = 0; kept + 1 < max && i < s.size(); ++kept)
    next_code_point(s, i);
  return std::string{s.substr(0, i)} + std::string{ellipsis};
}

/// `s` on one line: control characters (CR, LF, tab, DEL, ...) become
/// spaces.
inline std::string one_line(std::string_view s) {
  std::string out{s};
  for (auto& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
      c = ' ';
  return out;
}

} // namespace tocsin::plugin_util
#endif

#endif /* TOCSIN_PLUGIN_UTIL_H */
