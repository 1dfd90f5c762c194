// An endpoint's health changed (see endpoint_queue's health_change): what
// the endpoint actor tells the ingest actor, which raises a system.health
// event for the other endpoints. Free of CAF.
#pragma once

#include <string>

namespace tocsin::delivery {

struct health_report {
  std::string endpoint_id;
  bool healthy = false; ///< recovered; false: turned unhealthy
  std::string reason;   ///< why it turned unhealthy
};

} // namespace tocsin::delivery
