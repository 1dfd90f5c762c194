#include "app/reloader.hpp"

#include "app/reload.hpp"
#include "common/log.hpp"
#include "endpoints/reconcile.hpp"

#include <algorithm>
#include <future>
#include <memory>
#include <utility>

namespace tocsin::app {

reloader::reloader(std::filesystem::path file, config running,
                   std::vector<api::token_config> tokens, storage::store& log,
                   actors::engine& engine, api::request_handler& handler,
                   const plugins::loaded_plugins& transports)
    : file_(std::move(file)), running_(std::move(running)),
      defaults_(endpoint_defaults_of(running_.delivery)), log_(log),
      engine_(engine), handler_(handler), transports_(transports) {
  running_.tokens = std::move(tokens);
}

void reloader::reload() {
  log::info("reloading the config file", {{"path", file_.string()}});
  auto file = load_config(file_);
  auto st = file ? apply(std::move(*file)) : status{file.error()};
  if (!st)
    log::error("config reload refused; the running configuration is kept",
               {{"path", file_.string()}, {"reason", st.error().message}});
}

namespace {

/// The endpoint changes of `plan`, as the engine takes them.
result<std::vector<delivery::endpoint_change>>
changes_of(const endpoints::endpoint_plan& plan,
           const endpoints::endpoint_defaults& defaults,
           const plugins::loaded_plugins& transports) {
  using planned = endpoints::planned_change::kind;
  using kind = delivery::endpoint_change::kind;
  std::vector<delivery::endpoint_change> out;
  for (auto& p : plan.changes) {
    delivery::endpoint_change c;
    c.id = p.definition.id;
    c.based_on = p.based_on;
    if (p.what == planned::remove) {
      c.what = kind::remove;
    } else {
      c.what = p.what == planned::create ? kind::create : kind::update;
      auto cfg = endpoints::runtime_config(p.definition, defaults, &transports);
      if (!cfg)
        return error{cfg.error().code,
                     "endpoint " + c.id + ": " + cfg.error().message};
      c.config = std::move(*cfg);
      c.definition = endpoints::to_stored_json(p.definition);
    }
    out.push_back(std::move(c));
  }
  return out;
}

/// What changed, for the log: only what did.
std::vector<log::field> summary(const endpoints::endpoint_plan& plan,
                                const reload_delta& d) {
  std::vector<log::field> f;
  auto count = [&](std::string_view key, std::size_t n) {
    if (n > 0)
      f.emplace_back(key, std::to_string(n));
  };
  auto names = [&](std::string_view key, const std::vector<std::string>& v) {
    if (!v.empty())
      f.emplace_back(key, joined(v));
  };
  count("endpoints_created", plan.created);
  count("endpoints_updated", plan.updated);
  count("endpoints_removed", plan.removed);
  names("tokens_added", d.tokens_added);
  names("tokens_removed", d.tokens_removed);
  names("tokens_changed", d.tokens_changed);
  if (d.log_level)
    f.emplace_back("log_level",
                   d.log_level->first + " -> " + d.log_level->second);
  names("escalation_rules_added", d.rules_added);
  names("escalation_rules_changed", d.rules_changed);
  names("escalation_rules_removed", d.rules_removed);
  names("changed", d.integrations_changed);
  if (f.empty())
    f.emplace_back("changes", "none");
  return f;
}

} // namespace

status reloader::apply(config file) {
  // The checks serve makes at start that parsing alone does not: each
  // endpoint as its transport takes it (with the delivery defaults that
  // run: they change only at a restart), the tokens.
  TOCSIN_TRY(check_endpoints(file, defaults_, transports_));
  // Rule state is rebuilt from the log as far back as retention keeps it:
  // the retention that runs, not the file's (a restart changes that).
  for (auto& r : file.escalation)
    if (std::max(r.window, r.suppress_for) >
        static_cast<unix_ms>(running_.delivery.retention * 1000))
      return error{"config_invalid",
                   "escalation rule '" + r.name +
                       "': window and suppress_for must not be longer than "
                       "the running delivery.retention (it changes only at "
                       "a restart)"};
  if (file.tokens.empty()) {
    bool created = false;
    auto admin = api::ensure_admin_token(running_.server.data_dir, created);
    if (!admin)
      return admin.error();
    file.tokens.push_back(*admin);
  }
  auto stored = endpoints::stored_endpoints(log_);
  if (!stored)
    return error{stored.error().code,
                 "cannot read the stored endpoints: " + stored.error().message};
  auto plan = endpoints::plan_endpoints(*stored, file.endpoints, now_ms());
  TOCSIN_TRY(endpoints::check_transports(plan, transports_));
  delivery::reconfiguration change;
  TOCSIN_TRY_ASSIGN(endpoint_changes, changes_of(plan, defaults_, transports_));
  change.endpoints = std::move(endpoint_changes);
  auto delta = compare_reloadable(running_, file);
  if (delta.rules_differ())
    change.escalation = file.escalation;
  if (!change.empty()) {
    // The engine logs the endpoint changes in one write and runs the new
    // rules, or does none of it.
    auto done = std::make_shared<std::promise<status>>();
    auto answer = done->get_future();
    engine_.reconfigure(std::move(change),
                        [done](status s) { done->set_value(std::move(s)); });
    if (auto s = answer.get(); !s)
      return error{s.error().code, "the endpoints and escalation rules were "
                                   "not changed: " +
                                       s.error().message};
  }
  for (auto& c : plan.changes)
    if (c.takes_over)
      log::warn("the config file takes over an endpoint created with the API",
                {{"endpoint", c.definition.id}});
  handler_.reload(api::live_settings{
      api::authenticator{file.tokens}, file.slack_signing_secret,
      file.slack_response_url_hosts, file.pagerduty_webhook_secret});
  auto restart = restart_keys(running_, file);
  if (!restart.empty())
    log::warn("config reload: these keys change only at a restart; they keep "
              "their running values",
              {{"keys", joined(restart)}});
  // Said at the more verbose of the two levels: a reload to a quieter level
  // is still logged.
  auto lines = summary(plan, delta);
  auto level = *log::level_from(file.log_level); // checked with the file
  if (level < *log::level_from(running_.log_level))
    log::set_min_level(level);
  log::write(log::level::info, "config reloaded", lines);
  log::set_min_level(level);
  running_.tokens = std::move(file.tokens);
  running_.log_level = std::move(file.log_level);
  running_.slack_signing_secret = std::move(file.slack_signing_secret);
  running_.slack_response_url_hosts = std::move(file.slack_response_url_hosts);
  running_.pagerduty_webhook_secret = std::move(file.pagerduty_webhook_secret);
  running_.endpoints = std::move(file.endpoints);
  running_.escalation = std::move(file.escalation);
  return {};
}

} // namespace tocsin::app
