// The engine: the actor system with the ingest actor (which supervises one
// actor per endpoint), wired to the event log and the HTTPS client. Starts
// at once, whatever the backlog: each endpoint actor pages its pending
// deliveries in from the store. Free of CAF, so that the HTTP side need not
// include it.
#pragma once

#include "common/defaults.hpp"
#include "common/endpoint_board.hpp"
#include "delivery/answer.hpp"
#include "delivery/endpoint_change.hpp"
#include "delivery/endpoint_config.hpp"
#include "delivery/escalation.hpp"
#include "delivery/new_event.hpp"
#include "delivery/reconfiguration.hpp"
#include "delivery/replay.hpp"
#include "net/https_client.hpp"
#include "storage/store.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

namespace tocsin::actors {

/// One node of a cluster sharing the store (storage::store::cluster()).
struct cluster_options {
  std::string node;   ///< this node's id
  std::string listen; ///< where its API listens (GET /v1/cluster)
  std::chrono::milliseconds lease_ttl{10000};
  /// The log position the endpoints given to the engine reflect: the
  /// follower reads what other nodes did from there on.
  std::uint64_t follow_from = 1;
  /// Reads an endpoint's stored definition into the settings it runs with.
  std::function<result<delivery::endpoint_config>(std::string_view)>
      endpoint_loader;
};

struct engine_options {
  std::vector<delivery::endpoint_config> endpoints;
  /// Worker threads of the actor scheduler (the ingest actor has its own).
  std::size_t scheduler_threads = 1;
  /// Payloads over this are delivered cut down (delivery/payload.hpp).
  std::size_t max_payload_bytes = defaults::max_payload_bytes;
  /// Deliveries each endpoint holds in memory (delivery.queue_window).
  std::size_t queue_window = defaults::queue_window;
  /// Escalation rules ([[escalation]]), run over every accepted event.
  std::vector<delivery::escalation_rule> escalation = {};
  /// server.public_url: where links to an event on the dashboard point.
  std::string public_url = {};
  /// Set: this node is one of a cluster (the store must be one that nodes
  /// share). Unset: it is alone and drives every endpoint.
  std::optional<cluster_options> cluster = {};
  /// Where endpoint actors show what they are doing (for the API); none:
  /// nowhere.
  std::shared_ptr<endpoint_board> board = {};
};

class engine {
public:
  /// `log` and `client` must outlive the engine.
  static result<std::unique_ptr<engine>>
  start(engine_options opts, storage::store& log, net::https_client& client);

  virtual ~engine() = default;

  /// Accepts validated events; `done` runs once they are durable (or not).
  /// Thread-safe.
  virtual void ingest(delivery::ingest_batch batch,
                      delivery::ingest_callback done) = 0;

  /// Puts dead letters back in their endpoints' queues. Thread-safe.
  virtual void replay(delivery::replay_selection selection,
                      delivery::replay_callback done) = 0;

  /// Records an operator's answer to an event (acknowledged, resolved) and
  /// tells the endpoints that follow events' state. Thread-safe.
  virtual void answer(delivery::answer_request request,
                      delivery::answer_callback done) = 0;

  /// Creates, changes or deletes an endpoint (logged before it takes
  /// effect). Thread-safe.
  virtual void change_endpoint(delivery::endpoint_change change,
                               delivery::endpoint_change_callback done) = 0;

  /// Applies a reload of the config file (its endpoint changes in one
  /// logged write, its escalation rules), all of it or, with an error,
  /// none. Thread-safe.
  virtual void reconfigure(delivery::reconfiguration r,
                           delivery::endpoint_change_callback done) = 0;

  /// Starts no new attempts and waits up to `timeout` for those in flight
  /// (each endpoint answers when it has none left). In a cluster, hands
  /// every endpoint over first and leaves (the others take them at once).
  virtual void drain(std::chrono::milliseconds timeout) = 0;

  /// Whether the actor that takes events answers a question within
  /// `timeout` (the service manager's watchdog asks). Thread-safe.
  virtual bool responsive(std::chrono::milliseconds timeout) = 0;
};

} // namespace tocsin::actors
