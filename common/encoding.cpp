#include "common/encoding.hpp"

#include <algorithm>
#include <cstdio>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>
#include <openssl/sha.h>

namespace tocsin {

std::string base64_encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  auto n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                           reinterpret_cast<const unsigned char*>(bytes.data()),
                           static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0)
    return std::nullopt;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    bool alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                 (c >= '0' && c <= '9') || c == '+' || c == '/';
    bool pad = c == '=' && i + 2 >= text.size();
    if (!alpha && !pad)
      return std::nullopt;
  }
  std::string out(3 * text.size() / 4, '\0');
  auto n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                           reinterpret_cast<const unsigned char*>(text.data()),
                           static_cast<int>(text.size()));
  if (n < 0)
    return std::nullopt;
  // EVP_DecodeBlock counts padding as zero bytes; take them off again.
  std::size_t len = static_cast<std::size_t>(n);
  if (!text.empty() && text.back() == '=')
    --len;
  if (text.size() > 1 && text[text.size() - 2] == '=')
    --len;
  out.resize(len);
  return out;
}

std::string hex_encode(std::string_view bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

namespace {

/// OpenSSL 3's one-shot SHA256() and HMAC() look their algorithm up again on
/// every call (a fetch by name, under a lock): a few microseconds each, paid
/// per delivery signed and per request authenticated. Fetched once here;
/// each thread keeps its own contexts.
const EVP_MD* sha256_md() {
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md;
}

struct hmac_context {
  EVP_MAC_CTX* ctx = nullptr;
  hmac_context() {
    static EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    ctx = mac ? EVP_MAC_CTX_new(mac) : nullptr;
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string("digest", digest, 0),
        OSSL_PARAM_construct_end()};
    if (ctx && EVP_MAC_CTX_set_params(ctx, params) != 1) {
      EVP_MAC_CTX_free(ctx);
      ctx = nullptr;
    }
  }
  ~hmac_context() { EVP_MAC_CTX_free(ctx); }
  hmac_context(const hmac_context&) = delete;
  hmac_context& operator=(const hmac_context&) = delete;
};

struct digest_context {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  ~digest_context() { EVP_MD_CTX_free(ctx); }
  digest_context() = default;
  digest_context(const digest_context&) = delete;
  digest_context& operator=(const digest_context&) = delete;
};

} // namespace

std::string sha256(std::string_view data) {
  thread_local digest_context d;
  std::string out(SHA256_DIGEST_LENGTH, '\0');
  unsigned int len = 0;
  if (!d.ctx || EVP_DigestInit_ex(d.ctx, sha256_md(), nullptr) != 1 ||
      EVP_DigestUpdate(d.ctx, data.data(), data.size()) != 1 ||
      EVP_DigestFinal_ex(d.ctx, reinterpret_cast<unsigned char*>(out.data()),
                         &len) != 1)
    std::abort(); // no SHA-256 in this OpenSSL: nothing sensible is left
  return out;
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
  thread_local hmac_context h;
  std::string out(EVP_MAX_MD_SIZE, '\0');
  auto* bytes = reinterpret_cast<const unsigned char*>(data.data());
  auto* digest = reinterpret_cast<unsigned char*>(out.data());
  std::size_t len = 0;
  if (h.ctx && !key.empty() &&
      EVP_MAC_init(h.ctx, reinterpret_cast<const unsigned char*>(key.data()),
                   key.size(), nullptr) == 1 &&
      EVP_MAC_update(h.ctx, bytes, data.size()) == 1 &&
      EVP_MAC_final(h.ctx, digest, &len, out.size()) == 1) {
    out.resize(len);
    return out;
  }
  // The one-shot call takes what the context does not (an empty key).
  unsigned int n = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), bytes,
       data.size(), digest, &n);
  out.resize(n);
  return out;
}

bool ascii_iequals(std::string_view a, std::string_view b) {
  auto lower = [](char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
  };
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(),
                    [&](char x, char y) { return lower(x) == lower(y); });
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size())
    return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::size_t utf8_sequence_length(std::string_view s, std::size_t i) {
  auto c = static_cast<unsigned char>(s[i]);
  std::size_t n;
  char32_t cp;
  if (c < 0x80)
    return 1;
  if ((c & 0xE0) == 0xC0) {
    n = 2;
    cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3;
    cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size())
    return 0;
  for (std::size_t k = 1; k < n; ++k) {
    auto cc = static_cast<unsigned char>(s[i + k]);
    if ((cc & 0xC0) != 0x80)
      return 0;
    cp = (cp << 6) | (cc & 0x3F);
  }
  static constexpr char32_t min_for_len[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < min_for_len[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
    return 0; // overlong, out of range, or a surrogate
  return n;
}

bool is_valid_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    auto n = utf8_sequence_length(s, i);
    if (n == 0)
      return false;
    i += n;
  }
  return true;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

std::string percent_decode(std::string_view s) {
  auto hex = hex_digit;
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 &&
        hex(s[i + 2]) >= 0) {
      out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
      i += 2;
    } else {
      out += s[i] == '+' ? ' ' : s[i];
    }
  }
  return out;
}

std::string percent_encode(std::string_view s) {
  static constexpr char digits[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
        (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
        c == '~') {
      out += ch;
    } else {
      out += '%';
      out += digits[c >> 4];
      out += digits[c & 0xf];
    }
  }
  return out;
}

std::optional<std::string> deceptive_text(std::string_view s,
                                          bool allow_lf_tab) {
  auto code_point = [](unsigned cp) {
    char buf[16];
    std::snprintf(buf, sizeof(buf), "U+%04X", cp);
    return std::string{buf};
  };
  for (std::size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20) {
      if (allow_lf_tab && (c == '\n' || c == '\t'))
        continue;
      return "control character " + code_point(c);
    }
    // U+202A-U+202E are E2 80 AA-AE; U+2066-U+2069 are E2 81 A6-A9.
    if (c == 0xE2 && i + 2 < s.size()) {
      auto b1 = static_cast<unsigned char>(s[i + 1]);
      auto b2 = static_cast<unsigned char>(s[i + 2]);
      if ((b1 == 0x80 && b2 >= 0xAA && b2 <= 0xAE) ||
          (b1 == 0x81 && b2 >= 0xA6 && b2 <= 0xA9))
        return "bidirectional control " +
               code_point(0x2000u + ((b1 & 0x3Fu) << 6) + (b2 & 0x3Fu));
    }
  }
  return std::nullopt;
}

std::optional<std::string> form_value(std::string_view form,
                                      std::string_view key) {
  while (!form.empty()) {
    auto amp = form.find('&');
    auto pair = form.substr(0, amp);
    auto eq = pair.find('=');
    if (pair.substr(0, eq) == key)
      return eq == std::string_view::npos ? std::string{}
                                          : percent_decode(pair.substr(eq + 1));
    if (amp == std::string_view::npos)
      break;
    form.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

} // namespace tocsin
