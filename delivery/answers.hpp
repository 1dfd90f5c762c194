// Operators' answers to events (acknowledged, resolved) and the news of
// them: each answer recorded on the event, and on the events of its
// escalation episode, in the intake's pending commit, with a notice
// delivery for each endpoint that follows events' state and was sent them.
//
// How far the news goes, per endpoint of a transport that follows state:
// - one that pages (PagerDuty): a notice for each answered event whose
//   trigger it was delivered (each incident it holds is acknowledged);
// - one that posts messages (Slack): a message it can edit (its delivery
//   kept a receipt: a Slack app's channel and ts) is edited for each
//   answered event; otherwise one message per answer, about the event that
//   was answered (or the first of its episode the endpoint was sent),
//   saying how many went with it. The clicked message's response_url is
//   used for that one message only, once.
#pragma once

#include "delivery/answer.hpp"
#include "delivery/pending_commit.hpp"
#include "delivery/route.hpp"
#include "storage/store.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace tocsin::delivery {

class answers {
public:
  /// `routes` is the intake's routing table (read at each call).
  answers(storage::store& log, const std::vector<route>& routes,
          std::size_t max_payload_bytes, pending_commit& pending);

  /// Records an operator's answer to an event (and to the events of its
  /// episode: an escalation's members, or the escalations of a member) in
  /// the pending commit, with the notices it calls for. An event already
  /// in that state (or resolved) is left as it is (changed false).
  /// Errors: "not_found", "store_unavailable".
  result<answer_outcome> answer(const answer_request& req, unix_ms now);

  /// An endpoint that follows events' state was delivered `event_id` (the
  /// outcome is durable): if the event was answered meanwhile (while the
  /// trigger was being retried) and the endpoint has no notice of its state
  /// yet, one is added. An endpoint that posts messages gets none for an
  /// event answered along with another (unless it can edit the message it
  /// just posted). Reads the store: commit first. Whether one was added.
  result<bool> follow_up(const std::string& event_id,
                         const std::string& endpoint_id, unix_ms now);

private:
  result<std::optional<storage::event_record>>
  read_event(const std::string& id);
  /// Whether `rec` reached an endpoint as `req.only_if_sent_by` asks.
  result<bool> was_sent(const storage::event_record& rec,
                        const answer_request& req);
  const route* route_to(const std::string& endpoint_id) const;
  /// A notice of `rec`'s current state for `r`, in the pending commit.
  void add_notice(storage::event_record& rec, const route& r,
                  storage::notice news, unix_ms now);

  storage::store& log_;
  const std::vector<route>& routes_;
  std::size_t max_payload_bytes_;
  pending_commit& pending_;
};

} // namespace tocsin::delivery
