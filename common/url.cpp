#include "common/url.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <cctype>

namespace tocsin {

namespace {

error bad(std::string message) {
  return error{"invalid_url", std::move(message), "url"};
}

bool is_ip_literal(const std::string& host) {
  unsigned char buf[16];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 ||
         inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

bool valid_hostname(std::string_view host) {
  if (host.empty() || host.size() > 253)
    return false;
  return std::all_of(host.begin(), host.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' ||
           c == '.' || c == '_';
  });
}

} // namespace

std::string url::authority() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  bool default_port =
      (scheme == "https" && port == 443) || (scheme == "http" && port == 80);
  return default_port ? h : h + ":" + std::to_string(port);
}

result<url> parse_url(std::string_view text) {
  for (unsigned char c : text)
    if (c <= 0x20 || c >= 0x7f)
      return bad("URL contains whitespace, control or non-ASCII characters");
  auto colon = text.find("://");
  if (colon == std::string_view::npos)
    return bad("URL must be absolute (scheme://host/path)");
  url u;
  u.scheme.assign(text.substr(0, colon));
  std::transform(u.scheme.begin(), u.scheme.end(), u.scheme.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  if (u.scheme != "https" && u.scheme != "http")
    return bad("URL scheme must be https");
  auto rest = text.substr(colon + 3);
  if (rest.find('#') != std::string_view::npos)
    return bad("URL must not contain a fragment");
  auto slash = rest.find_first_of("/?");
  auto authority = rest.substr(0, slash);
  u.target =
      slash == std::string_view::npos ? "/" : std::string{rest.substr(slash)};
  if (u.target.front() == '?')
    u.target.insert(u.target.begin(), '/');
  if (authority.find('@') != std::string_view::npos)
    return bad("URL must not contain credentials");
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos)
      return bad("unterminated IPv6 literal in URL");
    u.host.assign(authority.substr(1, close - 1));
    auto after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':')
        return bad("unexpected characters after IPv6 literal");
      port_text = after.substr(1);
    }
    if (!is_ip_literal(u.host) || u.host.find(':') == std::string::npos)
      return bad("invalid IPv6 literal in URL");
  } else {
    auto pc = authority.rfind(':');
    if (pc != std::string_view::npos) {
      port_text = authority.substr(pc + 1);
      authority = authority.substr(0, pc);
    }
    u.host.assign(authority);
    std::transform(u.host.begin(), u.host.end(), u.host.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    if (!valid_hostname(u.host))
      return bad("URL has an invalid host");
  }
  u.host_is_ip = is_ip_literal(u.host);
  if (port_text.empty()) {
    u.port = u.scheme == "https" ? 443 : 80;
  } else {
    if (port_text.size() > 5 ||
        !std::all_of(port_text.begin(), port_text.end(),
                     [](char c) { return c >= '0' && c <= '9'; }))
      return bad("URL has an invalid port");
    auto p = std::stoul(std::string{port_text});
    if (p == 0 || p > 65535)
      return bad("URL port out of range");
    u.port = static_cast<std::uint16_t>(p);
  }
  return u;
}

} // namespace tocsin
