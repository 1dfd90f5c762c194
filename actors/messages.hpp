// The protocols of tocsin's actors, as typed actor interfaces: the compiler
// checks every message sent to them and every reply. Payloads are local to
// one process by design (a cluster shares the store, not actor messages),
// so they are allowed without serializers.
#pragma once

#include "delivery/answer.hpp"
#include "delivery/endpoint_change.hpp"
#include "delivery/endpoint_config.hpp"
#include "delivery/health.hpp"
#include "delivery/job.hpp"
#include "delivery/new_event.hpp"
#include "delivery/reconfiguration.hpp"
#include "delivery/replay.hpp"
#include "net/http_types.hpp"
#include "storage/cluster.hpp"

#include <optional>
#include <string>
#include <vector>

#include <caf/all.hpp>

CAF_BEGIN_TYPE_ID_BLOCK(tocsin, caf::first_custom_type_id)
CAF_ADD_ATOM(tocsin, tocsin::actors, deliver_atom, "deliver")
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
CAF_ADD_ATOM(tocsin, tocsin::actors, answer_atom, "answer")
CAF_ADD_ATOM(tocsin, tocsin::actors, health_atom, "health")
CAF_ADD_ATOM(tocsin, tocsin::actors, sent_atom, "sent")
CAF_ADD_ATOM(tocsin, tocsin::actors, fetch_atom, "fetch")
CAF_ADD_ATOM(tocsin, tocsin::actors, own_atom, "own")
CAF_ADD_ATOM(tocsin, tocsin::actors, disown_atom, "disown")
CAF_ADD_ATOM(tocsin, tocsin::actors, hand_over_atom, "handover")
CAF_ADD_ATOM(tocsin, tocsin::actors, fenced_atom, "fenced")
CAF_ADD_ATOM(tocsin, tocsin::actors, follow_atom, "follow")
CAF_ADD_ATOM(tocsin, tocsin::actors, names_atom, "names")
CAF_ADD_ATOM(tocsin, tocsin::actors, news_atom, "news")
CAF_ADD_ATOM(tocsin, tocsin::actors, leave_atom, "leave")
CAF_ADD_ATOM(tocsin, tocsin::actors, round_atom, "round")
CAF_ADD_ATOM(tocsin, tocsin::actors, reload_atom, "reload")
CAF_END_TYPE_ID_BLOCK(tocsin)

namespace tocsin::actors {

/// A delivery that became pending (created or replayed) at log position
/// `seq`, as a node of a cluster learns it from the log.
struct pending_news {
  std::string delivery_id;
  std::string endpoint_id;
  std::uint64_t seq = 0;
};

/// What a node of a cluster read from the shared log since it last looked
/// (actors/log_follower.hpp), for the ingest actor.
struct follow_batch {
  std::vector<pending_news> pending;
  /// Events accepted (by any node), in log order: what the escalation rules
  /// observe on the node that holds the escalation lease.
  std::vector<std::string> accepted;
  /// Endpoints created or changed (their stored definition) or deleted
  /// (nothing), in log order.
  std::vector<std::pair<std::string, std::optional<std::string>>> endpoints;
  std::uint64_t through = 0; ///< the last sequence read

  bool empty() const {
    return pending.empty() && accepted.empty() && endpoints.empty();
  }
};

/// One endpoint: its queue, timers and requests in flight.
///  - deliver: deliveries to attempt (new or replayed), handed over by the
///    commit at that log position;
///  - done: an attempt of the delivery with that id ended with that answer;
///  - update: new settings for the next attempts;
///  - remove: the endpoint was deleted: dead-letter what is queued, let the
///    attempts in flight finish, then quit;
///  - tick: something waited for time (a retry, a token, a probe);
///  - flush: write the outcomes recorded since the last flush;
///  - drain: start nothing new; answered (true) once nothing is in flight;
///  - fetch: (cluster) deliveries another node made pending, by id and the
///    log position that made them so: read them from the store and take
///    those still pending.
using endpoint_actor = caf::typed_actor<
    caf::reacts_to<deliver_atom, std::vector<delivery::job>, std::uint64_t>,
    caf::reacts_to<fetch_atom, std::vector<pending_news>>,
    caf::reacts_to<done_atom, std::string, net::inbound_response>,
    caf::reacts_to<update_atom, delivery::endpoint_config>,
    caf::reacts_to<remove_atom>, caf::reacts_to<tick_atom>,
    caf::reacts_to<flush_atom>, caf::replies_to<drain_atom>::with<bool>>;

using ingest_reply = result<delivery::ingest_answer>;
using replay_reply = result<std::size_t>;
using answer_reply = result<delivery::answer_outcome>;

/// Accepts events, operators' answers to them (acknowledged, resolved),
/// endpoints' health changes (raised as system.health events), triggers
/// delivered to endpoints that follow events' state (sent: event id,
/// endpoint id; an answer that came meanwhile is sent after them) and
/// control-plane changes (reload: a reload of the config file, its endpoint
/// changes and escalation rules all at once), and supervises the endpoint
/// actors. Every reply comes once the change is durable (group commit for
/// events and replays, a synced write per endpoint change or reload).
///
/// In a cluster it drives only the endpoints whose leases this node holds
/// (own: start driving under that epoch; disown: stop at once, another node
/// may hold it; hand_over: let what is in flight finish, answered once
/// nothing runs), hears of what other nodes did from the log (follow), and
/// gives up an endpoint whose write was fenced.
using ingest_actor = caf::typed_actor<
    caf::replies_to<ingest_atom, delivery::ingest_batch>::with<ingest_reply>,
    caf::replies_to<replay_atom,
                    delivery::replay_selection>::with<replay_reply>,
    caf::replies_to<endpoint_atom, delivery::endpoint_change>::with<status>,
    caf::replies_to<reload_atom, delivery::reconfiguration>::with<status>,
    caf::replies_to<answer_atom, delivery::answer_request>::with<answer_reply>,
    caf::reacts_to<flush_atom>,
    caf::reacts_to<health_atom, delivery::health_report>,
    caf::reacts_to<sent_atom, std::string, std::string>,
    caf::replies_to<endpoints_atom>::with<std::vector<endpoint_actor>>,
    caf::reacts_to<own_atom, std::string, std::uint64_t>,
    caf::reacts_to<disown_atom, std::string>,
    caf::replies_to<hand_over_atom, std::string>::with<bool>,
    caf::reacts_to<follow_atom, follow_batch>,
    caf::reacts_to<fenced_atom, std::string>>;

} // namespace tocsin::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(tocsin::delivery::job)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<tocsin::delivery::job>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(tocsin::delivery::endpoint_config)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(tocsin::delivery::ingest_batch)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(tocsin::delivery::replay_selection)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(tocsin::delivery::endpoint_change)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(tocsin::delivery::reconfiguration)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(tocsin::net::inbound_response)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(tocsin::actors::ingest_reply)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(tocsin::actors::replay_reply)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(tocsin::delivery::answer_request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(tocsin::delivery::health_report)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(tocsin::actors::answer_reply)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(tocsin::status)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<tocsin::actors::endpoint_actor>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(tocsin::actors::follow_batch)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<tocsin::actors::pending_news>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(tocsin::storage::cluster_news)
