// The documented defaults (DESIGN.md, "Config file"), each stated once: the
// config, the endpoint definitions and the delivery core all start from
// these.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace tocsin::defaults {

/// Seconds between attempts: 5 attempts over 15 minutes.
inline std::vector<double> retry_schedule() {
  return {60, 120, 240, 480};
}
/// Relative jitter on each retry delay.
inline constexpr double jitter = 0.1;
/// Seconds per attempt.
inline constexpr double attempt_timeout = 10;
/// Requests in flight per endpoint: the ceiling of the adaptive limit (the
/// limit itself when fixed), its floor, and where it starts.
inline constexpr int max_in_flight = 256;
inline constexpr int min_in_flight = 1;
inline constexpr int initial_in_flight = 16;
/// Connections open at once to one origin, whatever the number of endpoints
/// that send there.
inline constexpr int max_connections_per_origin = 128;
/// Largest webhook payload; larger events are cut down (and the minimum).
inline constexpr std::size_t max_payload_bytes = 4096;
/// Largest request body the API takes.
inline constexpr std::size_t max_body_bytes = 1 << 20;
/// Consecutive failures that open an endpoint's circuit, and seconds it
/// stays open before a probe.
inline constexpr int breaker_failures = 5;
inline constexpr double breaker_cooldown = 30;
/// Deliveries an endpoint holds in memory at most (besides those in flight):
/// the next ones due. The rest of a backlog stays in the store.
inline constexpr std::size_t queue_window = 512;
/// How long an idempotency key answers with the first ids (24 h, like
/// Stripe's), in milliseconds; after that the same key is a new request.
inline constexpr std::int64_t idempotency_window_ms = 24 * 3600 * 1000;
/// Seconds finished deliveries, their events and log records are kept
/// (7 days).
inline constexpr double retention = 7 * 86400;
/// Seconds a rotated-out secret keeps signing next to the new one.
inline constexpr double secret_grace = 86400;

} // namespace tocsin::defaults
