#include "endpoints/reconcile.hpp"

#include "common/log.hpp"

#include <map>

namespace tocsin::endpoints {

result<loaded_endpoints>
load_endpoints(storage::store& log, const std::vector<endpoint_entry>& declared,
               const endpoint_defaults& defaults,
               const plugins::loaded_plugins& transports, unix_ms now) {
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
  loaded_endpoints out;
  storage::changes ws;
  std::map<std::string, endpoint_definition> final;
  for (auto& entry : declared) {
    auto def = entry.definition;
    def.source = "config";
    auto it = stored.find(def.id);
    if (it == stored.end()) {
      def.created_at = def.updated_at = now;
      def.revision = 1;
      ws.endpoint_put(def.id, to_stored_json(def),
                      storage::record_kind::endpoint_created);
      ++out.created;
    } else if (it->second.source != "config" ||
               !same_settings(it->second, def)) {
      if (it->second.source != "config")
        log::warn("the config file takes over an endpoint created with the "
                  "API",
                  {{"endpoint", def.id}});
      def.created_at = it->second.created_at;
      def.updated_at = now;
      def.revision = it->second.revision + 1;
      ws.endpoint_put(def.id, to_stored_json(def),
                      storage::record_kind::endpoint_updated);
      ++out.updated;
    } else {
      def = it->second;
    }
    final.insert_or_assign(def.id, std::move(def));
  }
  for (auto& [id, def] : stored) {
    if (final.count(id))
      continue;
    if (def.source == "config") {
      // Its pending deliveries are dead-lettered by recovery.
      ws.endpoint_deleted(id);
      ++out.removed;
      continue;
    }
    final.emplace(id, def);
  }
  for (auto& [id, def] : final)
    if (auto st = check_transport(def, transports); !st)
      return error{st.error().code,
                   "endpoint " + id + " (" + def.source +
                       "): " + st.error().message,
                   st.error().field};
  if (auto st = log.commit(ws, storage::durability::synced); !st)
    return st.error();
  for (auto& [id, def] : final) {
    auto cfg = runtime_config(def, defaults, &transports);
    if (!cfg)
      return error{cfg.error().code,
                   "endpoint " + id + ": " + cfg.error().message};
    out.runtime.push_back(std::move(*cfg));
  }
  return out;
}

} // namespace tocsin::endpoints
