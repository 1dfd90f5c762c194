#include "delivery/signing.hpp"

#include "common/encoding.hpp"

#include <cstdlib>
#include <memory>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

namespace tocsin::delivery {

namespace {

constexpr std::string_view hmac_prefix = "whsec_";
constexpr std::string_view ed25519_secret_prefix = "whsk_";
constexpr std::string_view ed25519_public_prefix = "whpk_";
constexpr std::size_t ed25519_seed_size = 32;
constexpr std::size_t ed25519_public_size = 32;
constexpr std::size_t ed25519_signature_size = 64;

struct pkey_deleter {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct md_ctx_deleter {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_deleter>;
using md_ctx_ptr = std::unique_ptr<EVP_MD_CTX, md_ctx_deleter>;

/// Wipes a buffer that held key material before it is released.
struct wiped_string {
  std::string bytes;
  ~wiped_string() { OPENSSL_cleanse(bytes.data(), bytes.size()); }
};

std::string random_bytes(std::size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()),
                 static_cast<int>(n)) != 1)
    std::abort(); // no CSPRNG: nothing sensible left to do
  return out;
}

std::string signed_content(std::string_view msg_id, std::int64_t timestamp,
                           std::string_view body) {
  std::string content;
  auto ts = std::to_string(timestamp);
  content.reserve(msg_id.size() + ts.size() + body.size() + 2);
  content.append(msg_id).append(1, '.').append(ts).append(1, '.').append(body);
  return content;
}

pkey_ptr ed25519_private_key(std::string_view seed) {
  if (seed.size() != ed25519_seed_size)
    return nullptr;
  return pkey_ptr{EVP_PKEY_new_raw_private_key(
      EVP_PKEY_ED25519, nullptr,
      reinterpret_cast<const unsigned char*>(seed.data()), seed.size())};
}

/// The raw 32-byte public key of a 32-byte seed; empty on failure.
std::string ed25519_public_from_seed(std::string_view seed) {
  auto pkey = ed25519_private_key(seed);
  if (!pkey)
    return {};
  std::string pub(ed25519_public_size, '\0');
  std::size_t len = pub.size();
  if (EVP_PKEY_get_raw_public_key(pkey.get(),
                                  reinterpret_cast<unsigned char*>(pub.data()),
                                  &len) != 1 ||
      len != ed25519_public_size)
    return {};
  return pub;
}

tocsin::error invalid_secret(std::string message) {
  return tocsin::error{"invalid_secret", std::move(message), "secret"};
}

} // namespace

result<std::string> decode_webhook_secret(std::string_view secret) {
  if (secret.substr(0, hmac_prefix.size()) != hmac_prefix)
    return invalid_secret("secret must start with whsec_");
  auto key = base64_decode(secret.substr(hmac_prefix.size()));
  if (!key)
    return invalid_secret("secret is not valid base64 after whsec_");
  if (key->size() < 24 || key->size() > 64)
    return invalid_secret("secret key must be 24 to 64 bytes");
  return std::move(*key);
}

std::string generate_webhook_secret() {
  wiped_string key{random_bytes(32)};
  return std::string{hmac_prefix} + base64_encode(key.bytes);
}

std::string sign_webhook(std::string_view key, std::string_view msg_id,
                         std::int64_t timestamp, std::string_view body) {
  return "v1," + base64_encode(
                     hmac_sha256(key, signed_content(msg_id, timestamp, body)));
}

ed25519_keypair generate_ed25519_keypair() {
  wiped_string seed{random_bytes(ed25519_seed_size)};
  auto pub = ed25519_public_from_seed(seed.bytes);
  if (pub.empty())
    std::abort(); // OpenSSL without Ed25519: nothing sensible left to do
  wiped_string full{seed.bytes + pub};
  return {std::string{ed25519_secret_prefix} + base64_encode(full.bytes),
          std::string{ed25519_public_prefix} + base64_encode(pub)};
}

