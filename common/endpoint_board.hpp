// What each endpoint delivering on this node is doing right now, written by
// its endpoint actor and read by the API (GET /v1/endpoints/{id}) from
// another thread: the in-flight limit the receiver's answers set, attempts
// out, the latency floor. A short lock per update; updates only on change.
#pragma once

#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace tocsin {

struct endpoint_live {
  int in_flight_limit = 0;
  int in_flight = 0;
  double latency_floor_ms = -1; ///< -1: no answer yet

  bool operator==(const endpoint_live&) const = default;
};

class endpoint_board {
public:
  void set(const std::string& id, const endpoint_live& live) {
    std::lock_guard lock{mtx_};
    live_[id] = live;
  }
  void erase(const std::string& id) {
    std::lock_guard lock{mtx_};
    live_.erase(id);
  }
  /// Nothing when the endpoint delivers elsewhere (another cluster node) or
  /// not at all.
  std::optional<endpoint_live> get(std::string_view id) const {
    std::lock_guard lock{mtx_};
    auto it = live_.find(std::string{id});
    if (it == live_.end())
      return std::nullopt;
    return it->second;
  }

private:
  mutable std::mutex mtx_;
  std::unordered_map<std::string, endpoint_live> live_;
};

} // namespace tocsin
