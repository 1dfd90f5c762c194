#include "app/reload.hpp"

#include <functional>
#include <map>

namespace tocsin::app {

status check_endpoints(const config& cfg,
                       const endpoints::endpoint_defaults& defaults,
                       const plugins::loaded_plugins& transports) {
  for (auto& e : cfg.endpoints) {
    // What the transport asks of the definition (a signing transport's
    // secret, its options), as serve's plan checks it, then the runtime
    // settings.
    if (auto st = endpoints::check_transport(e.definition, transports); !st)
      return error{st.error().code,
                   "endpoint " + e.definition.id + ": " + st.error().message,
                   st.error().field};
    auto c = endpoints::runtime_config(e.definition, defaults, &transports);
    if (!c)
      return error{c.error().code,
                   "endpoint " + e.definition.id + ": " + c.error().message,
                   c.error().field};
  }
  return {};
}

std::vector<std::string> restart_keys(const config& running,
                                      const config& file) {
  std::vector<std::string> keys;
  auto check = [&](const char* key, const auto& a, const auto& b) {
    if (!(a == b))
      keys.emplace_back(key);
  };
  auto& s = running.server;
  auto& t = file.server;
  check("server.listen", s.listen, t.listen);
  check("server.data_dir", s.data_dir, t.data_dir);
  check("server.max_body_bytes", s.max_body_bytes, t.max_body_bytes);
  check("server.request_timeout", s.request_timeout, t.request_timeout);
  check("server.header_timeout", s.header_timeout, t.header_timeout);
  check("server.idle_timeout", s.idle_timeout, t.idle_timeout);
  check("server.max_connections", s.max_connections, t.max_connections);
  check("server.max_connections_per_address", s.max_connections_per_address,
        t.max_connections_per_address);
  check("server.max_reading_bytes", s.max_reading_bytes, t.max_reading_bytes);
  check("server.max_queued_requests", s.max_queued_requests,
        t.max_queued_requests);
  check("server.max_queued_bytes", s.max_queued_bytes, t.max_queued_bytes);
  check("server.plugins_dir", s.plugins_dir, t.plugins_dir);
  check("server.audit_url_template", s.audit_url_template,
        t.audit_url_template);
  check("server.allow_producer_links", s.allow_producer_links,
        t.allow_producer_links);
  check("server.public_url", s.public_url, t.public_url);
  check("server.public_metrics", s.public_metrics, t.public_metrics);
  check("server.io_threads", s.io_threads, t.io_threads);
  check("server.actor_threads", s.actor_threads, t.actor_threads);
  check("server.read_threads", s.read_threads, t.read_threads);
  auto& d = running.delivery;
  auto& e = file.delivery;
  check("delivery.retry_schedule", d.retry_schedule, e.retry_schedule);
  check("delivery.jitter", d.jitter, e.jitter);
  check("delivery.timeout", d.timeout, e.timeout);
  check("delivery.max_payload_bytes", d.max_payload_bytes, e.max_payload_bytes);
  check("delivery.ca_file", d.ca_file, e.ca_file);
  check("delivery.allow_networks", d.allow_networks, e.allow_networks);
  check("delivery.concurrency", d.concurrency, e.concurrency);
  check("delivery.max_in_flight", d.max_in_flight, e.max_in_flight);
  check("delivery.min_in_flight", d.min_in_flight, e.min_in_flight);
  check("delivery.http2", d.http2, e.http2);
  check("delivery.max_connections_per_origin", d.max_connections_per_origin,
        e.max_connections_per_origin);
  check("delivery.queue_window", d.queue_window, e.queue_window);
  check("delivery.retention", d.retention, e.retention);
  check("delivery.secret_grace", d.secret_grace, e.secret_grace);
  check("delivery.breaker_failures", d.breaker_failures, e.breaker_failures);
  check("delivery.breaker_cooldown", d.breaker_cooldown, e.breaker_cooldown);
  check("storage.backend", running.storage.backend, file.storage.backend);
  check("storage.postgres_url", running.storage.postgres_url,
        file.storage.postgres_url);
  check("cluster.node_id", running.cluster.node_id, file.cluster.node_id);
  check("cluster.lease_ttl", running.cluster.lease_ttl, file.cluster.lease_ttl);
  return keys;
}

namespace {

std::string token_name(const api::token_config& t) {
  return t.name.empty() ? "tok_" + t.sha256.substr(0, 16) : t.name;
}

/// Names in `after` only (added), in `before` only (removed), and in both
/// with values that `same` says differ (changed).
template <class T, class Same>
void diff_named(const std::map<std::string, const T*>& before,
                const std::map<std::string, const T*>& after, Same same,
                std::vector<std::string>& added,
                std::vector<std::string>& removed,
                std::vector<std::string>& changed) {
  for (auto& [name, now] : after) {
    auto it = before.find(name);
    if (it == before.end())
      added.push_back(name);
    else if (!same(*it->second, *now))
      changed.push_back(name);
  }
  for (auto& [name, was] : before)
    if (!after.count(name))
      removed.push_back(name);
}

} // namespace

reload_delta compare_reloadable(const config& running, const config& file) {
  reload_delta d;
  auto tokens = [](const config& c) {
    std::map<std::string, const api::token_config*> by_name;
    for (auto& t : c.tokens)
      by_name.emplace(token_name(t), &t);
    return by_name;
  };
  diff_named(
      tokens(running), tokens(file),
      [](const api::token_config& a, const api::token_config& b) {
        return a.sha256 == b.sha256 && a.role == b.role;
      },
      d.tokens_added, d.tokens_removed, d.tokens_changed);
  auto rules = [](const config& c) {
    std::map<std::string, const delivery::escalation_rule*> by_name;
    for (auto& r : c.escalation)
      by_name.emplace(r.name, &r);
    return by_name;
  };
  diff_named(rules(running), rules(file), std::equal_to<>{}, d.rules_added,
             d.rules_removed, d.rules_changed);
  if (running.log_level != file.log_level)
    d.log_level = std::pair{running.log_level, file.log_level};
  if (running.slack_signing_secret != file.slack_signing_secret)
    d.integrations_changed.emplace_back("slack.signing_secret");
  if (running.slack_response_url_hosts != file.slack_response_url_hosts)
    d.integrations_changed.emplace_back("slack.response_url_hosts");
  if (running.pagerduty_webhook_secret != file.pagerduty_webhook_secret)
    d.integrations_changed.emplace_back("pagerduty.webhook_secret");
  return d;
}

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (auto& n : names)
    out += (out.empty() ? "" : ", ") + n;
  return out;
}

} // namespace tocsin::app
