// Array literals for parameters: how one statement carries a whole commit's
// rows (libpqxx 6.4 has no array parameters). Numbers go as they are; text
// is quoted with its quotes and backslashes escaped; bytes go hex-encoded
// ("\\x..."), which needs no escaping and holds NULs.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

namespace tocsin::storage::postgres {

class array_literal {
public:
  template <class N>
  requires std::is_arithmetic_v<N>
  void add(N v) {
    sep();
    out_ += std::to_string(v);
  }

  void add_text(std::string_view s) {
    sep();
    out_ += '"';
    for (char c : s) {
      if (c == '"' || c == '\\')
        out_ += '\\';
      out_ += c;
    }
    out_ += '"';
  }

  void add_bytes(std::string_view s) {
    static constexpr char hex[] = "0123456789abcdef";
    sep();
    out_.reserve(out_.size() + 2 * s.size() + 6);
    out_ += "\"\\\\x"; // the element \x..., its backslash escaped
    for (unsigned char c : s) {
      out_ += hex[c >> 4];
      out_ += hex[c & 15];
    }
    out_ += '"';
  }

  std::size_t size() const { return n_; }

  /// The literal ("{...}"); the object is empty again after.
  std::string take() {
    out_ += '}';
    auto s = std::move(out_);
    out_ = "{";
    n_ = 0;
    return s;
  }

private:
  void sep() {
    if (n_++ > 0)
      out_ += ',';
  }

  std::string out_ = "{";
  std::size_t n_ = 0;
};

} // namespace tocsin::storage::postgres
