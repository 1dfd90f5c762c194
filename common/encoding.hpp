// Byte encodings and digests used for signatures and token hashes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tocsin {

std::string base64_encode(std::string_view bytes);
/// Standard alphabet with padding; nullopt for anything else.
std::optional<std::string> base64_decode(std::string_view text);

/// Appends `v` as a base-128 varint, low bits first (7 bits a byte, the high
/// bit set on all but the last): the store's binary records use it. The
/// bytes go in with one append (a byte at a time took 0.9 % of the daemon's
/// CPU, perf, e2e_bench).
inline void append_varint(std::string& out, std::uint64_t v) {
  char bytes[10]; // a uint64 takes up to 10
  std::size_t n = 0;
  for (; v >= 0x80; v >>= 7)
    bytes[n++] = static_cast<char>((v & 0x7f) | 0x80);
  bytes[n++] = static_cast<char>(v);
  out.append(bytes, n);
}

std::string hex_encode(std::string_view bytes);
/// The value of a hex digit (either case), or -1.
int hex_digit(char c);

/// Raw 32-byte SHA-256 digest.
std::string sha256(std::string_view data);
/// Raw 32-byte HMAC-SHA256.
std::string hmac_sha256(std::string_view key, std::string_view data);

/// Compares in time independent of where the inputs differ.
bool constant_time_equal(std::string_view a, std::string_view b);

/// Equal but for the case of ASCII letters (header names, auth schemes).
bool ascii_iequals(std::string_view a, std::string_view b);

/// True if `s` is well-formed UTF-8 (no overlongs, surrogates or > U+10FFFF).
bool is_valid_utf8(std::string_view s);

/// Length of the well-formed UTF-8 sequence starting at s[i] (1 to 4), or 0
/// if none starts there.
std::size_t utf8_sequence_length(std::string_view s, std::size_t i);

/// Decodes %XX escapes, and '+' as a space (application/x-www-form-urlencoded
/// and query strings). A '%' without two hex digits stays as it is.
std::string percent_decode(std::string_view s);

/// Percent-encodes every byte but RFC 3986's unreserved characters
/// (A-Z a-z 0-9 - . _ ~), as "%2F": a value put into a URL cannot add a
/// path segment, a query or a fragment.
std::string percent_encode(std::string_view s);

/// What in `s` (valid UTF-8) could mislead whoever reads it, or nothing: a
/// C0 control character (U+0000 to U+001F; line feed and tab allowed when
/// `allow_lf_tab`), or a bidirectional override or isolate (U+202A to
/// U+202E, U+2066 to U+2069), which reorder what is shown. E.g. "control
/// character U+0007".
std::optional<std::string> deceptive_text(std::string_view s,
                                          bool allow_lf_tab);

/// The decoded value of the first `key` in "a=1&b=2" (a query string or a
/// form body), or nothing when the key is absent.
std::optional<std::string> form_value(std::string_view form,
                                      std::string_view key);

} // namespace tocsin
