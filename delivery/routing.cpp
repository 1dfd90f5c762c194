#include "delivery/routing.hpp"

#include <fnmatch.h>
#include <string>

namespace tocsin::delivery {

bool matches(const endpoint_filter& f, const event_facts& e) {
  if (e.severity < f.min_severity)
    return false;
  bool type_ok = false;
  for (auto& t : f.event_types)
    if (t == "*" || t == e.type) {
      type_ok = true;
      break;
    }
  if (!type_ok)
    return false;
  if (f.agents.empty())
    return true;
  std::string agent{e.agent_id};
  for (auto& glob : f.agents)
    if (fnmatch(glob.c_str(), agent.c_str(), 0) == 0)
      return true;
  return false;
}

} // namespace tocsin::delivery
