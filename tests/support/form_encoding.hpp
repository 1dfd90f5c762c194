// application/x-www-form-urlencoded, as Slack sends its interactions: for
// the tests that play Slack.
#pragma once

#include <cctype>
#include <string>
#include <string_view>

namespace tocsin::test {

inline std::string form_encode(std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else if (c == ' ') {
      out += '+';
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

} // namespace tocsin::test
