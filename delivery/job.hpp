// A delivery as an endpoint works on it: its state (the fold of its log
// records) and the event it carries, shared by all of the event's
// deliveries.
#pragma once

#include "delivery/event_content.hpp"
#include "storage/records.hpp"

#include <memory>

namespace tocsin::delivery {

struct job {
  storage::delivery state;
  std::shared_ptr<const event_content> event;
};

} // namespace tocsin::delivery
