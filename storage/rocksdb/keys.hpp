// Keys and values of the RocksDB backend: big-endian numbers, the keys of
// the indexes (due, dead letters, time), of the escalations, and the packed
// members of an escalation (keys.cpp).
#pragma once

#include "common/time.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <rocksdb/slice.h>

namespace tocsin::storage::rocksdb_backend {

/// In the default column family: the newest cutoff expire() has applied.
inline constexpr std::string_view expired_before_key = "expired_before";

/// In the default column family: the layout of the indexes ("3": one index
/// of pending deliveries per endpoint, in `due`). Stores without it index
/// pending deliveries by id alone, and those of layout "2" in acceptance
/// order as well (in `pending`); both are migrated at open.
inline constexpr std::string_view layout_key = "index_layout";
inline constexpr std::string_view layout_version = "3";

std::string be64(std::uint64_t v);

std::uint64_t from_be64(const rocksdb::Slice& k);

/// The per-endpoint dead-letter index: endpoint id, NUL (ids never hold
/// one), when it died (big-endian, so keys sort by time), delivery id.
std::string dead_index_key(std::string_view endpoint_id, unix_ms finished_at,
                           std::string_view delivery_id);

std::string due_index_key(std::string_view endpoint_id, unix_ms due,
                          std::string_view delivery_id);

/// A key of a time index: when (big-endian, so keys sort by time), then id.
std::string time_key(unix_ms at, std::string_view id);

/// Escalation keys (cf_escalations), besides escalation_linked's
/// "<event id>\0<escalation id>":
/// - "<event id>\0#<group key>": the event was counted in the group;
/// - "#<group key><be64(at)><escalation id>": the group's escalations, by
///   when they were accepted;
/// - "<escalation id>": its members (escalation_members_value).
/// A group key is "<rule>\0<be16(group size)><group>": groups are any
/// string, NULs included.
std::string escalation_group_key(std::string_view rule, std::string_view group);

/// "<event id>\0<escalation id>": an escalation_linked change.
std::string link_key(std::string_view event_id, std::string_view escalation_id);

/// "<event id>\0#<group key>": a counted_in_group change.
std::string counted_key(std::string_view event_id, std::string_view rule,
                        std::string_view group);

/// "#<group key><be64(at)><escalation id>": an escalation's place in its
/// group's index.
std::string group_index_key(std::string_view rule, std::string_view group,
                            unix_ms at, std::string_view escalation_id);

inline constexpr std::string_view crockford =
    "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
inline constexpr std::size_t packed_id_bytes = 17; ///< 26 characters of 5 bits

/// be16(size of the group index key), the group index key, then the
/// members: 'b' and 17 bytes per id (the 26 base32 characters after "evt_",
/// 5 bits each) when all are event ids, as they are; else 't' and the ids,
/// each followed by '\n'. 1,000 members take 17 kB.
std::string escalation_members_value(std::string_view index_key,
                                     std::string_view members);

/// The group index key of an escalation_members_value, and calls
/// `fn(id)` for each member in order until it returns false.
template <class F>
std::string_view for_each_member(std::string_view v, F&& fn) {
  if (v.size() < 2)
    return {};
  auto n = (static_cast<std::size_t>(static_cast<unsigned char>(v[0])) << 8) |
           static_cast<unsigned char>(v[1]);
  if (v.size() < 3 + n)
    return {};
  auto index_key = v.substr(2, n);
  auto form = v[2 + n];
  auto rest = v.substr(3 + n);
  if (form == 't') {
    for (std::size_t at = 0; at < rest.size();) {
      auto end = rest.find('\n', at);
      if (end == std::string_view::npos)
        end = rest.size();
      if (end > at && !fn(rest.substr(at, end - at)))
        break;
      at = end + 1;
    }
  } else if (form == 'b') {
    std::string id = "evt_";
    for (std::size_t at = 0; at + packed_id_bytes <= rest.size();
         at += packed_id_bytes) {
      id.resize(4);
      unsigned acc = 0;
      int bits = 0;
      for (std::size_t i = 0; i < packed_id_bytes && id.size() < 30; ++i) {
        acc = (acc << 8) | static_cast<unsigned char>(rest[at + i]);
        bits += 8;
        while (bits >= 5 && id.size() < 30) {
          bits -= 5;
          id += crockford[(acc >> bits) & 31];
        }
        acc &= (1u << bits) - 1;
      }
      if (!fn(std::string_view{id}))
        break;
    }
  }
  return index_key;
}

/// The group index key of an escalation_members_value.
std::string_view index_key_of(std::string_view v);

} // namespace tocsin::storage::rocksdb_backend
