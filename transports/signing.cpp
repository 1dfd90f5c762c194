#include "transports/signing.hpp"

#include "common/encoding.hpp"

namespace tocsin::transports {

result<std::string> decode_webhook_secret(std::string_view secret) {
  constexpr std::string_view prefix = "whsec_";
  if (secret.substr(0, prefix.size()) != prefix)
    return error{"invalid_secret", "secret must start with whsec_", "secret"};
  auto key = base64_decode(secret.substr(prefix.size()));
  if (!key)
    return error{"invalid_secret", "secret is not valid base64 after whsec_",
                 "secret"};
  if (key->size() < 24 || key->size() > 64)
    return error{"invalid_secret", "secret key must be 24 to 64 bytes",
                 "secret"};
  return std::move(*key);
}

std::string sign_webhook(std::string_view key, std::string_view msg_id,
                         std::int64_t timestamp, std::string_view body) {
  std::string signed_content;
  auto ts = std::to_string(timestamp);
  signed_content.reserve(msg_id.size() + ts.size() + body.size() + 2);
  signed_content.append(msg_id).append(1, '.').append(ts).append(1, '.').append(
      body);
  return "v1," + base64_encode(hmac_sha256(key, signed_content));
}

} // namespace tocsin::transports
