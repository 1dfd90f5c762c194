#include "common/json_writer.hpp"

#include "common/encoding.hpp"

#include <charconv>
#include <cmath>

namespace tocsin {

json_writer& json_writer::value(double v) {
  separate();
  if (!std::isfinite(v)) {
    out_ += "null";
    return *this;
  }
  // The shortest text that reads back as the same double.
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  out_.append(buf, end);
  return *this;
}

json_writer& json_writer::value(std::int64_t v) {
  separate();
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  out_.append(buf, end);
  return *this;
}

// Strings from outside (response bodies cut at 1 KiB, error texts) may hold
// invalid UTF-8: each bad byte becomes U+FFFD so that the output stays JSON.
void json_writer::append_string(std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  out_ += '"';
  std::size_t run = 0; // start of the plain characters not yet copied
  for (std::size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\')
      continue;
    out_.append(s.data() + run, i - run);
    if (c >= 0x80) {
      auto n = utf8_sequence_length(s, i);
      if (n == 0) {
        out_ += "\\ufffd";
      } else {
        out_.append(s.data() + i, n);
        i += n - 1;
      }
    } else if (c == '"') {
      out_ += "\\\"";
    } else if (c == '\\') {
      out_ += "\\\\";
    } else if (c == '\b') { // short escapes as nlohmann::json writes them
      out_ += "\\b";
    } else if (c == '\f') {
      out_ += "\\f";
    } else if (c == '\n') {
      out_ += "\\n";
    } else if (c == '\r') {
      out_ += "\\r";
    } else if (c == '\t') {
      out_ += "\\t";
    } else {
      out_ += "\\u00";
      out_ += hex[c >> 4];
      out_ += hex[c & 15];
    }
    run = i + 1;
  }
  out_.append(s.data() + run, s.size() - run);
  out_ += '"';
}

} // namespace tocsin
