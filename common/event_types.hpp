// The vocabulary of safety events: their types and severities.
#pragma once

#include <array>
#include <optional>
#include <string_view>

namespace tocsin {

inline constexpr std::array<std::string_view, 5> event_types{
    "policy.denied", "approval.required", "content.detected",
    "anomaly.detected", "system.health"};

inline constexpr std::array<std::string_view, 5> severities{
    "info", "low", "medium", "high", "critical"};

inline bool is_event_type(std::string_view t) {
  for (auto x : event_types)
    if (x == t)
      return true;
  return false;
}

/// 0 (info) .. 4 (critical); nullopt for an unknown severity.
inline std::optional<int> severity_rank(std::string_view s) {
  for (std::size_t i = 0; i < severities.size(); ++i)
    if (severities[i] == s)
      return static_cast<int>(i);
  return std::nullopt;
}

/// The severity of an event of `type` that names none.
inline std::string_view default_severity(std::string_view type) {
  if (type == "policy.denied" || type == "content.detected")
    return "high";
  if (type == "anomaly.detected" || type == "approval.required")
    return "medium";
  return "info"; // system.health
}

} // namespace tocsin
