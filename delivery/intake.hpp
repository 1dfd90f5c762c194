// What the ingest actor does, without the actor: routes accepted events to
// endpoints, answers idempotency keys, collects everything that arrives
// between two commits into one synced write (group commit, the
// pending_commit), and only then hands the new deliveries over; replays
// dead letters; raises health events; applies endpoint changes to the
// routing table after logging them. It owns the routing table: one owner,
// so an event accepted after a change's answer sees it. Operators' answers
// (answers.hpp) and the escalation rules (episodes.hpp) are units of their
// own that add to the same commit.
#pragma once

#include "common/metrics.hpp"
#include "delivery/answers.hpp"
#include "delivery/endpoint_change.hpp"
#include "delivery/episodes.hpp"
#include "delivery/health.hpp"
#include "delivery/job.hpp"
#include "delivery/new_event.hpp"
#include "delivery/pending_commit.hpp"
#include "delivery/reconfiguration.hpp"
#include "delivery/replay.hpp"
#include "delivery/route.hpp"
#include "storage/store.hpp"

#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

namespace tocsin::delivery {

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
  intake(storage::store& log, std::vector<route> routes,
         std::size_t max_payload_bytes,
         std::vector<escalation_rule> escalation = {});

  /// Rebuilds the escalation rules' counts (episodes::restore).
  status restore_escalations(unix_ms now) { return episodes_.restore(now); }

  /// Whether the escalation rules run over each event as it is added (a
  /// node alone: yes, the default). In a cluster they run on one node, over
  /// every event the log says was accepted (observe_accepted).
  void escalate_on_add(bool on) { escalate_on_add_ = on; }
  bool has_escalation_rules() const { return !episodes_.empty(); }

  /// The escalation rules observe events accepted (by any node), in log
  /// order; escalations they fire are added to the next commit, which
  /// `fence` (the escalation lease's) guards. How many fired.
  std::size_t observe_accepted(const std::vector<storage::event_record>& events,
                               const storage::lease_grant& fence);

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

  /// Records an operator's answer in the next commit (answers::answer).
  result<answer_outcome> answer(const answer_request& req, unix_ms now) {
    return answers_.answer(req, now);
  }

  /// Tells an endpoint delivered an event answered meanwhile
  /// (answers::follow_up), in the next commit.
  result<bool> follow_up(const std::string& event_id,
                         const std::string& endpoint_id, unix_ms now) {
    return answers_.follow_up(event_id, endpoint_id, now);
  }

  /// Raises a system.health event about an endpoint whose health changed,
  /// in the next commit, routed to every endpoint that takes it except that
  /// one. Returns the event's id.
  std::string raise_health(const health_report& r, unix_ms now);

  /// Whether anything waits to be committed.
  bool dirty() const { return !pending_.batch.empty(); }

  /// Commits everything added since the last commit with one synced write.
  /// On success the new deliveries are in handoff(); on failure nothing was
  /// stored and they are dropped.
  status commit();

  /// The deliveries of the last successful commit, per endpoint.
  handoff take_handoff();

  /// What sync_endpoint changed in the routing table.
  enum class synced { nothing, created, updated, removed };

  /// Brings the routing table in line with an endpoint's definition as
  /// another node (or this one) logged it: `config` (nothing: deleted).
  /// Nothing is logged; a revision the table has already is left alone.
  synced sync_endpoint(const std::string& id,
                       const std::optional<endpoint_config>& config);

  /// Checks `change` against the routing table (a taken id, an unknown one,
  /// a stale revision: "conflict", "not_found"), logs it with a synced
  /// write and applies it to the routing table. Commit what is pending
  /// first: hand-offs are made against the table they were routed with.
  status change_endpoint(const endpoint_change& change);

  /// A reload of the config file: checks every endpoint change as
  /// change_endpoint() does (each against the table as the ones before it
  /// leave it), readies the new escalation rules (the counts of new and
  /// changed rules rebuilt from the log as at start, when the rules run
  /// here on every event), logs the endpoint changes in one synced write,
  /// then applies all of it. On an error nothing changed. Commit what is
  /// pending first.
  status reconfigure(const reconfiguration& r, unix_ms now);

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

  storage::store& log_;
  std::vector<route> routes_;
  std::size_t max_payload_bytes_;
  unix_ms last_added_at_ = 0; ///< the time of the last add()
  std::unordered_map<std::string, metrics::counter*> accepted_by_type_;
  metrics::counter& accepted(const std::string& type);
  pending_commit pending_;
  answers answers_{log_, routes_, max_payload_bytes_, pending_};
  episodes episodes_;
  /// Idempotency keys recorded in the batch not yet committed.
  std::unordered_map<std::string, storage::idempotency_record> pending_keys_;
  std::unordered_map<std::string, bool> replaying_; ///< in this batch
  bool escalate_on_add_ = true;
  handoff committed_;
};

} // namespace tocsin::delivery
