#include "app/store_metrics.hpp"

#include "common/log.hpp"
#include "common/version.hpp"

#include <memory>
#include <mutex>

namespace tocsin::app {

namespace {

struct store_gauges {
  std::mutex mtx;
  std::chrono::steady_clock::time_point taken{};
  bool valid = false;
  std::vector<std::pair<std::string, storage::endpoint_backlog>> endpoints;
};

} // namespace

void add_store_metrics(metrics::registry& reg, storage::store& log,
                       std::chrono::milliseconds refresh) {
  auto cache = std::make_shared<store_gauges>();
  reg.add_collector([&log, cache, refresh](std::string& out) {
    using metrics::kind;
    {
      std::lock_guard lock{cache->mtx};
      auto now = std::chrono::steady_clock::now();
      if (!cache->valid || now - cache->taken >= refresh) {
        cache->endpoints.clear();
        if (auto eps = log.list_endpoints()) {
          for (auto& [id, definition] : *eps)
            if (auto b = log.backlog_of(id))
              cache->endpoints.emplace_back(id, *b);
        } else {
          log::warn("metrics: endpoints not listed",
                    {{"error", eps.error().message}});
        }
        cache->taken = now;
        cache->valid = true;
      }
      std::vector<metrics::sample> pending, oldest, dead;
      auto wall = now_ms();
      for (auto& [id, b] : cache->endpoints) {
        pending.push_back({{id}, static_cast<double>(b.pending)});
        oldest.push_back({{id},
                          b.oldest_pending == 0
                              ? 0.0
                              : static_cast<double>(std::max<unix_ms>(
                                    0, wall - b.oldest_pending)) /
                                    1000});
        dead.push_back({{id}, static_cast<double>(b.dead_letters)});
      }
      metrics::render_family(out, "tocsin_pending_deliveries",
                             "Deliveries waiting to be made, per endpoint.",
                             kind::gauge, {"endpoint"}, pending);
      metrics::render_family(
          out, "tocsin_oldest_pending_age_seconds",
          "Age of the endpoint's oldest pending delivery (0: none).",
          kind::gauge, {"endpoint"}, oldest);
      metrics::render_family(out, "tocsin_dead_letters",
                             "Dead letters kept for review, per endpoint.",
                             kind::gauge, {"endpoint"}, dead);
    }
    metrics::render_family(
        out, "tocsin_store_bytes",
        "Bytes of the store on disk and in memory tables (approximate).",
        kind::gauge, {}, {{{}, static_cast<double>(log.approximate_bytes())}});
    metrics::render_family(out, "tocsin_build_info",
                           "The running version of tocsin.", kind::gauge,
                           {"version"}, {{{version}, 1}});
  });
}

} // namespace tocsin::app
