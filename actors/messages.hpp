// Atoms and message types exchanged between tocsin's actors. All local to one
// node for now (allowed as unsafe types); the cluster will add inspectors.
#pragma once

#include "actors/endpoint_change.hpp"
#include "actors/replay.hpp"
#include "delivery/event_content.hpp"
#include "delivery/new_event.hpp"
#include "net/http_types.hpp"
#include "storage/records.hpp"

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <caf/all.hpp>

CAF_BEGIN_TYPE_ID_BLOCK(tocsin, caf::first_custom_type_id)
CAF_ADD_ATOM(tocsin, tocsin::actors, deliver_atom, "deliver")
CAF_ADD_ATOM(tocsin, tocsin::actors, retry_atom, "retry")
CAF_ADD_ATOM(tocsin, tocsin::actors, done_atom, "done")
CAF_ADD_ATOM(tocsin, tocsin::actors, ingest_atom, "ingest")
CAF_ADD_ATOM(tocsin, tocsin::actors, flush_atom, "flush")
CAF_ADD_ATOM(tocsin, tocsin::actors, drain_atom, "drain")
CAF_ADD_ATOM(tocsin, tocsin::actors, replay_atom, "replay")
CAF_ADD_ATOM(tocsin, tocsin::actors, endpoint_atom, "endpoint")
CAF_ADD_ATOM(tocsin, tocsin::actors, update_atom, "update")
CAF_ADD_ATOM(tocsin, tocsin::actors, remove_atom, "remove")
CAF_ADD_ATOM(tocsin, tocsin::actors, endpoints_atom, "endpoints")
CAF_ADD_ATOM(tocsin, tocsin::actors, tick_atom, "tick")
CAF_END_TYPE_ID_BLOCK(tocsin)

namespace tocsin::actors {

/// A delivery and the event it carries, as an endpoint actor works on it.
struct delivery_job {
  storage::delivery state;
  std::shared_ptr<const delivery::event_content> event;
};

struct ingest_request {
  delivery::ingest_batch batch;
  delivery::ingest_callback done;
  /// Set when the answer is a repeat's: the first request's ids.
  std::optional<std::vector<std::string>> answer = {};
  /// Deliveries this request created.
  std::size_t deliveries = 0;
};

struct replay_request {
  replay_selection selection;
  replay_callback done;
};

struct endpoint_change_request {
  endpoint_change change;
  endpoint_change_callback done;
};

} // namespace tocsin::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(tocsin::actors::replay_request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(tocsin::actors::endpoint_change_request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(tocsin::delivery::endpoint_config)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<caf::actor>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(tocsin::actors::delivery_job)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<tocsin::actors::delivery_job>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(tocsin::actors::ingest_request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(tocsin::net::inbound_response)
