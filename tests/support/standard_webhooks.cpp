// Kept apart from https_receiver.cpp so the verifier compiles without Boost
// and can be unit-tested on its own.
#include "tests/support/https_receiver.hpp"

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

} // namespace

bool verify_standard_webhook(const std::string& whsec_secret,
                             const received_request& req) {
  const std::string* id = find_header(req, "webhook-id");
  const std::string* timestamp = find_header(req, "webhook-timestamp");
  const std::string* signature = find_header(req, "webhook-signature");
  if (!id || !timestamp || !signature)
    return false;

  std::string_view encoded_key = whsec_secret;
  constexpr std::string_view prefix = "whsec_";
  if (encoded_key.substr(0, prefix.size()) == prefix)
    encoded_key.remove_prefix(prefix.size());
  auto key = base64_decode(encoded_key);
  if (!key || key->empty())
    return false;

  std::string content = *id + "." + *timestamp + "." + req.body;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  if (!HMAC(EVP_sha256(), key->data(), static_cast<int>(key->size()),
            reinterpret_cast<const unsigned char*>(content.data()),
            content.size(), mac, &mac_len))
    return false;
  const std::string expected = base64_encode(mac, mac_len);

  // Entries are "version,base64" separated by spaces; several may be present
  // during key rotation, and any matching v1 entry is enough.
  std::string_view rest = *signature;
  while (!rest.empty()) {
    auto space = rest.find(' ');
    std::string_view entry = rest.substr(0, space);
    rest = space == std::string_view::npos ? std::string_view{}
                                           : rest.substr(space + 1);
    constexpr std::string_view v1 = "v1,";
    if (entry.substr(0, v1.size()) != v1)
      continue;
    entry.remove_prefix(v1.size());
    if (entry.size() == expected.size() &&
        CRYPTO_memcmp(entry.data(), expected.data(), expected.size()) == 0)
      return true;
  }
  return false;
}

} // namespace tocsin::test
