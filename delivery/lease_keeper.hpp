// What one node of a cluster holds and should hold, as a plain state machine
// of explicit time (no I/O, no clock): from each heartbeat's view of the
// cluster (storage::membership) it says which leases to take and give up in
// the next heartbeat, which endpoints to start driving (gained), which to
// stop driving at once (lost: another node may hold them now), and which to
// hand over (another live node should drive them: stop starting attempts,
// let those in flight finish, then release the lease, so that nothing is
// attempted twice).
//
// Where every name should go is delivery::place over the live nodes (this
// one included): every node computes the same from the same view. A lease
// is trusted for `ttl` from when the heartbeat that renewed it was sent;
// when heartbeats fail for that long, everything is lost (the database may
// have given it to another node).
#pragma once

#include "common/time.hpp"
#include "storage/cluster.hpp"

#include <chrono>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace tocsin::delivery {

struct lease_actions {
  std::vector<storage::lease_grant> gained;
  std::vector<std::string> lost;
  std::vector<std::string> hand_over;

  bool empty() const {
    return gained.empty() && lost.empty() && hand_over.empty();
  }
};

class lease_keeper {
public:
  lease_keeper(std::string node, std::string listen,
               std::chrono::milliseconds ttl);

  const std::string& node() const { return node_; }
  std::chrono::milliseconds ttl() const { return ttl_; }

  /// The leases to place over the nodes (endpoint ids, "escalation").
  void set_names(std::vector<std::string> names);

  /// What the next heartbeat asks: take what should be this node's and it
  /// does not hold; release what it handed over.
  storage::heartbeat_request next_round() const;

  /// A heartbeat sent at `sent_at` (this node's clock) saw `m`.
  lease_actions round_done(const storage::membership& m, unix_ms sent_at);

  /// A heartbeat failed at `now`: once the last good one is `ttl` old,
  /// every lease is lost.
  lease_actions round_failed(unix_ms now);

  /// A lease the holder gave up on its own (a write was fenced: another
  /// node took it). Returns whether it was held.
  bool forget(const std::string& name);

  /// A name handed over: nothing runs under it any more; the next
  /// heartbeat releases it.
  void drained(const std::string& name);

  /// Leaving: every lease is handed over.
  void leave() { leaving_ = true; }

  const std::map<std::string, std::uint64_t>& held() const { return held_; }
  /// Live nodes as of the last heartbeat (this one included once it beat).
  const std::vector<std::string>& live() const { return live_; }
  /// Whether this node should hold `name` (as of the last heartbeat).
  bool mine(const std::string& name) const;

private:
  std::string node_;
  std::string listen_;
  std::chrono::milliseconds ttl_;
  std::vector<std::string> names_;
  std::vector<std::string> live_;
  std::map<std::string, std::string> placed_;
  std::map<std::string, std::uint64_t> held_;
  std::set<std::string> handing_over_;
  std::set<std::string> releasing_;
  unix_ms valid_until_ = 0;
  bool leaving_ = false;
};

} // namespace tocsin::delivery
