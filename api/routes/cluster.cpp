// GET /v1/cluster: the nodes sharing the store and what each drives.
#include "api/handler.hpp"

#include "api/routes/shared.hpp"
#include "common/log.hpp"
#include "common/time.hpp"

namespace tocsin::api {

using namespace shared;

void request_handler::get_cluster(call& c) {
  json nodes = json::array();
  if (auto* cluster = log_.cluster()) {
    // The nodes sharing the store and the leases they hold, as the
    // database sees them.
    auto all = cluster->nodes(opts_.lease_ttl);
    if (!all) {
      log::error("cluster read failed", {{"error", all.error().message}});
      return c.respond(error_response(
          503, all.error().code == "store_unavailable" ? all.error()
                                                       : store_failure));
    }
    for (auto& n : *all) {
      json endpoints = json::array();
      bool escalation = false;
      for (auto& lease : n.leases) {
        if (lease == storage::escalation_lease)
          escalation = true;
        else
          endpoints.push_back(lease);
      }
      json node{{"id", n.id},
                {"listen", n.listen},
                {"heartbeat_at", format_rfc3339(n.heartbeat_at)},
                {"alive", n.alive},
                {"endpoints", std::move(endpoints)}};
      if (escalation)
        node["escalation"] = true;
      nodes.push_back(std::move(node));
    }
  } else {
    // Alone: every endpoint is this node's.
    auto all = log_.list_endpoints();
    if (!all) {
      log::error("endpoint read failed", {{"error", all.error().message}});
      return c.respond(error_response(503, store_failure));
    }
    json endpoints = json::array();
    for (auto& [id, text] : *all)
      endpoints.push_back(id);
    nodes.push_back(json{{"id", opts_.node_id},
                         {"listen", opts_.listen ? opts_.listen() : ""},
                         {"heartbeat_at", format_rfc3339(now_ms())},
                         {"alive", true},
                         {"endpoints", std::move(endpoints)}});
  }
  c.respond(json_response(
      200,
      json{{"node", opts_.node_id},
           {"backend", opts_.backend == storage::backend::postgres ? "postgres"
                                                                   : "rocksdb"},
           {"nodes", std::move(nodes)}}));
}

} // namespace tocsin::api
