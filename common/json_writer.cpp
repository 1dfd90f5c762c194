#include "common/json_writer.hpp"

#include "common/encoding.hpp"

#include <cmath>
#include <cstdio>

namespace tocsin {

json_writer& json_writer::value(double v) {
  separate();
  if (!std::isfinite(v)) {
    out_ += "null";
    return *this;
  }
  char buf[32];
  auto n = std::snprintf(buf, sizeof(buf), "%.17g", v);
  // Shortest form for the common case of a few decimals.
  for (int precision = 6; precision < 17; ++precision) {
    char shorter[32];
    auto m = std::snprintf(shorter, sizeof(shorter), "%.*g", precision, v);
    if (std::strtod(shorter, nullptr) == v) {
      out_.append(shorter, static_cast<std::size_t>(m));
      return *this;
    }
  }
  out_.append(buf, static_cast<std::size_t>(n));
  return *this;
}

// Strings from outside (response bodies cut at 1 KiB, error texts) may hold
// invalid UTF-8: each bad byte becomes U+FFFD so that the output stays JSON.
void json_writer::append_string(std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  out_ += '"';
  for (std::size_t i = 0; i < s.size(); ++i) {
    char ch = s[i];
    auto c = static_cast<unsigned char>(ch);
    if (c >= 0x80) {
      auto n = utf8_sequence_length(s, i);
      if (n == 0) {
        out_ += "\\ufffd";
      } else {
        out_.append(s.substr(i, n));
        i += n - 1;
      }
      continue;
    }
    switch (c) {
    case '"':
      out_ += "\\\"";
      break;
    case '\\':
      out_ += "\\\\";
      break;
    case '\n':
      out_ += "\\n";
      break;
    case '\r':
      out_ += "\\r";
      break;
    case '\t':
      out_ += "\\t";
      break;
    default:
      if (c < 0x20) {
        out_ += "\\u00";
        out_ += hex[c >> 4];
        out_ += hex[c & 15];
      } else {
        out_ += ch;
      }
    }
  }
  out_ += '"';
}

} // namespace tocsin
