// Standard Webhooks signatures over "{id}.{timestamp}.{body}":
// - symmetric: "v1,<base64 HMAC-SHA256>" keyed with the base64 part of a
//   "whsec_..." secret;
// - asymmetric: "v1a,<base64 Ed25519 signature>" made with a "whsk_..." secret
//   key; receivers verify it with the matching "whpk_..." public key.
#pragma once

#include "common/result.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace tocsin::delivery {

/// The raw HMAC key of a "whsec_<base64>" secret; error "invalid_secret" when
/// the prefix or the base64 is wrong or the key is not 24 to 64 bytes long.
result<std::string> decode_webhook_secret(std::string_view secret);

/// A new "whsec_<base64>" secret holding 32 bytes from the OpenSSL CSPRNG.
std::string generate_webhook_secret();

/// "v1,<base64 signature>" for one message.
std::string sign_webhook(std::string_view key, std::string_view msg_id,
                         std::int64_t timestamp, std::string_view body);

/// An Ed25519 key pair in Standard Webhooks serialization.
struct ed25519_keypair {
  std::string secret_key; ///< "whsk_" + base64(seed || public key): 64 bytes
  std::string public_key; ///< "whpk_" + base64(public key): 32 bytes
};

/// A new key pair from a 32-byte CSPRNG seed. The secret key is written in the
/// 64-byte (seed || public key) form that the Svix server writes; the spec's
/// example v1a signature was made with a key in that form.
ed25519_keypair generate_ed25519_keypair();

/// The raw 32-byte Ed25519 seed of a "whsk_<base64>" secret key. Accepts the
/// bare 32-byte seed and the 64-byte seed || public key form (whose public half
/// must match the seed). Error "invalid_secret" for a wrong prefix, bad base64
/// or any other length.
result<std::string> decode_ed25519_secret(std::string_view whsk);

/// The "whpk_<base64>" public key that belongs to a "whsk_..." secret key;
/// errors as decode_ed25519_secret.
result<std::string> ed25519_public_key(std::string_view whsk);

/// "v1a,<base64 of the 64-byte Ed25519 signature>" for one message. `seed` must
/// be a 32-byte seed as returned by decode_ed25519_secret (aborts otherwise).
std::string sign_webhook_ed25519(std::string_view seed, std::string_view msg_id,
                                 std::int64_t timestamp, std::string_view body);

/// One signing key of an endpoint, of either scheme. A request carries one
/// signature per key, so a rotation's grace period can overlap old and new
/// keys, even of different schemes.
struct signing_key {
  enum class scheme { hmac_sha256, ed25519 };
  scheme kind = scheme::hmac_sha256;
  std::string key{}; ///< the raw HMAC key, or the raw 32-byte Ed25519 seed
};

/// Decodes "whsec_..." (HMAC-SHA256) or "whsk_..." (Ed25519); error
/// "invalid_secret" for anything else or when the key itself is malformed.
result<signing_key> decode_signing_secret(std::string_view secret);

/// "v1,..." or "v1a,..." according to the key's scheme.
std::string sign_webhook(const signing_key& key, std::string_view msg_id,
                         std::int64_t timestamp, std::string_view body);

} // namespace tocsin::delivery
