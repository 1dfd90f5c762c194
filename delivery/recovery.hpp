// Restart recovery: every pending delivery in the store, handed back to its
// endpoint at its scheduled time. An attempt a crash cut short is recorded
// as interrupted and retried at once (it does not count against the budget);
// a delivery whose endpoint is gone is dead-lettered "endpoint_deleted".
#pragma once

#include "delivery/job.hpp"
#include "storage/event_log.hpp"

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace tocsin::delivery {

struct recovery_report {
  std::size_t resumed = 0;     ///< pending deliveries handed to their endpoints
  std::size_t interrupted = 0; ///< attempts a crash cut short (retried)
  std::size_t orphaned = 0;    ///< endpoint gone: dead-lettered
};

struct recovered {
  std::map<std::string, std::vector<job>> jobs; ///< per endpoint
  recovery_report report;
};

/// Reads the pending deliveries of the endpoints `wanted` says yes to;
/// `exists` says which endpoints are configured (the others' deliveries are
/// dead-lettered). The fixes (interrupted attempts, orphans) are committed
/// (synced) before this returns.
result<recovered>
recover_pending(storage::event_log& log,
                const std::function<bool(const std::string&)>& exists,
                const std::function<bool(const std::string&)>& wanted,
                std::size_t max_payload_bytes, unix_ms now);

} // namespace tocsin::delivery
