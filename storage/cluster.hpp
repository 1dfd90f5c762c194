// What nodes of a cluster share through the store, in the product's terms:
// who is alive (heartbeats), who drives what (leases with fencing epochs),
// and news of every commit (so that a node learns within milliseconds that
// another one wrote something it must act on). The database arbitrates: no
// node trusts its own clock for a lease, every time is the database's.
//
// A lease is named: an endpoint's id (its owner attempts its deliveries) or
// "escalation" (its holder evaluates the escalation rules). Its epoch grows
// by one each time the lease is taken by a node (never on renewal); every
// write its holder makes under it carries the epoch (changes::fence) and is
// refused ("fenced") once the lease has moved on.
//
// Only the PostgreSQL backend implements it (store::cluster()); with RocksDB
// a node is alone.
#pragma once

#include "common/result.hpp"
#include "common/time.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace tocsin::storage {

/// The name of the lease whose holder runs the escalation rules.
inline constexpr std::string_view escalation_lease = "escalation";

/// A node as the store knows it.
struct node_record {
  std::string id;
  std::string listen;       ///< the address its API listens on
  unix_ms heartbeat_at = 0; ///< its last heartbeat (the database's clock)
  /// Its last heartbeat is younger than the ttl it was asked with.
  bool alive = false;
  /// The leases it holds and that have not expired, in name order.
  std::vector<std::string> leases;
};

/// A lease a node holds, and the epoch its writes carry.
struct lease_grant {
  std::string name;
  std::uint64_t epoch = 0;

  friend bool operator==(const lease_grant&, const lease_grant&) = default;
};

struct heartbeat_request {
  std::string node;
  std::string listen;
  /// How long a heartbeat and a lease last without renewal.
  std::chrono::milliseconds ttl{10000};
  /// Leases to take when no live node holds them (free, released or
  /// expired); the epoch grows by one. Those the node holds already are
  /// renewed like every lease it holds.
  std::vector<std::string> take;
  /// Leases of this node to give up (before anything is taken).
  std::vector<std::string> release;
};

/// What one heartbeat saw, in one consistent view.
struct membership {
  unix_ms now = 0; ///< the database's clock
  /// Every node known (alive or not, until it left), in id order.
  std::vector<node_record> nodes;
  /// The leases this node holds after the heartbeat (renewed until
  /// now + ttl), in name order.
  std::vector<lease_grant> held;
};

/// What the listener hears.
enum class cluster_news {
  /// A commit was made (by any node); the number is its last sequence.
  log_advanced,
  /// A node gave up leases or left: a heartbeat may take them now. The
  /// number is 0.
  leases_released,
  /// The listening connection was lost and is back: news may have been
  /// missed; read the log and take a heartbeat.
  reconnected,
};

class cluster_store {
public:
  virtual ~cluster_store() = default;

  /// One transaction: records `r.node`'s heartbeat, gives up r.release,
  /// renews every lease the node holds, takes those of r.take that no live
  /// node holds, and reads every node and lease. Fails with
  /// "store_unavailable" when the database is out of reach.
  virtual result<membership> heartbeat(const heartbeat_request& r) = 0;

  /// The node leaves: every lease it holds is released (others may take
  /// them at once; they are told) and it is no longer listed.
  virtual status leave(std::string_view node) = 0;

  /// Every node known and the leases they hold, as of now (alive: a
  /// heartbeat younger than `ttl`).
  virtual result<std::vector<node_record>>
  nodes(std::chrono::milliseconds ttl) = 0;

  /// Calls `fn` (on the store's listening thread) for every piece of news;
  /// set once, before the first heartbeat. Commits of this process are news
  /// too. Delivery is at most once and may be late: a reader that must
  /// not miss anything also looks on its own now and then.
  virtual void listen(std::function<void(cluster_news, std::uint64_t)> fn) = 0;
};

} // namespace tocsin::storage
