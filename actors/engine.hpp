// The engine: the actor system with one actor per endpoint and the ingest
// actor, wired to the event log and the HTTPS client. On start it resumes
// every pending delivery found in the log.
#pragma once

#include "actors/endpoint_change.hpp"
#include "actors/replay.hpp"
#include "delivery/endpoint_config.hpp"
#include "delivery/new_event.hpp"
#include "net/https_client.hpp"
#include "storage/event_log.hpp"

#include <chrono>
#include <memory>
#include <vector>

namespace tocsin::actors {

struct engine_options {
  std::vector<delivery::endpoint_config> endpoints;
  /// Worker threads of the actor scheduler (the ingest actor has its own).
  std::size_t scheduler_threads = 1;
  /// Payloads over this are delivered cut down (transports/payload.hpp).
  std::size_t max_payload_bytes = 4096;
};

struct recovery_report {
  std::size_t resumed = 0;     ///< pending deliveries handed to their endpoints
  std::size_t interrupted = 0; ///< attempts a crash cut short (retried)
  std::size_t orphaned = 0;    ///< endpoint gone: dead-lettered
};

class engine {
public:
  /// `log` and `client` must outlive the engine.
  static result<std::unique_ptr<engine>> start(engine_options opts,
                                               storage::event_log& log,
                                               net::https_client& client);

  virtual ~engine() = default;

  /// Accepts validated events; `done` runs once they are durable (or not).
  /// Thread-safe.
  virtual void ingest(delivery::ingest_batch batch,
                      delivery::ingest_callback done) = 0;

  /// Puts dead letters back in their endpoints' queues. Thread-safe.
  virtual void replay(replay_selection selection, replay_callback done) = 0;

  /// Creates, changes or deletes an endpoint (logged before it takes
  /// effect). Thread-safe.
  virtual void change_endpoint(endpoint_change change,
                               endpoint_change_callback done) = 0;

  /// Starts no new attempts and waits up to `timeout` for those in flight.
  virtual void drain(std::chrono::milliseconds timeout) = 0;

  virtual const recovery_report& recovered() const = 0;
};

} // namespace tocsin::actors
