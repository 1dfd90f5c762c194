// Kept apart from https_receiver.cpp so the verifier compiles without Boost
// and can be unit-tested on its own.
#include "tests/support/https_receiver.hpp"

#include <memory>
#include <optional>
#include <string_view>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace tocsin::test {

namespace {

std::optional<std::string> base64_decode(std::string_view in) {
  // EVP_DecodeBlock rejects lengths that are not a multiple of 4 and counts
  // '=' padding as zero bytes, so both are handled here.
  if (in.empty() || in.size() % 4 != 0)
    return std::nullopt;
  std::string out(in.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  if (n < 0)
    return std::nullopt;
  std::size_t padding = 0;
  if (in.back() == '=')
    padding = in[in.size() - 2] == '=' ? 2 : 1;
  out.resize(static_cast<std::size_t>(n) - padding);
  return out;
}

std::string base64_encode(const unsigned char* data, std::size_t len) {
  std::string out((len + 2) / 3 * 4 + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data,
                          static_cast<int>(len));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

const std::string* find_header(const received_request& req,
                               const std::string& name) {
  auto it = req.headers.find(name);
  return it == req.headers.end() ? nullptr : &it->second;
}

// Calls `match` with the base64 part of every "<version>,<base64>" entry of
// the space-separated signature header whose version is `version`; true as
// soon as one call returns true.
template <class Match>
bool any_signature(std::string_view header, std::string_view version,
                   Match match) {
  while (!header.empty()) {
    auto space = header.find(' ');
    std::string_view entry = header.substr(0, space);
    header = space == std::string_view::npos ? std::string_view{}
                                             : header.substr(space + 1);
    auto comma = entry.find(',');
    if (comma == std::string_view::npos || entry.substr(0, comma) != version)
      continue;
    if (match(entry.substr(comma + 1)))
      return true;
  }
  return false;
}

// Asymmetric scheme: any "v1a,<base64>" entry that is a valid Ed25519
// signature of `content` under the 32-byte public key of "whpk_<base64>".
bool verify_ed25519(std::string_view whpk_key, const std::string& content,
                    std::string_view header) {
  auto public_key = base64_decode(whpk_key.substr(5));
  if (!public_key || public_key->size() != 32)
    return false;
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> pkey{
      EVP_PKEY_new_raw_public_key(
          EVP_PKEY_ED25519, nullptr,
          reinterpret_cast<const unsigned char*>(public_key->data()),
          public_key->size()),
      &EVP_PKEY_free};
  if (!pkey)
    return false;
  return any_signature(header, "v1a", [&](std::string_view encoded) {
    auto sig = base64_decode(encoded);
    if (!sig || sig->size() != 64)
      return false;
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx{
        EVP_MD_CTX_new(), &EVP_MD_CTX_free};
    return ctx &&
           EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr,
                                pkey.get()) == 1 &&
           EVP_DigestVerify(
               ctx.get(), reinterpret_cast<const unsigned char*>(sig->data()),
               sig->size(),
               reinterpret_cast<const unsigned char*>(content.data()),
               content.size()) == 1;
  });
}

} // namespace

bool verify_standard_webhook(const std::string& secret,
                             const received_request& req) {
  const std::string* id = find_header(req, "webhook-id");
  const std::string* timestamp = find_header(req, "webhook-timestamp");
  const std::string* signature = find_header(req, "webhook-signature");
  if (!id || !timestamp || !signature)
    return false;

  std::string content = *id + "." + *timestamp + "." + req.body;
  std::string_view encoded_key = secret;
  if (encoded_key.substr(0, 5) == "whpk_")
    return verify_ed25519(encoded_key, content, *signature);

  constexpr std::string_view prefix = "whsec_";
  if (encoded_key.substr(0, prefix.size()) == prefix)
    encoded_key.remove_prefix(prefix.size());
  auto key = base64_decode(encoded_key);
  if (!key || key->empty())
    return false;

  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  if (!HMAC(EVP_sha256(), key->data(), static_cast<int>(key->size()),
            reinterpret_cast<const unsigned char*>(content.data()),
            content.size(), mac, &mac_len))
    return false;
  const std::string expected = base64_encode(mac, mac_len);

  // Entries are "version,base64" separated by spaces; several may be present
  // during key rotation, and any matching v1 entry is enough.
  return any_signature(*signature, "v1", [&](std::string_view entry) {
    return entry.size() == expected.size() &&
           CRYPTO_memcmp(entry.data(), expected.data(), expected.size()) == 0;
  });
}

} // namespace tocsin::test
