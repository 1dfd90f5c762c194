// Validation of POST /v1/events bodies (DESIGN.md, "Events"): one event or
// {"events": [...]} of at most 1000, all-or-nothing, into normalized payloads.
#pragma once

#include "common/defaults.hpp"
#include "common/result.hpp"
#include "common/time.hpp"
#include "delivery/new_event.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tocsin::api {

inline constexpr std::size_t max_batch_events = 1000;

struct validation_options {
  /// e.g. "https://audit.example/receipts/{receipt_id}"; empty: no default
  /// link.
  std::string audit_url_template;
  /// The time of acceptance, for events without a timestamp.
  unix_ms now = 0;
  /// Payloads over this are cut here (new_event::payload), on the caller's
  /// thread, rather than on the ingest actor's.
  std::size_t max_payload_bytes = defaults::max_payload_bytes;
  /// Digest the whole request for its Idempotency-Key header.
  bool digest_request = false;
  /// A producer may set links.audit (server.allow_producer_links); when
  /// false, an event with links.audit is refused ("forbidden_field") and
  /// the link only ever comes from audit_url_template.
  bool allow_producer_links = false;
};

/// audit_url_template with each "{receipt_id}" replaced by `receipt_id`
/// percent-encoded (only RFC 3986's unreserved characters kept): a receipt
/// id cannot leave its place in the URL ("../", "?", "#").
std::string fill_audit_template(std::string_view tmpl,
                                std::string_view receipt_id);

/// Whether `key` may be an idempotency key: 1 to 256 printable ASCII
/// characters, no space (the Idempotency-Key header and the field alike).
bool is_valid_idempotency_key(std::string_view key);

/// Parses and validates a request body (strictly, see common/json_parse).
/// On success every event has a new time-ordered id and its normalized JSON
/// body; on failure the error names the offending field
/// ("events[3].summary").
result<delivery::ingest_batch> validate_events(std::string_view body,
                                               const validation_options& opts);

namespace detail {

/// The two ways validate_events reads a valid UTF-8 body, exposed so that
/// tests and the fuzzer hold them to the same answers. The first reads the
/// shape nearly every producer sends (fields without escapes, flat details)
/// without building a JSON document, and gives nothing for any other body
/// (or any it would refuse); the second reads every body through a document.
std::optional<delivery::ingest_batch>
read_plain_events(std::string_view body, const validation_options& opts);
result<delivery::ingest_batch>
validate_events_with_document(std::string_view body,
                              const validation_options& opts);

} // namespace detail

} // namespace tocsin::api
