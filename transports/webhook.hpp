// The generic webhook transport: the event payload, signed per Standard
// Webhooks, POSTed to the endpoint URL.
#pragma once

#include "transports/http_types.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tocsin::transports {

struct webhook_message {
  std::string_view msg_id;  ///< webhook-id: the event id, stable across retries
  std::int64_t timestamp;   ///< webhook-timestamp: Unix seconds of this attempt
  std::string_view payload; ///< the JSON body
};

/// Builds the signed request. `keys` are raw HMAC keys; each adds one
/// space-separated "v1," signature (several during a secret rotation).
outbound_request make_webhook_request(const tocsin::url& target,
                                      const webhook_message& msg,
                                      const std::vector<std::string>& keys);

} // namespace tocsin::transports
