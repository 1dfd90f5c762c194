// Parsing of the absolute http(s) URLs that endpoints are configured with.
#pragma once

#include "common/result.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace tocsin {

struct url {
  std::string scheme; // "https" or "http", lower case
  std::string host;   // without brackets for IPv6 literals
  std::uint16_t port = 0;
  std::string target; // path and query, at least "/"
  bool host_is_ip = false;

  /// "host:port" as it goes into a Host header (brackets for IPv6).
  std::string authority() const;
};

/// Parses an absolute URL. Rejects userinfo, fragments, empty hosts, bad ports,
/// whitespace and control characters.
result<url> parse_url(std::string_view text);

} // namespace tocsin
