// What the API asks for when an operator replays dead letters. Free of CAF.
#pragma once

#include "common/result.hpp"
#include "common/time.hpp"

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

namespace tocsin::delivery {

/// Which dead letters to put back in their endpoints' queues: the listed
/// deliveries, or the dead letters of one endpoint that were dead-lettered at
/// or after `since` (at most `limit` of them, oldest first).
struct replay_selection {
  std::vector<std::string> delivery_ids = {};
  std::string endpoint_id = {};
  unix_ms since = 0;
  std::size_t limit = 10000;
};

/// Runs once with how many deliveries were queued again (after the change is
/// durable), or an error: "not_found", "not_dead_lettered",
/// "endpoint_deleted", "store_unavailable".
using replay_callback = std::function<void(result<std::size_t>)>;

} // namespace tocsin::delivery
