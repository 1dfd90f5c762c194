// Endpoint definitions: what an operator configures for one destination
// (DESIGN.md, "Endpoints"), how it is validated, stored, shown by the API and
// turned into what an endpoint actor runs with. One set of rules serves the
// API (POST/PATCH /v1/endpoints) and the config file ([[endpoints]]).
#pragma once

#include "common/defaults.hpp"
#include "common/result.hpp"
#include "common/time.hpp"
#include "delivery/endpoint_config.hpp"
#include "plugins/plugin_loader.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace tocsin::endpoints {

using ordered_json = nlohmann::ordered_json;

/// A secret replaced by a rotation that still signs until `expires_at`.
struct retired_secret {
  std::string secret;
  unix_ms expires_at = 0;
};

struct endpoint_definition {
  std::string id;
  std::string url;
  std::string transport = "webhook";
  std::vector<std::string> event_types{"*"};
  std::string min_severity = "info";
  std::vector<std::string> agents; ///< globs; empty: every agent
  bool enabled = true;
  std::string description;
  /// "whsec_..." (HMAC-SHA256, "v1") or "whsk_..." (Ed25519, "v1a").
  std::string secret;
  std::vector<retired_secret> retired;
  std::optional<int> max_in_flight;
  std::optional<int> min_in_flight;
  /// "adaptive" or "fixed".
  std::optional<std::string> concurrency;
  std::optional<bool> http2;
  std::optional<double> timeout;
  std::optional<std::vector<double>> retry_schedule;
  /// Overrides the transport's suggested rate limit.
  std::optional<delivery::rate_limit> rate_limit;
  std::optional<delivery::breaker_settings> circuit_breaker;
  bool ordered = false;
  ordered_json options = ordered_json::object();
  std::string source = "api"; ///< "api" or "config"
  unix_ms created_at = 0;
  unix_ms updated_at = 0;
  /// Starts at 1, +1 per change: concurrent changes are detected, not lost.
  std::int64_t revision = 1;

  /// "hmac-sha256" or "ed25519", from the secret's prefix; "" without one
  /// (a transport that does not sign).
  std::string_view signature() const;
};

/// Delivery settings an endpoint inherits unless it overrides them.
struct endpoint_defaults {
  std::vector<double> retry_schedule = defaults::retry_schedule();
  double jitter = defaults::jitter;
  double timeout = defaults::attempt_timeout;
  delivery::concurrency_mode concurrency = delivery::concurrency_mode::adaptive;
  int max_in_flight = defaults::max_in_flight;
  int min_in_flight = defaults::min_in_flight;
  bool http2 = true;
  delivery::breaker_settings breaker;
  /// How long a rotated-out secret keeps signing (milliseconds).
  unix_ms secret_grace_ms = static_cast<unix_ms>(defaults::secret_grace * 1000);
};

/// What an endpoint is checked against.
struct endpoint_rules {
  /// The loaded transports: an endpoint must name one, and its options must
  /// satisfy it. Null: any name, options unchecked (the config file is read
  /// before the plugins are loaded; they are checked after).
  const plugins::loaded_plugins* transports = nullptr;
  /// Give an endpoint without a secret a new one, if its transport signs
  /// (the API). The config file does not: a secret generated at every start
  /// would change at every start; one that signs must be given.
  bool generate_secret = true;
};

/// An endpoint declared in the config file.
struct endpoint_entry {
  endpoint_definition definition;
  delivery::endpoint_config endpoint; ///< what its actor runs with
};

/// Validates a create request (API body or config table as JSON) and fills
/// in defaults: an id ("ep_" + ULID) and a secret when absent. Errors name
/// the field with codes such as "insecure_url", "invalid_url",
/// "unknown_transport", "unknown_event_type", "invalid_severity",
/// "invalid_glob", "invalid_secret", "unknown_field", "missing_field",
/// "invalid_field".
result<endpoint_definition> create_endpoint(const ordered_json& body,
                                            const endpoint_rules& rules,
                                            unix_ms now);

/// Applies a partial update (PATCH): only the fields present change; `null`
/// resets an optional override. The id, secret and metadata cannot be set.
/// An option the transport marks secret whose new value is the mask the API
/// shows of the current one (masked_option) keeps the current value: what
/// GET showed can be sent back without erasing the credential.
result<endpoint_definition> patch_endpoint(endpoint_definition current,
                                           const ordered_json& body,
                                           const endpoint_rules& rules,
                                           unix_ms now);

/// Replaces the secret with `new_secret` (or a generated one of the same
/// kind); the old one keeps signing for `grace_ms`.
result<endpoint_definition>
rotate_endpoint_secret(endpoint_definition current,
                       std::optional<std::string> new_secret, unix_ms grace_ms,
                       unix_ms now);

/// The stored form (with secrets), and back.
std::string to_stored_json(const endpoint_definition& e);
result<endpoint_definition> from_stored_json(std::string_view text);

/// How the API shows an option that is a credential: an ellipsis (U+2026)
/// and the value's last 4 characters ("\u2026abcd"); the ellipsis alone for
/// a value of fewer than 8 characters, or one that is not a string.
std::string masked_option(const ordered_json& value);

/// The API form. The secret appears only when `with_secret` (create and
/// rotate answers); an Ed25519 endpoint always shows its public key. The
/// options its transport (found in `transports`, when given) marks secret
/// are shown masked (masked_option), always.
ordered_json to_api_json(const endpoint_definition& e, bool with_secret,
                         const plugins::loaded_plugins* transports);

/// True when two definitions configure the same behaviour (ignores
/// timestamps and revision).
bool same_settings(const endpoint_definition& a, const endpoint_definition& b);

/// Whether `transports` has the endpoint's transport and it accepts the
/// endpoint's options ("unknown_transport", "invalid_options").
status check_transport(const endpoint_definition& e,
                       const plugins::loaded_plugins& transports);

/// What the endpoint's actor runs with; its transport plugin is taken from
/// `transports` (none when null).
result<delivery::endpoint_config>
runtime_config(const endpoint_definition& e, const endpoint_defaults& d,
               const plugins::loaded_plugins* transports = nullptr);

/// A glob as `agents` accepts it: 1-256 chars, brackets closed, no trailing
/// backslash.
bool is_valid_glob(std::string_view glob);

} // namespace tocsin::endpoints
