// The gauges /metrics reads from the store at scrape time: each endpoint's
// pending deliveries, the age of its oldest one and its dead letters, the
// store's size, and the build's version.
#pragma once

#include "common/metrics.hpp"
#include "common/time.hpp"
#include "storage/store.hpp"

#include <chrono>

namespace tocsin::app {

/// Adds a collector to `reg` that reads `log` (which must outlive it). The
/// per-endpoint counts walk index keys; they are taken again at most every
/// `refresh` (scrapes in between see the last ones).
void add_store_metrics(metrics::registry& reg, storage::store& log,
                       std::chrono::milliseconds refresh = std::chrono::seconds{
                           5});

} // namespace tocsin::app
