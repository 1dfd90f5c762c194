// Keeps webhook payloads under delivery.max_payload_bytes: the largest
// `details` values are cut and "truncated": true is set; the event itself
// stays whole in the store (GET /v1/events/{id}).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace tocsin::delivery {

/// `event_json` itself if it fits in `max_bytes`, else a cut-down copy that
/// does (valid JSON, same fields, "truncated": true). Cuts the largest
/// `details` values first; if their keys alone are too many, drops details
/// members from the last; only if that is not enough, cuts the summary.
/// Linear in the size of the event.
std::string fit_payload(std::string_view event_json, std::size_t max_bytes);

} // namespace tocsin::delivery