result<std::string> decode_ed25519_secret(std::string_view whsk) {
  if (whsk.substr(0, ed25519_public_prefix.size()) == ed25519_public_prefix)
    return invalid_secret("whpk_ is an Ed25519 public key; signing needs the "
                          "secret key (whsk_)");
  if (whsk.substr(0, ed25519_secret_prefix.size()) != ed25519_secret_prefix)
    return invalid_secret("Ed25519 secret key must start with whsk_");
  auto decoded = base64_decode(whsk.substr(ed25519_secret_prefix.size()));
  if (!decoded)
    return invalid_secret("Ed25519 secret key is not valid base64 after whsk_");
  wiped_string key{std::move(*decoded)};
  if (key.bytes.size() != ed25519_seed_size &&
      key.bytes.size() != ed25519_seed_size + ed25519_public_size)
    return invalid_secret("Ed25519 secret key must be 32 bytes (seed) or 64 "
                          "bytes (seed and public key), not " +
                          std::to_string(key.bytes.size()));
  std::string seed = key.bytes.substr(0, ed25519_seed_size);
  auto pub = ed25519_public_from_seed(seed);
  if (pub.empty()) {
    OPENSSL_cleanse(seed.data(), seed.size());
    return invalid_secret("Ed25519 secret key is not usable");
  }
  if (key.bytes.size() > ed25519_seed_size &&
      !constant_time_equal(
          std::string_view{key.bytes}.substr(ed25519_seed_size), pub)) {
    OPENSSL_cleanse(seed.data(), seed.size());
    return invalid_secret(
        "Ed25519 secret key's public half does not match its seed");
  }
  return seed;
}

result<std::string> ed25519_public_key(std::string_view whsk) {
  auto seed = decode_ed25519_secret(whsk);
  if (!seed)
    return seed.error();
  wiped_string raw{std::move(*seed)};
  return std::string{ed25519_public_prefix} +
         base64_encode(ed25519_public_from_seed(raw.bytes));
}

std::string sign_webhook_ed25519(std::string_view seed, std::string_view msg_id,
                                 std::int64_t timestamp,
                                 std::string_view body) {
  auto pkey = ed25519_private_key(seed);
  md_ctx_ptr ctx{EVP_MD_CTX_new()};
  if (!pkey || !ctx)
    std::abort(); // a seed that decode_ed25519_secret did not produce
  auto content = signed_content(msg_id, timestamp, body);
  std::string sig(ed25519_signature_size, '\0');
  std::size_t len = sig.size();
  // Ed25519 is "pure": no digest, and the whole message in one call.
  if (EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, pkey.get()) !=
          1 ||
      EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()),
                     &len,
                     reinterpret_cast<const unsigned char*>(content.data()),
                     content.size()) != 1 ||
      len != ed25519_signature_size)
    std::abort();
  return "v1a," + base64_encode(sig);
}

result<signing_key> decode_signing_secret(std::string_view secret) {
  if (secret.substr(0, hmac_prefix.size()) == hmac_prefix) {
    auto key = decode_webhook_secret(secret);
    if (!key)
      return key.error();
    return signing_key{signing_key::scheme::hmac_sha256, std::move(*key)};
  }
  if (secret.substr(0, ed25519_secret_prefix.size()) == ed25519_secret_prefix) {
    auto seed = decode_ed25519_secret(secret);
    if (!seed)
      return seed.error();
    return signing_key{signing_key::scheme::ed25519, std::move(*seed)};
  }
  if (secret.substr(0, ed25519_public_prefix.size()) == ed25519_public_prefix)
    return decode_ed25519_secret(secret).error(); // explains whpk_ vs whsk_
  return invalid_secret(
      "signing secret must start with whsec_ (HMAC-SHA256) or whsk_ "
      "(Ed25519)");
}

std::string sign_webhook(const signing_key& key, std::string_view msg_id,
                         std::int64_t timestamp, std::string_view body) {
  switch (key.kind) {
  case signing_key::scheme::ed25519:
    return sign_webhook_ed25519(key.key, msg_id, timestamp, body);
  case signing_key::scheme::hmac_sha256:
    break;
  }
  return sign_webhook(std::string_view{key.key}, msg_id, timestamp, body);
}

} // namespace tocsin::delivery
