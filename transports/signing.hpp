// Standard Webhooks signatures: "v1,<base64 HMAC-SHA256(key,
// id.timestamp.body)>" where the key is the base64 part of a "whsec_..."
// secret.
#pragma once

#include "common/result.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace tocsin::transports {

/// The raw HMAC key of a "whsec_<base64>" secret; error "invalid_secret" when
/// the prefix or the base64 is wrong or the key is not 24 to 64 bytes long.
result<std::string> decode_webhook_secret(std::string_view secret);

/// "v1,<base64 signature>" for one message.
std::string sign_webhook(std::string_view key, std::string_view msg_id,
                         std::int64_t timestamp, std::string_view body);

} // namespace tocsin::transports
