#include "endpoints/reconcile.hpp"

#include "common/log.hpp"

#include <algorithm>

namespace tocsin::endpoints {

endpoint_plan
plan_endpoints(const std::map<std::string, endpoint_definition>& stored,
               const std::vector<endpoint_entry>& declared, unix_ms now) {
  using kind = planned_change::kind;
  endpoint_plan out;
  for (auto& entry : declared) {
    auto def = entry.definition;
    def.source = "config";
    auto it = stored.find(def.id);
    if (it == stored.end()) {
      def.created_at = def.updated_at = now;
      def.revision = 1;
      out.changes.push_back({kind::create, def, 0, false});
      ++out.created;
    } else if (it->second.source != "config" ||
               !same_settings(it->second, def)) {
      def.created_at = it->second.created_at;
      def.updated_at = now;
      def.revision = it->second.revision + 1;
      out.changes.push_back({kind::update, def, it->second.revision,
                             it->second.source != "config"});
      ++out.updated;
    } else {
      def = it->second;
    }
    out.endpoints.insert_or_assign(def.id, std::move(def));
  }
  for (auto& [id, def] : stored) {
    if (out.endpoints.count(id))
      continue;
    if (def.source == "config") {
      out.changes.push_back({kind::remove, def, def.revision, false});
      ++out.removed;
      continue;
    }
    out.endpoints.emplace(id, def);
  }
  std::sort(out.changes.begin(), out.changes.end(),
            [](const planned_change& a, const planned_change& b) {
              return a.definition.id < b.definition.id;
            });
  return out;
}

result<std::map<std::string, endpoint_definition>>
stored_endpoints(storage::store& log) {
  auto stored_text = log.list_endpoints();
  if (!stored_text)
    return stored_text.error();
  std::map<std::string, endpoint_definition> stored;
  for (auto& [id, text] : *stored_text) {
    auto def = from_stored_json(text);
    if (!def)
      return error{def.error().code,
                   "endpoint " + id + ": " + def.error().message};
    stored.emplace(id, std::move(*def));
  }
  return stored;
}

status check_transports(const endpoint_plan& plan,
                        const plugins::loaded_plugins& transports) {
  for (auto& [id, def] : plan.endpoints)
    if (auto st = check_transport(def, transports); !st)
      return error{st.error().code,
                   "endpoint " + id + " (" + def.source +
                       "): " + st.error().message,
                   st.error().field};
  return {};
}

result<loaded_endpoints>
load_endpoints(storage::store& log, const std::vector<endpoint_entry>& declared,
               const endpoint_defaults& defaults,
               const plugins::loaded_plugins& transports, unix_ms now) {
  auto stored = stored_endpoints(log);
  if (!stored)
    return stored.error();
  auto plan = plan_endpoints(*stored, declared, now);
  TOCSIN_TRY(check_transports(plan, transports));
  storage::changes ws;
  for (auto& c : plan.changes) {
    auto& def = c.definition;
    switch (c.what) {
    case planned_change::kind::create:
      ws.endpoint_put(def.id, to_stored_json(def),
                      storage::record_kind::endpoint_created);
      break;
    case planned_change::kind::update:
      if (c.takes_over)
        log::warn("the config file takes over an endpoint created with the "
                  "API",
                  {{"endpoint", def.id}});
      ws.endpoint_put(def.id, to_stored_json(def),
                      storage::record_kind::endpoint_updated);
      break;
    case planned_change::kind::remove:
      // Its pending deliveries are dead-lettered by recovery.
      ws.endpoint_deleted(def.id);
      break;
    }
  }
  if (auto st = log.commit(ws, storage::durability::synced); !st)
    return st.error();
  loaded_endpoints out;
  out.created = plan.created;
  out.updated = plan.updated;
  out.removed = plan.removed;
  for (auto& [id, def] : plan.endpoints) {
    auto cfg = runtime_config(def, defaults, &transports);
    if (!cfg)
      return error{cfg.error().code,
                   "endpoint " + id + ": " + cfg.error().message};
    out.runtime.push_back(std::move(*cfg));
  }
  return out;
}

} // namespace tocsin::endpoints
