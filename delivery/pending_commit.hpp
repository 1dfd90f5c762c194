// What the intake gathers for its next commit: the log records, the
// deliveries to hand to their endpoints once the commit is durable, the
// counters that count it then, and the events answered meanwhile as they
// will be stored. Ingest, answers and escalation all add to this one
// commit: everything accepted between two commits is made durable by one
// synced write.
#pragma once

#include "common/metrics.hpp"
#include "delivery/job.hpp"
#include "storage/store.hpp"

#include <map>
#include <string>
#include <unordered_map>
#include <vector>

namespace tocsin::delivery {

struct pending_commit {
  storage::changes batch;
  /// New deliveries per endpoint, handed over once the commit succeeded.
  std::map<std::string, std::vector<job>> handoff;
  /// Counted once the commit that makes them true succeeds.
  std::vector<metrics::counter*> on_commit;
  /// Events answered in this commit, as they will be stored (the store
  /// does not show them yet).
  std::unordered_map<std::string, storage::event_record> answered;

  void hand_over(const std::string& endpoint_id, job j) {
    handoff[endpoint_id].push_back(std::move(j));
  }
};

} // namespace tocsin::delivery
