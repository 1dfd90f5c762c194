/* tocsin_plugin_util.h: small helpers for writing a transport plugin in C,
 * header-only (static inline, C99, the C standard library only). Nothing
 * here is part of the ABI: a plugin may copy, change or ignore any of it.
 */
#ifndef TOCSIN_PLUGIN_UTIL_H
#define TOCSIN_PLUGIN_UTIL_H

#include "tocsin_plugin.h"

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
#endif

#endif /* TOCSIN_PLUGIN_UTIL_H */
