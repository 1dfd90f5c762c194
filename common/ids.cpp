#include "common/ids.hpp"

#include "common/time.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <mutex>

#include <openssl/rand.h>

namespace tocsin {

namespace {

constexpr std::string_view crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

struct ulid_state {
  std::mutex mtx;
  std::uint64_t last_ms = 0;
  std::array<std::uint8_t, 10> last_rand{};
};

ulid_state& state() {
  static ulid_state s;
  return s;
}

/// Writes a new ULID's 26 characters at `out`.
void write_ulid(char* out) {
  std::array<std::uint8_t, 16> bytes{};
  {
    auto& s = state();
    std::lock_guard guard{s.mtx};
    auto ms = static_cast<std::uint64_t>(now_ms());
    if (ms <= s.last_ms) {
      // Same (or earlier, clock stepped back) millisecond: increment the random
      // part so that ids stay strictly increasing.
      ms = s.last_ms;
      for (auto i = s.last_rand.size(); i-- > 0;)
        if (++s.last_rand[i] != 0)
          break;
    } else {
      if (RAND_bytes(s.last_rand.data(),
                     static_cast<int>(s.last_rand.size())) != 1)
        std::abort(); // no CSPRNG: nothing sensible left to do
      s.last_ms = ms;
    }
    for (int i = 0; i < 6; ++i)
      bytes[static_cast<std::size_t>(i)] =
          static_cast<std::uint8_t>(ms >> (8 * (5 - i)));
    std::copy(s.last_rand.begin(), s.last_rand.end(), bytes.begin() + 6);
  }
  // 128 bits -> 26 base32 characters (the first carries 3 bits), five bits
  // at a time from the two 64-bit halves.
  std::uint64_t hi = 0, lo = 0;
  for (std::size_t i = 0; i < 8; ++i) {
    hi = (hi << 8) | bytes[i];
    lo = (lo << 8) | bytes[i + 8];
  }
  for (std::size_t i = 0; i < 26; ++i) {
    auto shift =
        static_cast<unsigned>(5 * (25 - i)); // the character's lowest bit
    std::uint64_t v = shift >= 64  ? hi >> (shift - 64)
                      : shift > 59 ? (lo >> shift) | (hi << (64 - shift))
                                   : lo >> shift;
    out[i] = crockford[v & 31];
  }
}

} // namespace

std::string new_ulid() {
  std::string out(26, '0');
  write_ulid(out.data());
  return out;
}

std::string new_id(std::string_view prefix) {
  // One allocation: several ids are made for every accepted event.
  std::string id(prefix.size() + 27, '_');
  std::copy(prefix.begin(), prefix.end(), id.begin());
  write_ulid(id.data() + prefix.size() + 1);
  return id;
}

std::string id_floor(std::string_view prefix, unix_ms at) {
  // The 48-bit milliseconds are the first 10 characters (the first carries 3
  // bits, the rest 5 each); the random part's smallest value is all zeros.
  auto ms = static_cast<std::uint64_t>(std::max<unix_ms>(0, at)) &
            ((std::uint64_t{1} << 48) - 1);
  std::string id{prefix};
  id += '_';
  for (int i = 9; i >= 0; --i)
    id += crockford[(ms >> (5 * i)) & 31];
  id.append(16, '0');
  return id;
}

bool is_valid_id(std::string_view id, std::string_view prefix) {
  if (id.size() != prefix.size() + 27 ||
      id.substr(0, prefix.size()) != prefix || id[prefix.size()] != '_')
    return false;
  for (auto c : id.substr(prefix.size() + 1))
    if (crockford.find(c) == std::string_view::npos)
      return false;
  return true;
}

std::optional<unix_ms> time_of_id(std::string_view id,
                                  std::string_view prefix) {
  if (!is_valid_id(id, prefix))
    return std::nullopt;
  // The first 10 characters carry the 48-bit time (the first only 3 bits).
  std::uint64_t ms = 0;
  for (auto c : id.substr(prefix.size() + 1, 10))
    ms = (ms << 5) | crockford.find(c);
  return static_cast<unix_ms>(ms);
}

} // namespace tocsin
