// The keys and values of keys.hpp: how each is built and read.
#include "storage/rocksdb/keys.hpp"

#include <algorithm>
#include <array>

namespace tocsin::storage::rocksdb_backend {

namespace {

std::string be64_of(std::uint64_t v) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i, v >>= 8)
    out[static_cast<std::size_t>(i)] = static_cast<char>(v & 0xff);
  return out;
}

/// Each character's value in `crockford`, -1 for the others (upper case
/// only, as ids are made).
constexpr auto base32_value = [] {
  std::array<signed char, 256> t{};
  t.fill(-1);
  for (std::size_t i = 0; i < crockford.size(); ++i)
    t[static_cast<unsigned char>(crockford[i])] = static_cast<signed char>(i);
  return t;
}();

} // namespace

std::string be64(std::uint64_t v) {
  std::string k(8, '\0');
  for (int i = 7; i >= 0; --i) {
    k[static_cast<std::size_t>(i)] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  return k;
}

std::uint64_t from_be64(const rocksdb::Slice& k) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < k.size() && i < 8; ++i)
    v = (v << 8) | static_cast<unsigned char>(k[i]);
  return v;
}

std::string dead_index_key(std::string_view endpoint_id, unix_ms finished_at,
                           std::string_view delivery_id) {
  std::string k{endpoint_id};
  k += '\0';
  k += be64(static_cast<std::uint64_t>(std::max<unix_ms>(0, finished_at)));
  k += delivery_id;
  return k;
}

std::string due_index_key(std::string_view endpoint_id, unix_ms due,
                          std::string_view delivery_id) {
  std::string k{endpoint_id};
  k += '\0';
  k += be64(static_cast<std::uint64_t>(std::max<unix_ms>(0, due)));
  k += delivery_id;
  return k;
}

std::string time_key(unix_ms at, std::string_view id) {
  std::string k = be64(static_cast<std::uint64_t>(std::max<unix_ms>(0, at)));
  k += id;
  return k;
}

std::string escalation_group_key(std::string_view rule,
                                 std::string_view group) {
  std::string key{rule};
  key += '\0';
  key += static_cast<char>((group.size() >> 8) & 0xff);
  key += static_cast<char>(group.size() & 0xff);
  key += group;
  return key;
}

std::string link_key(std::string_view event_id,
                     std::string_view escalation_id) {
  std::string key{event_id};
  key += '\0';
  key += escalation_id;
  return key;
}

std::string counted_key(std::string_view event_id, std::string_view rule,
                        std::string_view group) {
  std::string key{event_id};
  key += '\0';
  key += '#';
  key += escalation_group_key(rule, group);
  return key;
}

std::string group_index_key(std::string_view rule, std::string_view group,
                            unix_ms at, std::string_view escalation_id) {
  auto key = '#' + escalation_group_key(rule, group) +
             be64_of(static_cast<std::uint64_t>(at));
  key += escalation_id;
  return key;
}

std::string escalation_members_value(std::string_view index_key,
                                     std::string_view members) {
  std::string v;
  v.reserve(3 + index_key.size() + members.size());
  v += static_cast<char>((index_key.size() >> 8) & 0xff);
  v += static_cast<char>(index_key.size() & 0xff);
  v += index_key;
  auto header = v.size();
  v += 'b';
  for (std::size_t at = 0; at < members.size();) {
    auto end = members.find('\n', at);
    if (end == std::string_view::npos)
      end = members.size();
    auto id = members.substr(at, end - at);
    at = end + 1;
    bool packable = id.size() == 30 && id.starts_with("evt_");
    for (std::size_t i = 4; packable && i < id.size(); ++i)
      packable = base32_value[static_cast<unsigned char>(id[i])] >= 0;
    if (!packable) {
      v.resize(header);
      v += 't';
      v += members;
      return v;
    }
    unsigned acc = 0;
    int bits = 0;
    for (char c : id.substr(4)) {
      acc = (acc << 5) |
            static_cast<unsigned>(base32_value[static_cast<unsigned char>(c)]);
      bits += 5;
      if (bits >= 8) {
        bits -= 8;
        v += static_cast<char>((acc >> bits) & 0xff);
      }
    }
    v += static_cast<char>((acc << (8 - bits)) & 0xff); // 130 = 16 * 8 + 2
  }
  return v;
}

std::string_view index_key_of(std::string_view v) {
  return for_each_member(v, [](std::string_view) { return false; });
}

} // namespace tocsin::storage::rocksdb_backend
