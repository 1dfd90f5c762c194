// Checks of a raw HTTP/1.1 request head that Beast 1.74 does not make. Beast
// is lenient where RFC 9112 says 400: a proxy in front of tocsin may read an
// ambiguous request differently from tocsin (request smuggling), so such
// requests are refused before Beast parses them. Pure functions of the bytes.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace tocsin::api {

/// Where the head in `buffered` ends (the offset just past the empty line
/// that closes it), or nothing while it is incomplete.
std::optional<std::size_t> find_head_end(std::string_view buffered);

/// Why the head must be refused with 400, or nothing. Refused: folded header
/// lines (obs-fold), a field name with whitespace before its colon, a
/// Transfer-Encoding other than exactly one "chunked", Transfer-Encoding
/// together with Content-Length, more than one Content-Length, an HTTP/1.1
/// request without exactly one Host, more than one Authorization.
std::optional<std::string> check_request_head(std::string_view head);

} // namespace tocsin::api
