// The two actors that make a node one of a cluster sharing a PostgreSQL
// store (storage/cluster.hpp), both detached (they wait on the database):
//  - membership: heartbeats once a second (and at once on news that leases
//    were released), keeps delivery::lease_keeper's view, and tells the
//    ingest actor which endpoints to start driving (own), stop at once
//    (disown) or hand over (drain, then release). Asked to leave (SIGTERM),
//    it hands everything over and leaves the cluster.
//  - log follower: reads the shared log from where it stands whenever the
//    store says a commit was made (LISTEN/NOTIFY), and every half second in
//    case news was missed, and hands the ingest actor what other nodes did:
//    deliveries made pending, endpoints changed, events accepted.
#pragma once

#include "actors/messages.hpp"
#include "common/log.hpp"
#include "common/time.hpp"
#include "delivery/lease_keeper.hpp"
#include "storage/store.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <caf/all.hpp>

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(tocsin::actors::ingest_actor)

namespace tocsin::actors {

struct membership_state {
  std::optional<delivery::lease_keeper> keeper;
  storage::cluster_store* cluster = nullptr;
  ingest_actor ingest;
  std::function<unix_ms()> clock;
  std::chrono::milliseconds interval{1000};
  std::vector<std::string> asked; ///< what the last heartbeat tried to take
  std::vector<caf::response_promise> leaving;
  /// Left the cluster: no heartbeat from here on (one would list the node
  /// as alive again, holding nothing, and the others would wait for it).
  bool left = false;
  log::throttle failures_log;

  static inline const char* name = "tocsin.membership";
};

/// Expects the ingest actor (a message of its handle) before it beats.
caf::behavior membership_fn(caf::stateful_actor<membership_state>* self,
                            storage::cluster_store* cluster,
                            delivery::lease_keeper keeper,
                            std::function<unix_ms()> clock);

struct follower_state {
  storage::store* log = nullptr;
  ingest_actor ingest;
  std::uint64_t next = 1; ///< the first sequence not read yet
  std::chrono::milliseconds poll{500};
  /// How long news waits for more news before the log is read.
  std::chrono::milliseconds gather{3};
  bool read_soon = false; ///< a read is scheduled
  log::throttle failures_log;

  static inline const char* name = "tocsin.follower";
};

/// Reads the log from `from` on.
caf::behavior follower_fn(caf::stateful_actor<follower_state>* self,
                          storage::store* log, ingest_actor ingest,
                          std::uint64_t from);

/// The records of the log a follower hands on, read into `b` (the others
/// are skipped). Exposed for tests.
void read_into(follow_batch& b, std::uint64_t seq, std::string_view record);

} // namespace tocsin::actors
