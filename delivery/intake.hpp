// What the ingest actor does, without the actor: routes accepted events to
// endpoints, answers idempotency keys, collects everything that arrives
// between two commits into one synced write (group commit), and only then
// hands the new deliveries over; replays dead letters; applies endpoint
// changes to the routing table after logging them. It owns the routing
// table: one owner, so an event accepted after a change's answer sees it.
#pragma once

#include "common/metrics.hpp"
#include "delivery/answer.hpp"
#include "delivery/endpoint_change.hpp"
#include "delivery/escalation.hpp"
#include "delivery/health.hpp"
#include "delivery/job.hpp"
#include "delivery/new_event.hpp"
#include "delivery/replay.hpp"
#include "storage/event_log.hpp"

#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

namespace tocsin::delivery {

/// Where events go: one entry per endpoint.
struct route {
  std::string endpoint_id;
  endpoint_filter filter;
  bool enabled = true;
  std::int64_t revision = 1;
  std::string transport = "webhook";
  /// Told when an event it was sent is acknowledged or resolved.
  bool follows_state = false;

  static route of(const endpoint_config& c) {
    return route{c.id,        c.filter,
                 c.enabled,   c.revision,
                 c.transport, c.plugin && c.plugin->follows_state()};
  }
};

/// New deliveries of one commit, per endpoint, and the log position of that
/// commit (see endpoint_queue::add).
struct handoff {
  std::map<std::string, std::vector<job>> jobs;
  std::uint64_t as_of = 0;
};

class intake {
public:
  /// `escalation`: the rules run over every accepted event; their
  /// escalations are accepted with it, in the same commit.
  intake(storage::event_log& log, std::vector<route> routes,
         std::size_t max_payload_bytes,
         std::vector<escalation_rule> escalation = {});

  /// Rebuilds the escalation rules' counts from the events accepted in
  /// their horizon before `now` (at start, and after a failed commit, whose
  /// events were counted but not accepted).
  status restore_escalations(unix_ms now);

  const std::vector<route>& routes() const { return routes_; }
  bool routes_to(std::string_view endpoint_id) const;

  /// Adds a request's events (and their deliveries) to the next commit; the
  /// answer holds their ids (the first ones for repeated keys). Error
  /// "idempotency_key_reused": nothing of the request is added.
  result<ingest_answer> add(ingest_batch& batch, unix_ms now);

  /// Puts the selected dead letters back in their queues with a fresh
  /// window (in the next commit); how many. Errors: "not_found",
  /// "not_dead_lettered", "endpoint_deleted", "store_unavailable".
  result<std::size_t> replay(const replay_selection& sel, unix_ms now);

  /// Records an operator's answer to an event (and, for an escalation, to
  /// the events it was derived from) in the next commit, with a notice
  /// delivery for each endpoint that follows events' state and was sent the
  /// event. An event already in that state (or resolved) is left as it is
  /// (changed false). Errors: "not_found", "store_unavailable".
  result<answer_outcome> answer(const answer_request& req, unix_ms now);

  /// An endpoint that follows events' state was delivered `event_id` (the
  /// outcome is durable): if the event was answered meanwhile (while the
  /// trigger was being retried) and the endpoint has no notice of its state
  /// yet, one is added to the next commit. Reads the store: commit first.
  /// Whether a notice was added.
  result<bool> follow_up(const std::string& event_id,
                         const std::string& endpoint_id, unix_ms now);

  /// Raises a system.health event about an endpoint whose health changed,
  /// in the next commit, routed to every endpoint that takes it except that
  /// one. Returns the event's id.
  std::string raise_health(const health_report& r, unix_ms now);

  /// Whether anything waits to be committed.
  bool dirty() const { return !batch_.empty(); }

  /// Commits everything added since the last commit with one synced write.
  /// On success the new deliveries are in handoff(); on failure nothing was
  /// stored and they are dropped.
  status commit();

  /// The deliveries of the last successful commit, per endpoint.
  handoff take_handoff();

  /// Checks `change` against the routing table (a taken id, an unknown one,
  /// a stale revision: "conflict", "not_found"), logs it with a synced
  /// write and applies it to the routing table. Commit what is pending
  /// first: hand-offs are made against the table they were routed with.
  status change_endpoint(const endpoint_change& change);

private:
  std::optional<storage::idempotency_record> find_key(const std::string& key,
                                                      unix_ms now);
  void remember_key(const std::string& key, storage::idempotency_record rec);
  result<std::vector<std::string>> resolve_keys(const ingest_batch& b,
                                                unix_ms now);
  result<std::vector<storage::delivery>> select(const replay_selection& sel);
  std::size_t route_of(std::string_view endpoint_id) const;
  /// Adds one new event and its deliveries to the batch (its escalations
  /// too); how many deliveries.
  std::size_t add_event(new_event& ev, unix_ms now,
                        std::string_view except_endpoint = {});

  storage::event_log& log_;
  std::vector<route> routes_;
  std::size_t max_payload_bytes_;
  std::vector<escalation_rule> escalation_rules_;
  escalator escalator_;
  unix_ms last_added_at_ = 0; ///< the time of the last add()
  /// Counted once the commit that makes them true succeeds.
  std::vector<metrics::counter*> on_commit_;
  std::unordered_map<std::string, metrics::counter*> accepted_by_type_;
  metrics::counter& accepted(const std::string& type);
  storage::write_set batch_;
  /// Idempotency keys recorded in the batch not yet committed.
  std::unordered_map<std::string, storage::idempotency_record> pending_keys_;
  std::unordered_map<std::string, bool> replaying_; ///< in this batch
  /// Events answered in this batch, as they will be stored.
  std::unordered_map<std::string, storage::event_record> answered_;
  result<std::optional<storage::event_record>>
  read_event(const std::string& id);
  result<answered_event> answer_one(storage::event_record rec,
                                    const answer_request& req, unix_ms now);
  std::map<std::string, std::vector<job>> handoff_;
  handoff committed_;
};

} // namespace tocsin::delivery
