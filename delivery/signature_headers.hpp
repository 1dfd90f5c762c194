// The generic webhook transport: the event payload, signed per Standard
// Webhooks, POSTed to the endpoint URL.
#pragma once

#include "delivery/signing.hpp"
#include "net/http_types.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tocsin::delivery {

struct webhook_message {
  std::string_view msg_id;  ///< webhook-id: the event id, stable across retries
  std::int64_t timestamp;   ///< webhook-timestamp: Unix seconds of this attempt
  std::string_view payload; ///< the JSON body
};

/// webhook-id, webhook-timestamp and webhook-signature for `msg` (whose
/// payload is the exact body sent). Each key adds one signature to the
/// space-separated webhook-signature header, in key order: "v1,..." for an
/// HMAC-SHA256 key, "v1a,..." for an Ed25519 key (several during a rotation,
/// possibly of both schemes).
std::vector<std::pair<std::string, std::string>>
signature_headers(const webhook_message& msg,
                  const std::vector<signing_key>& keys);

} // namespace tocsin::delivery
