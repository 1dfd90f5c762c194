// The API server's connections as a table, without sockets: who may come in
// (server.max_connections, server.max_connections_per_address) and, at the
// cap, which connection makes room: the one that has made the least
// progress, oldest first within its phase. Not thread-safe (the server
// guards it with a mutex).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace tocsin::api {

/// What a connection is doing, from the least progress to the most: the
/// order in which connections are closed to make room.
enum class conn_phase {
  closing, ///< answered and being closed (draining what the client sends)
  head,    ///< new, or its request's head not complete yet
  idle,    ///< kept alive after an answer, no byte of a next request yet
  body,    ///< its request's body is being read
  busy,    ///< its request is being answered: never closed to make room
};

std::string_view to_string(conn_phase p);

class connection_table {
public:
  using id_type = std::uint64_t;

  connection_table(std::size_t max_connections, std::size_t max_per_address)
      : max_(max_connections), max_per_address_(max_per_address) {}

  enum class refusal {
    none,
    per_address, ///< its address holds max_per_address connections already
    full,        ///< at the cap and every connection is busy
  };
  struct admission {
    refusal refused = refusal::none;
    /// Close this connection to make room (it is out of the table already).
    std::optional<id_type> evict = {};
    conn_phase evicted_phase = conn_phase::busy;
  };
  /// A new connection `id` from `address` (in phase head when admitted).
  /// Past its address's bound it is refused, whatever the others do; at the
  /// cap the connection with the least progress (closing, then head, then
  /// idle, then body; the one in its phase the longest first) leaves the
  /// table for it; with every connection busy it is refused.
  admission admit(id_type id, std::string_view address);

  /// `id` is now in `phase` (the newest of that phase). False when it is not
  /// in the table any more (it was made to leave): it should close.
  bool enter(id_type id, conn_phase phase);

  /// `id` is gone (no-op when it was evicted).
  void remove(id_type id);

  std::size_t size() const { return entries_.size(); }
  std::size_t count_from(std::string_view address) const;
  /// The phase of `id`, if it is in the table.
  std::optional<conn_phase> phase_of(id_type id) const;

private:
  static constexpr std::size_t ranked = 4; // phases that can be evicted
  struct entry {
    conn_phase phase;
    std::list<id_type>::iterator pos;
    std::string address;
  };
  void unlink(entry& e);
  void erase(std::unordered_map<id_type, entry>::iterator it);

  std::size_t max_;
  std::size_t max_per_address_;
  std::unordered_map<id_type, entry> entries_;
  std::array<std::list<id_type>, ranked> by_phase_; ///< oldest first
  std::unordered_map<std::string, std::size_t> per_address_;
};

} // namespace tocsin::api
