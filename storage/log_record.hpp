// The stored form of the event log's records. Readers see every record as
// JSON text ({"seq":..,"at":..,"kind":.., <fields>}); the store keeps the
// records it writes most — a delivery's steps and outcomes, an event's
// acceptance — in a compact binary form and writes the JSON of the others
// as it is. The binary form is rendered to exactly the JSON it stands for
// when read, so that what the log says does not depend on how it is kept.
#pragma once

#include "storage/record_kind.hpp"
#include "storage/records.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tocsin::storage {

/// How a record's fields are kept.
enum class log_form : char {
  json = '{',             ///< the fields as JSON object text
  delivery_change = 'd',  ///< a delivery's new state (binary)
  delivery_outcome = 'o', ///< delivered, dead-lettered, retry scheduled
  event_accepted = 'e',   ///< an event and its deliveries
};

/// The fields of a record of `kind` about `d`'s new state, compact: the
/// delivery without the attempts the record does not show (its last one,
/// when the kind carries one).
std::string compact_delivery_change(const delivery& d, record_kind kind);
/// The fields of an outcome record: the delivery's ids and reason.
std::string compact_delivery_outcome(const delivery& d);
/// The fields of "event.accepted": the event id and its deliveries' ids.
std::string compact_event_accepted(const event_record& e);

/// The value stored for a record: `fields` is JSON object text for
/// log_form::json, else what the compact_* function of that form made.
std::string stored_log_record(std::uint64_t seq, unix_ms at, record_kind kind,
                              log_form form, std::string_view fields);

/// The JSON text of a stored record; nothing when it cannot be read.
/// `scratch` holds the rendered text of a binary one (the view points
/// into it); a JSON one is returned as stored.
std::optional<std::string_view> render_log_record(std::uint64_t seq,
                                                  std::string_view stored,
                                                  std::string& scratch);

/// When a stored record was written; nothing when it cannot be read.
std::optional<unix_ms> log_record_at(std::string_view stored);

} // namespace tocsin::storage
