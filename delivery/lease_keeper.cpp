#include "delivery/lease_keeper.hpp"

#include "delivery/placement.hpp"

#include <algorithm>

namespace tocsin::delivery {

lease_keeper::lease_keeper(std::string node, std::string listen,
                           std::chrono::milliseconds ttl)
    : node_(std::move(node)), listen_(std::move(listen)), ttl_(ttl) {}

void lease_keeper::set_names(std::vector<std::string> names) {
  names_ = std::move(names);
  placed_ = place(names_, live_);
}

bool lease_keeper::mine(const std::string& name) const {
  auto it = placed_.find(name);
  return !leaving_ && it != placed_.end() && it->second == node_;
}

storage::heartbeat_request lease_keeper::next_round() const {
  storage::heartbeat_request r;
  r.node = node_;
  r.listen = listen_;
  r.ttl = ttl_;
  r.release.assign(releasing_.begin(), releasing_.end());
  if (leaving_)
    return r;
  for (auto& [name, node] : placed_)
    if (node == node_ && held_.count(name) == 0)
      r.take.push_back(name);
  return r;
}

lease_actions lease_keeper::round_done(const storage::membership& m,
                                       unix_ms sent_at) {
  lease_actions out;
  valid_until_ = sent_at + ttl_.count();
  live_.clear();
  for (auto& n : m.nodes)
    if (n.alive || n.id == node_)
      live_.push_back(n.id);
  placed_ = place(names_, live_);
  // What the heartbeat released is gone for good.
  for (auto& name : releasing_) {
    held_.erase(name);
    handing_over_.erase(name);
  }
  releasing_.clear();
  std::map<std::string, std::uint64_t> now;
  for (auto& g : m.held)
    now.emplace(g.name, g.epoch);
  for (auto& [name, epoch] : held_) {
    auto it = now.find(name);
    // Gone, or taken by another node and back (a newer epoch): whatever ran
    // under the old epoch is fenced off.
    if (it == now.end() || it->second != epoch) {
      out.lost.push_back(name);
      handing_over_.erase(name);
    }
  }
  for (auto& name : out.lost)
    held_.erase(name);
  for (auto& [name, epoch] : now)
    if (held_.emplace(name, epoch).second)
      out.gained.push_back({name, epoch});
  for (auto& [name, epoch] : held_)
    if ((leaving_ || !mine(name)) && handing_over_.insert(name).second)
      out.hand_over.push_back(name);
  return out;
}

lease_actions lease_keeper::round_failed(unix_ms now) {
  lease_actions out;
  if (now < valid_until_)
    return out;
  for (auto& [name, epoch] : held_)
    out.lost.push_back(name);
  held_.clear();
  handing_over_.clear();
  releasing_.clear();
  return out;
}

bool lease_keeper::forget(const std::string& name) {
  handing_over_.erase(name);
  releasing_.erase(name);
  return held_.erase(name) > 0;
}

void lease_keeper::drained(const std::string& name) {
  if (held_.count(name) > 0 && handing_over_.count(name) > 0)
    releasing_.insert(name);
}

} // namespace tocsin::delivery
