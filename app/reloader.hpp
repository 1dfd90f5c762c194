// A reload of the config file (SIGHUP) in the running daemon: the file goes
// through the checks serve makes at start and, accepted, changes the
// endpoints (through the engine, logged like the API's changes), the
// escalation rules, the tokens, the integrations' secrets and the log level
// all at once; refused, nothing changes. Keys that need a restart keep
// their running values (app/reload.hpp says which).
#pragma once

#include "actors/engine.hpp"
#include "api/handler.hpp"
#include "app/config.hpp"
#include "plugins/plugin_loader.hpp"
#include "storage/store.hpp"

#include <filesystem>
#include <string>
#include <vector>

namespace tocsin::app {

class reloader {
public:
  /// `running`: the configuration serve started with; `tokens`: the ones it
  /// serves (the generated admin token when the file has none). Everything
  /// else must outlive the reloader.
  reloader(std::filesystem::path file, config running,
           std::vector<api::token_config> tokens, storage::store& log,
           actors::engine& engine, api::request_handler& handler,
           const plugins::loaded_plugins& transports);

  /// Reads the file again and applies it, or refuses it whole; either way
  /// says so in the log (one error line with the reason when refused).
  /// Returns once it is in effect. Called by one thread at a time.
  void reload();

private:
  /// What the file asks for, checked; the refusal's reason otherwise.
  status apply(config file);

  std::filesystem::path file_;
  config running_;
  endpoints::endpoint_defaults defaults_;
  storage::store& log_;
  actors::engine& engine_;
  api::request_handler& handler_;
  const plugins::loaded_plugins& transports_;
};

} // namespace tocsin::app
