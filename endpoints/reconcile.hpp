// Endpoints from the config file: the ones stored by the API, and the ones
// the file declares, reconciled into the store (every change logged) — at
// start before the engine starts, and on a reload through the engine.
#pragma once

#include "endpoints/definition.hpp"
#include "storage/store.hpp"

#include <map>
#include <string>
#include <vector>

namespace tocsin::endpoints {

/// One change the config file makes to the stored endpoints.
struct planned_change {
  enum class kind { create, update, remove } what = kind::create;
  /// As it is to be stored (create, update: source "config", timestamps and
  /// revision set), or as it was stored (remove).
  endpoint_definition definition;
  /// update and remove: the stored revision it is made from.
  std::int64_t based_on = 0;
  /// An endpoint created with the API that the file now declares.
  bool takes_over = false;
};

/// What the config file's endpoints do to the stored ones.
struct endpoint_plan {
  std::vector<planned_change> changes; ///< in id order, one per endpoint
  /// Every endpoint once the changes are made, in id order.
  std::map<std::string, endpoint_definition> endpoints;
  std::size_t created = 0; ///< config entries new to the store
  std::size_t updated = 0; ///< config entries that changed (or taken over)
  std::size_t removed = 0; ///< config entries no longer in the config
};

/// The config file is authoritative for the endpoints it declares (source
/// "config"): new ones are created, changed ones updated (an API-created
/// endpoint of the same id is taken over), and those gone from the file
/// deleted. API-created endpoints are kept as stored. Pure.
endpoint_plan
plan_endpoints(const std::map<std::string, endpoint_definition>& stored,
               const std::vector<endpoint_entry>& declared, unix_ms now);

/// Every stored endpoint, by id.
result<std::map<std::string, endpoint_definition>>
stored_endpoints(storage::store& log);

/// Whether every endpoint of `plan` names a loaded transport that accepts
/// its options; otherwise the error names the endpoint.
status check_transports(const endpoint_plan& plan,
                        const plugins::loaded_plugins& transports);

struct loaded_endpoints {
  std::vector<delivery::endpoint_config> runtime;
  std::size_t created = 0; ///< config entries new to the store
  std::size_t updated = 0; ///< config entries that changed
  std::size_t removed = 0; ///< config entries no longer in the config
};

/// At start: plans the config file's endpoints against the stored ones
/// (plan_endpoints) and commits the changes in one synced write. Every
/// endpoint must name a loaded transport that accepts its options;
/// otherwise nothing is changed and the error names the endpoint.
result<loaded_endpoints>
load_endpoints(storage::store& log, const std::vector<endpoint_entry>& declared,
               const endpoint_defaults& defaults,
               const plugins::loaded_plugins& transports, unix_ms now);

} // namespace tocsin::endpoints
