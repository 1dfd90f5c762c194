// Endpoints at start: the ones stored by the API, and the ones the config
// file declares, reconciled into the store (every change logged) before the
// engine starts.
#pragma once

#include "endpoints/definition.hpp"
#include "storage/store.hpp"

#include <vector>

namespace tocsin::endpoints {

struct loaded_endpoints {
  std::vector<delivery::endpoint_config> runtime;
  std::size_t created = 0; ///< config entries new to the store
  std::size_t updated = 0; ///< config entries that changed
  std::size_t removed = 0; ///< config entries no longer in the config
};

/// The config file is authoritative for the endpoints it declares (source
/// "config"): new ones are created, changed ones updated (an API-created
/// endpoint of the same id is taken over), and those gone from the file
/// deleted. API-created endpoints are kept as stored.
/// Every endpoint must name a loaded transport that accepts its options;
/// otherwise nothing is changed and the error names the endpoint.
result<loaded_endpoints>
load_endpoints(storage::store& log, const std::vector<endpoint_entry>& declared,
               const endpoint_defaults& defaults,
               const plugins::loaded_plugins& transports, unix_ms now);

} // namespace tocsin::endpoints
