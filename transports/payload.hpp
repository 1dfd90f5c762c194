// Keeps webhook payloads under delivery.max_payload_bytes: the largest
// `details` values are cut and "truncated": true is set; the event itself
// stays whole in the store (GET /v1/events/{id}).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace tocsin::transports {

/// `event_json` itself if it fits in `max_bytes`, else a cut-down copy that
/// does (valid JSON, same fields, "truncated": true). Cuts the largest
/// `details` values first, then, only if that is not enough, the summary.
std::string fit_payload(std::string_view event_json, std::size_t max_bytes);

} // namespace tocsin::transports
