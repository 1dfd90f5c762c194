#include "common/conninfo.hpp"

#include <algorithm>
#include <cctype>
#include <vector>

namespace tocsin {

namespace {

constexpr std::string_view mask = "***";

bool is_space(char c) {
  return std::isspace(static_cast<unsigned char>(c));
}

bool is_secret_key(std::string_view key) {
  return key == "password" || key == "sslpassword";
}

int hex_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/// %XX decoded, as libpq decodes a URL's parts; a bad escape stays as is.
std::string percent_decoded(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    int hi = 0, lo = 0;
    if (s[i] == '%' && i + 2 < s.size() && (hi = hex_value(s[i + 1])) >= 0 &&
        (lo = hex_value(s[i + 2])) >= 0) {
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

/// What scanning a connection string finds: its masked form and the
/// secrets it held (as written and as libpq would read them).
struct scanned {
  std::string masked;
  std::vector<std::string> secrets;

  void secret(std::string_view written, std::string read) {
    if (!written.empty())
      secrets.emplace_back(written);
    if (!read.empty() && read != written)
      secrets.push_back(std::move(read));
  }

  /// `head` as written, then a password (`written`, read as `read`)
  /// masked.
  void masked_after(std::string_view head, std::string_view written,
                    std::string read) {
    masked += head;
    masked += mask;
    secret(written, std::move(read));
  }
};

bool starts_with_nocase(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() &&
         std::equal(prefix.begin(), prefix.end(), s.begin(),
                    [](char a, char b) {
                      return std::tolower(static_cast<unsigned char>(a)) ==
                             std::tolower(static_cast<unsigned char>(b));
                    });
}

/// postgresql://[user[:password]@][hosts][/db][?key=value&...]
scanned scan_url(std::string_view s, std::size_t scheme_end) {
  scanned out;
  out.masked = std::string{s.substr(0, scheme_end)};
  auto rest = s.substr(scheme_end);
  // libpq ends the user part at the first '@' before any '/'. The last one
  // is taken here, and past a '/' too when there is no other: a password
  // with a raw '@' or '/' in it is still masked (libpq would not read it).
  auto slash = rest.find('/');
  auto at = rest.substr(0, slash).rfind('@');
  if (at == std::string_view::npos && slash != std::string_view::npos)
    at = rest.rfind('@');
  std::size_t query_from = 0;
  if (at != std::string_view::npos) {
    auto user = rest.substr(0, at);
    auto colon = user.find(':');
    if (colon != std::string_view::npos) {
      auto password = user.substr(colon + 1);
      out.masked_after(user.substr(0, colon + 1), password,
                       percent_decoded(password));
    } else {
      out.masked += user;
    }
    rest.remove_prefix(at);
    query_from = 1;
  }
  auto q = rest.find('?', query_from);
  out.masked += rest.substr(0, q);
  if (q == std::string_view::npos)
    return out;
  auto query = rest.substr(q + 1);
  for (char sep = '?';; sep = '&') {
    out.masked += sep;
    auto amp = query.find('&');
    auto param = query.substr(0, amp);
    auto eq = param.find('=');
    if (eq != std::string_view::npos &&
        is_secret_key(percent_decoded(param.substr(0, eq)))) {
      auto value = param.substr(eq + 1);
      out.masked_after(param.substr(0, eq + 1), value, percent_decoded(value));
    } else {
      out.masked += param;
    }
    if (amp == std::string_view::npos)
      return out;
    query.remove_prefix(amp + 1);
  }
}

/// key = value pairs separated by white space; a value single-quoted (with
/// \' and \\) or up to the next white space (with \ escaping a character).
scanned scan_pairs(std::string_view s) {
  scanned out;
  std::size_t i = 0;
  auto skip_space = [&] {
    while (i < s.size() && is_space(s[i]))
      ++i;
  };
  while (i < s.size()) {
    auto from = i;
    skip_space();
    auto key_from = i;
    while (i < s.size() && !is_space(s[i]) && s[i] != '=')
      ++i;
    auto key = s.substr(key_from, i - key_from);
    skip_space();
    if (i >= s.size() || s[i] != '=') {
      // Not a pair: libpq refuses the string. What follows could be
      // anything, a password among it.
      if (key_from < s.size())
        out.masked_after(s.substr(from, key_from - from), s.substr(key_from),
                         {});
      else
        out.masked += s.substr(from);
      return out;
    }
    ++i;
    skip_space();
    auto value_from = i;
    std::string value;
    if (i < s.size() && s[i] == '\'') {
      for (++i; i < s.size() && s[i] != '\''; ++i) {
        if (s[i] == '\\' && i + 1 < s.size())
          ++i;
        value += s[i];
      }
      if (i < s.size())
        ++i; // the closing quote
    } else {
      for (; i < s.size() && !is_space(s[i]); ++i) {
        if (s[i] == '\\' && i + 1 < s.size())
          ++i;
        value += s[i];
      }
    }
    auto head = s.substr(from, value_from - from);
    auto written = s.substr(value_from, i - value_from);
    if (is_secret_key(key)) {
      out.masked_after(head, written, std::move(value));
    } else {
      out.masked += head;
      out.masked += written;
    }
  }
  return out;
}

scanned scan(std::string_view conninfo) {
  for (std::string_view scheme : {"postgresql://", "postgres://"})
    if (starts_with_nocase(conninfo, scheme))
      return scan_url(conninfo, scheme.size());
  return scan_pairs(conninfo);
}

void replace_all(std::string& text, std::string_view what,
                 std::string_view with) {
  if (what.empty())
    return;
  for (auto at = text.find(what); at != std::string::npos;
       at = text.find(what, at + with.size()))
    text.replace(at, what.size(), with);
}

} // namespace

std::string mask_password(std::string_view conninfo) {
  return scan(conninfo).masked;
}

std::string hide_password(std::string_view text, std::string_view conninfo) {
  auto found = scan(conninfo);
  std::string out{text};
  if (found.secrets.empty())
    return out;
  replace_all(out, conninfo, found.masked);
  // Longest first: a shorter secret may be part of a longer one.
  std::sort(found.secrets.begin(), found.secrets.end(),
            [](auto& a, auto& b) { return a.size() > b.size(); });
  for (auto& s : found.secrets)
    replace_all(out, s, mask);
  return out;
}

} // namespace tocsin
