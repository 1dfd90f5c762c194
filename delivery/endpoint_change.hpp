// What the control plane asks of the engine when an endpoint is created,
// changed or deleted. Free of CAF so that the HTTP side need not include it.
#pragma once

#include "common/result.hpp"
#include "delivery/endpoint_config.hpp"
#include "storage/record_kind.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace tocsin::delivery {

struct endpoint_change {
  enum class kind { create, update, remove } what = kind::create;
  std::string id = {};
  /// The runtime settings (create and update).
  std::optional<delivery::endpoint_config> config = {};
  /// The definition as the store keeps it (create and update).
  std::string definition = {};
  /// Log record kind for updates: endpoint_updated (when empty) or
  /// endpoint_secret_rotated.
  std::optional<storage::record_kind> record_kind = {};
  /// update and remove: the revision the change was made from. Another
  /// change in between fails this one with "conflict" (nothing is lost).
  std::int64_t based_on = 0;
};

/// Runs once the change is durable and in effect, or with an error:
/// "conflict" (id taken, or changed meanwhile), "not_found",
/// "store_unavailable".
using endpoint_change_callback = std::function<void(status)>;

} // namespace tocsin::delivery
