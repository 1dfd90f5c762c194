// Which endpoints an event goes to.
#pragma once

#include "delivery/endpoint_config.hpp"

#include <string_view>

namespace tocsin::delivery {

struct event_facts {
  std::string_view type;
  int severity = 0;
  std::string_view agent_id;
};

bool matches(const endpoint_filter& f, const event_facts& e);

} // namespace tocsin::delivery
