#include "api/http_head.hpp"

#include "common/encoding.hpp"

#include <algorithm>

namespace tocsin::api {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

} // namespace

std::optional<std::size_t> find_head_end(std::string_view buffered) {
  auto end = buffered.find("\r\n\r\n");
  if (end == std::string_view::npos)
    return std::nullopt;
  return end + 4;
}

std::optional<std::string> check_request_head(std::string_view head) {
  auto eol = head.find("\r\n");
  if (eol == std::string_view::npos)
    return "the request line does not end with CRLF";
  auto request_line = head.substr(0, eol);
  bool http11 = request_line.size() >= 9 &&
                request_line.substr(request_line.size() - 9) == " HTTP/1.1";
  int hosts = 0, authorizations = 0, lengths = 0, encodings = 0;
  bool chunked_only = true;
  for (auto pos = eol + 2; pos < head.size();) {
    auto next = head.find("\r\n", pos);
    if (next == std::string_view::npos)
      next = head.size();
    auto line = head.substr(pos, next - pos);
    pos = next + 2;
    if (line.empty())
      break; // the end of the head
    if (line.front() == ' ' || line.front() == '\t')
      return std::string{"folded header lines (obs-fold) are not accepted"};
    auto colon = line.find(':');
    if (colon == std::string_view::npos)
      return std::string{"a header line without a colon"};
    auto name = line.substr(0, colon);
    if (name.empty() || name.back() == ' ' || name.back() == '\t')
      return std::string{"whitespace before a header field's colon"};
    auto value = trim(line.substr(colon + 1));
    if (ascii_iequals(name, "host")) {
      ++hosts;
    } else if (ascii_iequals(name, "authorization")) {
      ++authorizations;
    } else if (ascii_iequals(name, "content-length")) {
      ++lengths;
    } else if (ascii_iequals(name, "transfer-encoding")) {
      ++encodings;
      chunked_only = chunked_only && ascii_iequals(value, "chunked");
    }
  }
  if (encodings > 0 && (encodings > 1 || !chunked_only))
    return std::string{"Transfer-Encoding must be exactly \"chunked\""};
  if (encodings > 0 && lengths > 0)
    return std::string{"Transfer-Encoding together with Content-Length"};
  if (lengths > 1)
    return std::string{"more than one Content-Length"};
  if (http11 && hosts != 1)
    return std::string{hosts == 0 ? "an HTTP/1.1 request without Host"
                                  : "more than one Host"};
  if (hosts > 1)
    return std::string{"more than one Host"};
  if (authorizations > 1)
    return std::string{"more than one Authorization"};
  return std::nullopt;
}

} // namespace tocsin::api
