// The bytes of an outbound request, as they go on the wire: written once, in
// one piece (one TLS record and one write for the whole request, no
// serializer walking header lists on the I/O thread). Sans-I/O.
#pragma once

#include "net/http_types.hpp"

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tocsin::net {

/// HTTP/1.1, keep-alive: the start line; Host (the target's authority);
/// User-Agent `user_agent` unless the request brings its own; the request's
/// headers in order, the last of a name given twice (names compared without
/// case); Content-Length when there is a body or the method carries one
/// (POST, PUT, OPTIONS); then the body. Host, Content-Length,
/// Transfer-Encoding and Connection are the client's to write: the
/// request's own are left out. Header names and values are as the
/// transport host checked them (tokens; no CR, LF or NUL).
std::string write_request(const outbound_request& req,
                          std::string_view user_agent);

/// Whether a later header of the same name (compared without case) replaces
/// headers[i]: of a name given twice, the last one goes out (HTTP/1.1 and
/// HTTP/2 alike).
bool replaced_later(
    const std::vector<std::pair<std::string, std::string>>& headers,
    std::size_t i);

} // namespace tocsin::net
