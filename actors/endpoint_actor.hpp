// The endpoint actor: a shell around delivery::endpoint_queue that gives it
// a mailbox, a timer, the store and the HTTPS client. It logs each attempt
// before it starts and each outcome before it takes effect (one write for
// all outcomes of a mailbox burst and the attempts that start as they free
// their places), and reads its pending deliveries from the store a page at a
// time when the queue asks (at start, and whenever a backlog runs low in
// memory; a page's records and events in one batched lookup each).
#pragma once

#include "actors/messages.hpp"
#include "common/defaults.hpp"
#include "common/endpoint_board.hpp"
#include "common/log.hpp"
#include "common/metrics.hpp"

#include "common/time.hpp"
#include "delivery/endpoint_queue.hpp"
#include "delivery/escalation.hpp"
#include "net/https_client.hpp"
#include "storage/store.hpp"
#include <array>

#include <functional>
#include <optional>
#include <vector>

namespace tocsin::actors {

/// What the actors run against: the store, the network, and the time
/// (Unix ms; tests give a clock that follows CAF's test scheduler).
struct actor_deps {
  storage::store* log = nullptr;
  net::https_client* client = nullptr;
  std::function<unix_ms()> clock = now_ms;
  std::size_t max_payload_bytes = defaults::max_payload_bytes;
  /// Deliveries an endpoint actor holds in memory (endpoint_queue).
  std::size_t queue_window = defaults::queue_window;
  /// Where endpoint actors report health changes: the ingest actor that
  /// supervises them (a weak reference; unset in tests of one endpoint).
  caf::actor_addr supervisor = {};
  /// The escalation rules the ingest actor runs ([[escalation]]).
  std::vector<delivery::escalation_rule> escalation = {};
  /// server.public_url, for links to an event on the dashboard.
  std::string public_url = {};
  /// Cluster mode: this node's id (recorded in every attempt it makes).
  std::string node = {};
  /// Cluster mode: the epoch of the lease an endpoint actor drives its
  /// endpoint under; every write it makes carries it (0: alone, unfenced).
  std::uint64_t epoch = 0;
  /// Cluster mode: reads an endpoint's stored definition (as the log
  /// carries it) into the settings it runs with.
  std::function<result<delivery::endpoint_config>(std::string_view)>
      endpoint_loader = {};
  /// Where the endpoint actors show their in-flight limits (for the API).
  std::shared_ptr<endpoint_board> board = {};
};

/// The endpoint's metrics, looked up once (updates take no lock).
struct endpoint_metrics {
  /// Attempts by class of answer: 2xx, 3xx, 4xx, 5xx, error (none).
  std::array<metrics::counter*, 5> attempts{};
  metrics::counter* delivered = nullptr;
  metrics::counter* dead_lettered = nullptr;
  metrics::histogram* latency = nullptr;
  metrics::gauge* circuit_open = nullptr;
  metrics::gauge* in_flight_limit = nullptr;
  metrics::gauge* in_flight = nullptr;

  static endpoint_metrics of(const delivery::endpoint_config& c);
  void attempt(const net::inbound_response& r);
};

struct endpoint_state {
  std::optional<delivery::endpoint_queue> queue;
  actor_deps deps;
  storage::changes outcomes; ///< recorded, written at the next flush
  bool flush_scheduled = false;
  bool paged_once = false;
  log::throttle store_errors_log; ///< a store refusing writes: not every time
  bool fenced = false; ///< another node took the lease: nothing more runs
  unix_ms tick_at = 0; ///< the pending tick's time; 0: none
  std::vector<caf::typed_response_promise<bool>> drained;
  endpoint_metrics measured;
  endpoint_live shown; ///< what the board and the gauges show

  endpoint_state() = default;
  endpoint_state(const endpoint_state&) = delete;
  endpoint_state& operator=(const endpoint_state&) = delete;
  ~endpoint_state() {
    if (deps.board && queue)
      deps.board->erase(queue->config().id);
  }

  static inline const char* name = "tocsin.endpoint";
};

endpoint_actor::behavior_type
endpoint_actor_fn(endpoint_actor::stateful_pointer<endpoint_state> self,
                  delivery::endpoint_config config, actor_deps deps);

} // namespace tocsin::actors
