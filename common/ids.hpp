// Time-ordered unique ids (ULID: 48-bit milliseconds + 80 random bits,
// Crockford base32), with a type prefix: "evt_01JD...", "dlv_01JD...".
#pragma once

#include "common/time.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace tocsin {

/// A new ULID, strictly greater than every ULID this process made before
/// (monotonic within a millisecond). Thread-safe.
std::string new_ulid();

/// prefix + "_" + new_ulid().
std::string new_id(std::string_view prefix);

/// True if `id` is prefix + "_" + 26 Crockford base32 characters.
bool is_valid_id(std::string_view id, std::string_view prefix);

/// The smallest id of new_id(prefix) that can be made at `at` or later:
/// ids sort by time, so seeking to it skips everything made before.
std::string id_floor(std::string_view prefix, unix_ms at);

/// When an id of new_id(prefix) was made (its ULID's milliseconds), or
/// nothing if it is not one.
std::optional<unix_ms> time_of_id(std::string_view id, std::string_view prefix);

} // namespace tocsin
