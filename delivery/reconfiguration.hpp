// What a reload of the config file (SIGHUP) asks of the engine: the changes
// the file makes to its endpoints and, when they changed, the escalation
// rules. All of it takes effect, or none. Free of CAF so that the daemon's
// composition root need not include it.
#pragma once

#include "delivery/endpoint_change.hpp"
#include "delivery/escalation.hpp"

#include <optional>
#include <vector>

namespace tocsin::delivery {

struct reconfiguration {
  /// Logged in one synced write, in this order; each is checked as the API's
  /// would be ("conflict" when an endpoint changed since it was read).
  std::vector<endpoint_change> endpoints = {};
  /// The rules from now on; nothing: they stay as they are.
  std::optional<std::vector<escalation_rule>> escalation = {};

  bool empty() const { return endpoints.empty() && !escalation; }
};

} // namespace tocsin::delivery
