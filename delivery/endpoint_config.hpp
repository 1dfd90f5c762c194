// What an endpoint's queue needs to know about its endpoint: where, how,
// how often, signed with what.
#pragma once

#include "common/time.hpp"
#include "common/url.hpp"
#include "delivery/flow_control.hpp"
#include "delivery/retry_policy.hpp"
#include "delivery/signing.hpp"
#include "plugins/plugin_loader.hpp"

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace tocsin::delivery {

struct endpoint_filter {
  std::vector<std::string> event_types{"*"}; ///< or ["*"]
  int min_severity = 0;                      ///< severity_rank
  std::vector<std::string> agents;           ///< globs; empty: every agent
};

/// A key that signs deliveries, until `expires_at` (0: the current key).
struct endpoint_key {
  delivery::signing_key key;
  unix_ms expires_at = 0;
};

/// How many attempts an endpoint may have in flight: learned from its
/// answers between min_in_flight and max_in_flight (concurrency_limit), or
/// always max_in_flight.
enum class concurrency_mode { adaptive, fixed };

struct endpoint_config {
  std::string id;
  std::string url; ///< as configured
  tocsin::url target;
  std::string transport = "webhook";
  /// The transport plugin, opened for this endpoint: builds its requests and
  /// classifies the answers. Closed when the last copy of the config goes.
  std::shared_ptr<const plugins::transport_instance> plugin;
  /// The endpoint's transport options (a JSON object), for the plugin.
  std::string options_json = "{}";
  endpoint_filter filter;
  /// The current key first; rotated-out keys still sign until they expire.
  std::vector<endpoint_key> signing_keys;
  /// A disabled endpoint gets no new deliveries; queued ones still go out.
  bool enabled = true;
  /// Of the definition this was made from: changes name the one they replace.
  std::int64_t revision = 1;
  retry_policy retry;
  std::chrono::milliseconds timeout{10000};
  concurrency_mode concurrency = concurrency_mode::adaptive;
  int max_in_flight = defaults::max_in_flight;
  int min_in_flight = defaults::min_in_flight;
  /// HTTP/2 when the receiver offers it (ALPN), else HTTP/1.1.
  bool http2 = true;
  /// Requests per second (token bucket); per_second 0: unlimited.
  delivery::rate_limit rate;
  breaker_settings breaker;
  /// FIFO: one request at a time, in acceptance order; a delivery waiting
  /// for its retry holds back the ones behind it.
  bool ordered = false;
};

} // namespace tocsin::delivery
