// A reload of the config file (SIGHUP), the pure part: what a new file
// changes against the configuration that runs, which of its keys take
// effect only at a restart, and the checks serve makes of a file at start
// that need the loaded transports.
#pragma once

#include "app/config.hpp"
#include "plugins/plugin_loader.hpp"

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace tocsin::app {

/// Every endpoint of `cfg` as its transport takes it (with `defaults`):
/// nothing, or the first one refused, named ("endpoint ID: why").
status check_endpoints(const config& cfg,
                       const endpoints::endpoint_defaults& defaults,
                       const plugins::loaded_plugins& transports);

/// The keys whose new values a running daemon cannot take, dotted as in the
/// file ("server.listen", "delivery.retry_schedule", "storage.backend"):
/// those of `file` that differ from `running`, in the order of the file's
/// documentation. Everything in [server], [delivery], [storage] and
/// [cluster] is of them; tokens, [slack], [pagerduty], [log], endpoints and
/// escalation rules are not.
std::vector<std::string> restart_keys(const config& running,
                                      const config& file);

/// What a reload changes that takes effect at once, besides the endpoints
/// (which are planned against the store: endpoints::plan_endpoints). Names
/// only: never a token or a secret.
struct reload_delta {
  /// Tokens by name ("tok_" and 16 hex digits of its SHA-256 for one
  /// without a name); changed: the same name with another hash or role.
  std::vector<std::string> tokens_added, tokens_removed, tokens_changed;
  /// Old and new [log] level, when it changed.
  std::optional<std::pair<std::string, std::string>> log_level;
  /// Escalation rules by name; changed: defined otherwise.
  std::vector<std::string> rules_added, rules_changed, rules_removed;
  /// The integration keys that changed (slack.signing_secret,
  /// slack.response_url_hosts, pagerduty.webhook_secret).
  std::vector<std::string> integrations_changed;

  bool rules_differ() const {
    return !rules_added.empty() || !rules_changed.empty() ||
           !rules_removed.empty();
  }
};

/// `running` and `file` with the tokens each is served with (a file
/// without any: the generated admin token).
reload_delta compare_reloadable(const config& running, const config& file);

/// "a, b, c".
std::string joined(const std::vector<std::string>& names);

} // namespace tocsin::app
