#include "app/config.hpp"

#include <nlohmann/json.hpp>

#include "common/conninfo.hpp"
#include "common/encoding.hpp"
#include "common/event_types.hpp"
#include "common/log.hpp"
#include "common/url.hpp"
#include "delivery/signing.hpp"
#include "net/address_policy.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>

#include <unistd.h>

#include <libpq-fe.h>
#include <toml++/toml.h>

namespace tocsin::app {

using namespace tocsin::endpoints;

namespace {

/// Reads the keys of one TOML table, remembering which it understood so that
/// every other key is reported as unknown.
class table_reader {
public:
  table_reader(const toml::table& t, std::string path)
      : t_(t), path_(std::move(path)) {}

  std::string name(std::string_view key) const {
    return path_.empty() ? std::string{key} : path_ + "." + std::string{key};
  }

  const toml::table& table() const { return t_; }
  /// Every key counts as understood (the table was checked as a whole).
  void mark_all_known() {
    for (auto& [k, v] : t_)
      known_.insert(std::string{k.str()});
  }

  const toml::node* get(std::string_view key) {
    known_.insert(std::string{key});
    return t_.get(key);
  }

  status read(std::string_view key, std::string& out) {
    if (auto n = get(key)) {
      auto v = n->value_exact<std::string>();
      if (!v)
        return bad(key, "must be a string");
      out = *v;
    }
    return {};
  }

  status read(std::string_view key, bool& out) {
    if (auto n = get(key)) {
      auto v = n->value_exact<bool>();
      if (!v)
        return bad(key, "must be true or false");
      out = *v;
    }
    return {};
  }

  /// Integers or decimals.
  status read(std::string_view key, double& out, double min, double max) {
    if (auto n = get(key)) {
      if (!n->is_number())
        return bad(key, "must be a number");
      auto v = *n->value<double>();
      if (!std::isfinite(v) || v < min || v > max)
        return bad(key, "must be between " + fmt(min) + " and " + fmt(max));
      out = v;
    }
    return {};
  }

  template <class Int>
  status read_int(std::string_view key, Int& out, std::int64_t min,
                  std::int64_t max) {
    if (auto n = get(key)) {
      auto v = n->value_exact<std::int64_t>();
      if (!v)
        return bad(key, "must be an integer");
      if (*v < min || *v > max)
        return bad(key, "must be between " + std::to_string(min) + " and " +
                            std::to_string(max));
      out = static_cast<Int>(*v);
    }
    return {};
  }

  status read(std::string_view key, std::vector<std::string>& out) {
    if (auto n = get(key)) {
      auto arr = n->as_array();
      if (!arr)
        return bad(key, "must be an array of strings");
      out.clear();
      for (auto& el : *arr) {
        auto v = el.value_exact<std::string>();
        if (!v)
          return bad(key, "must be an array of strings");
        out.push_back(*v);
      }
    }
    return {};
  }

  status read_schedule(std::string_view key, std::vector<double>& out) {
    if (auto n = get(key)) {
      auto arr = n->as_array();
      if (!arr || arr->empty() || arr->size() > 20)
        return bad(key, "must be an array of 1 to 20 numbers (seconds)");
      out.clear();
      for (auto& el : *arr) {
        auto v = el.is_number() ? el.value<double>() : std::nullopt;
        if (!v || !std::isfinite(*v) || *v < 0 || *v > 86400)
          return bad(key, "must hold numbers of seconds between 0 and 86400");
        out.push_back(*v);
      }
    }
    return {};
  }

  status finish() const {
    for (auto& [k, v] : t_)
      if (!known_.count(std::string{k.str()}))
        return error{"config_unknown_key",
                     "unknown key '" + name(k.str()) + "'", name(k.str())};
    return {};
  }

  status bad(std::string_view key, std::string what) const {
    return error{"config_invalid", "'" + name(key) + "' " + what, name(key)};
  }

private:
  static std::string fmt(double v) {
    std::ostringstream os;
    os << v;
    return os.str();
  }

  const toml::table& t_;
  std::string path_;
  std::set<std::string> known_;
};

status read_server(table_reader& r, server_config& s) {
  TOCSIN_TRY(r.read("listen", s.listen));
  TOCSIN_TRY(r.read("data_dir", s.data_dir));
  TOCSIN_TRY(r.read_int("max_body_bytes", s.max_body_bytes, 1024, 1 << 30));
  TOCSIN_TRY(r.read("request_timeout", s.request_timeout, 0.1, 3600));
  TOCSIN_TRY(r.read("header_timeout", s.header_timeout, 0.1, 3600));
  TOCSIN_TRY(r.read("idle_timeout", s.idle_timeout, 0.1, 86400));
  TOCSIN_TRY(r.read_int("max_connections", s.max_connections, 1, 100000));
  TOCSIN_TRY(r.read_int("max_connections_per_address",
                        s.max_connections_per_address, 1, 100000));
  TOCSIN_TRY(
      r.read_int("max_reading_bytes", s.max_reading_bytes, 1024, 1LL << 40));
  TOCSIN_TRY(
      r.read_int("max_queued_requests", s.max_queued_requests, 1, 1000000));
  TOCSIN_TRY(
      r.read_int("max_queued_bytes", s.max_queued_bytes, 1 << 20, 1LL << 40));
  TOCSIN_TRY(r.read("plugins_dir", s.plugins_dir));
  TOCSIN_TRY(r.read("audit_url_template", s.audit_url_template));
  TOCSIN_TRY(r.read("allow_producer_links", s.allow_producer_links));
  TOCSIN_TRY(r.read("public_url", s.public_url));
  TOCSIN_TRY(r.read("public_metrics", s.public_metrics));
  TOCSIN_TRY(r.read_int("io_threads", s.io_threads, 1, 64));
  TOCSIN_TRY(r.read_int("actor_threads", s.actor_threads, 1, 64));
  TOCSIN_TRY(r.read_int("read_threads", s.read_threads, 1, 64));
  if (s.data_dir.empty())
    return r.bad("data_dir", "must not be empty");
  // Else a body of the largest size allowed could never be read.
  if (s.max_reading_bytes < s.max_body_bytes)
    return r.bad("max_reading_bytes", "must be at least max_body_bytes (" +
                                          std::to_string(s.max_body_bytes) +
                                          ")");
  if (!s.public_url.empty()) {
    auto u = parse_url(s.public_url);
    if (!u || u->scheme != "https" ||
        s.public_url.find_first_of("?#") != std::string::npos)
      return r.bad("public_url",
                   "must be an https:// URL without a query or fragment, "
                   "e.g. \"https://tocsin.example\"");
  }
  return r.finish();
}

/// libpq's reason for refusing a connection string (without its password),
/// or nothing if libpq can read it. Checked here so that a typo is refused
/// with the key named, before anything starts.
std::optional<std::string> conninfo_problem(const std::string& conninfo) {
  char* why = nullptr;
  auto* parsed = PQconninfoParse(conninfo.c_str(), &why);
  if (parsed) {
    PQconninfoFree(parsed);
    return std::nullopt;
  }
  std::string reason = why ? why : "out of memory";
  PQfreemem(why);
  while (!reason.empty() &&
         std::isspace(static_cast<unsigned char>(reason.back())))
    reason.pop_back();
  return hide_password(reason, conninfo);
}

status read_storage(table_reader& r, storage_config& s) {
  std::string backend{backend_name(s.backend)};
  TOCSIN_TRY(r.read("backend", backend));
  TOCSIN_TRY(r.read("postgres_url", s.postgres_url));
  // A misspelt postgres_url is named as such, not as a missing one.
  TOCSIN_TRY(r.finish());
  if (backend == backend_name(storage::backend::rocksdb))
    s.backend = storage::backend::rocksdb;
  else if (backend == backend_name(storage::backend::postgres))
    s.backend = storage::backend::postgres;
  else
    return r.bad("backend", "must be \"rocksdb\" or \"postgres\", not \"" +
                                backend + "\"");
  auto& url = s.postgres_url;
  if (s.backend == storage::backend::rocksdb) {
    // Accepted and ignored, it would let an operator believe the
    // PostgreSQL database is in use.
    if (!url.empty())
      return r.bad("postgres_url",
                   "is set but storage.backend is \"rocksdb\", which does not "
                   "use it: set backend = \"postgres\", or remove "
                   "postgres_url");
    return {};
  }
  if (url.empty())
    return r.bad("postgres_url",
                 "is required with storage.backend = \"postgres\" (e.g. "
                 "\"postgresql://tocsin@db.internal/tocsin\")");
  if (std::any_of(url.begin(), url.end(),
                  [](unsigned char c) { return c < 0x20 || c == 0x7f; }))
    return r.bad("postgres_url", "must not hold control characters");
  if (auto why = conninfo_problem(url))
    return r.bad("postgres_url",
                 "is not a PostgreSQL connection string (a postgresql:// URL "
                 "or key=value pairs): " +
                     *why);
  return {};
}

status read_cluster(table_reader& r, cluster_config& c) {
  TOCSIN_TRY(r.read("node_id", c.node_id));
  TOCSIN_TRY(r.read("lease_ttl", c.lease_ttl, 1, 3600));
  TOCSIN_TRY(r.finish());
  // Shown in GET /v1/cluster, logs and every attempt it makes.
  if (c.node_id.size() > 128 ||
      !std::all_of(c.node_id.begin(), c.node_id.end(), [](unsigned char ch) {
        return std::isalnum(ch) || ch == '.' || ch == '-' || ch == '_' ||
               ch == ':';
      }))
    return r.bad("node_id", "must be at most 128 letters, digits, '.', '-', "
                            "'_' or ':' (empty: host name and port)");
  return {};
}

status read_delivery(table_reader& r, delivery_config& d) {
  TOCSIN_TRY(r.read_schedule("retry_schedule", d.retry_schedule));
  TOCSIN_TRY(r.read("jitter", d.jitter, 0, 0.5));
  TOCSIN_TRY(r.read("timeout", d.timeout, 0.001, 600));
  TOCSIN_TRY(
      r.read_int("max_payload_bytes", d.max_payload_bytes, 4096, 1 << 20));
  TOCSIN_TRY(r.read("ca_file", d.ca_file));
  TOCSIN_TRY(r.read("allow_networks", d.allow_networks));
  TOCSIN_TRY(r.read("concurrency", d.concurrency));
  TOCSIN_TRY(r.read_int("max_in_flight", d.max_in_flight, 1, 1024));
  TOCSIN_TRY(r.read_int("min_in_flight", d.min_in_flight, 1, 1024));
  TOCSIN_TRY(r.read("http2", d.http2));
  TOCSIN_TRY(r.read_int("max_connections_per_origin",
                        d.max_connections_per_origin, 1, 4096));
  TOCSIN_TRY(r.read_int("queue_window", d.queue_window, 1, 1 << 20));
  TOCSIN_TRY(r.read("retention", d.retention, 0.1, 10 * 365 * 86400.0));
  TOCSIN_TRY(r.read("secret_grace", d.secret_grace, 0, 30 * 86400));
  TOCSIN_TRY(r.read_int("breaker_failures", d.breaker_failures, 0, 1000));
  TOCSIN_TRY(r.read("breaker_cooldown", d.breaker_cooldown, 0.01, 86400));
  if (auto policy = net::address_policy::from_cidrs(d.allow_networks); !policy)
    return r.bad("allow_networks", policy.error().message);
  if (d.concurrency != "adaptive" && d.concurrency != "fixed")
    return r.bad("concurrency", "must be \"adaptive\" or \"fixed\"");
  if (d.min_in_flight > d.max_in_flight)
    return r.bad("min_in_flight", "must be at most max_in_flight (" +
                                      std::to_string(d.max_in_flight) + ")");
  if (!d.ca_file.empty() && !std::ifstream{d.ca_file})
    return r.bad("ca_file", "cannot be read: " + d.ca_file);
  return r.finish();
}

status read_token(table_reader& r, api::token_config& t) {
  TOCSIN_TRY(r.read("name", t.name));
  TOCSIN_TRY(r.read("sha256", t.sha256));
  TOCSIN_TRY(r.read("role", t.role));
  if (t.sha256.size() != 64 ||
      t.sha256.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos)
    return r.bad("sha256", "must be 64 hex digits (the SHA-256 of the token)");
  for (auto& c : t.sha256)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (t.role != "admin" && t.role != "ingest" && t.role != "read")
    return r.bad("role", "must be admin, ingest or read");
  return r.finish();
}

/// [[escalation]]: the keys are read here, the rule is judged by
/// delivery::check_rule (one owner of what a valid rule is).
status read_escalation(table_reader& r, const delivery_config& delivery,
                       delivery::escalation_rule& e) {
  auto& t = r.table();
  bool one_type = t.contains("type");
  if (one_type && t.contains("event_types"))
    return r.bad("event_types", "cannot be given with 'type': use one");
  for (const char* key : {"name", "threshold", "window"})
    if (!t.contains(key))
      return r.bad(key, "is required");
  if (!one_type && !t.contains("event_types"))
    return r.bad("type", "is required (or 'event_types')");
  TOCSIN_TRY(r.read("name", e.name));
  if (one_type) {
    e.event_types.assign(1, "");
    TOCSIN_TRY(r.read("type", e.event_types[0]));
  } else {
    TOCSIN_TRY(r.read("event_types", e.event_types));
  }
  TOCSIN_TRY(r.read_int("threshold", e.threshold, 2,
                        delivery::max_escalation_threshold));
  constexpr double max_seconds = 30 * 86400.0;
  double window = 0;
  TOCSIN_TRY(r.read("window", window, 0.001, max_seconds));
  double suppress_for = window;
  TOCSIN_TRY(r.read("suppress_for", suppress_for, 0, max_seconds));
  // The rules' state is rebuilt from the event log this far back: no
  // further than what retention keeps of it.
  for (auto [key, v] :
       {std::pair{"window", window}, std::pair{"suppress_for", suppress_for}})
    if (v > delivery.retention)
      return r.bad(key, "must not be longer than delivery.retention (rule "
                        "state is rebuilt from the event log at start)");
  e.window = static_cast<unix_ms>(std::llround(window * 1000));
  e.suppress_for = static_cast<unix_ms>(std::llround(suppress_for * 1000));
  TOCSIN_TRY(r.read("group_by", e.group_by));
  TOCSIN_TRY(r.read("severity", e.severity));
  TOCSIN_TRY(r.read("summary", e.summary));
  e.max_groups = delivery::escalator_limits{}.max_groups_per_rule;
  TOCSIN_TRY(r.read_int("max_groups", e.max_groups, 1, 1'000'000));
  TOCSIN_TRY(r.finish());
  if (auto st = delivery::check_rule(e); !st) {
    auto field = st.error().field;
    if (field == "event_types" && one_type)
      field = "type";
    return r.bad(field, st.error().message);
  }
  return {};
}

nlohmann::ordered_json to_json(const toml::node& n) {
  using json = nlohmann::ordered_json;
  if (auto t = n.as_table()) {
    json j = json::object();
    for (auto& [k, v] : *t)
      j[std::string{k.str()}] = to_json(v);
    return j;
  }
  if (auto a = n.as_array()) {
    json j = json::array();
    for (auto& el : *a)
      j.push_back(to_json(el));
    return j;
  }
  if (auto v = n.value_exact<std::string>())
    return *v;
  if (auto v = n.value_exact<std::int64_t>())
    return *v;
  if (auto v = n.value_exact<double>())
    return *v;
  if (auto v = n.value_exact<bool>())
    return *v;
  // Dates and times: no endpoint field takes one; the validator refuses it.
  std::ostringstream os;
  n.visit([&](auto&& v) { os << v; });
  return os.str();
}

/// [[endpoints]] follow the rules of POST /v1/endpoints, except that no
/// secret is generated (one would change at every start: a transport that
/// signs needs one given, which is checked once the plugins are loaded) and
/// the id, when absent, is derived from the URL so that it is stable.
status read_endpoint(table_reader& r, const delivery_config& delivery,
                     endpoint_entry& e) {
  auto body = to_json(r.table());
  r.mark_all_known();
  if (!body.contains("id") && body.contains("url") && body["url"].is_string())
    body["id"] =
        "ep_" +
        hex_encode(sha256(body["url"].get<std::string>())).substr(0, 16);
  endpoint_rules rules;
  rules.generate_secret = false;
  auto def = create_endpoint(body, rules, 0);
  if (!def) {
    auto field = r.name(def.error().field);
    return error{def.error().code, "'" + field + "': " + def.error().message,
                 field};
  }
  def->source = "config";
  auto runtime = runtime_config(*def, endpoint_defaults_of(delivery));
  if (!runtime)
    return r.bad("url", runtime.error().message);
  e.definition = std::move(*def);
  e.endpoint = std::move(*runtime);
  return {};
}

template <class F>
status for_each_table(table_reader& parent, std::string_view key, F&& f) {
  auto n = parent.get(key);
  if (!n)
    return {};
  auto arr = n->as_array();
  if (!arr)
    return parent.bad(key, "must be an array of tables ([[" + parent.name(key) +
                               "]])");
  std::size_t i = 0;
  for (auto& el : *arr) {
    auto t = el.as_table();
    if (!t)
      return parent.bad(key, "must be an array of tables");
    table_reader r{*t, parent.name(key) + "[" + std::to_string(i++) + "]"};
    TOCSIN_TRY(f(r));
  }
  return {};
}

} // namespace

std::string_view backend_name(storage::backend b) {
  return b == storage::backend::postgres ? "postgres" : "rocksdb";
}

endpoint_defaults endpoint_defaults_of(const delivery_config& d) {
  endpoint_defaults e;
  e.retry_schedule = d.retry_schedule;
  e.jitter = d.jitter;
  e.timeout = d.timeout;
  e.concurrency = d.concurrency == "fixed"
                      ? delivery::concurrency_mode::fixed
                      : delivery::concurrency_mode::adaptive;
  e.max_in_flight = d.max_in_flight;
  e.min_in_flight = d.min_in_flight;
  e.http2 = d.http2;
  e.secret_grace_ms = static_cast<unix_ms>(std::llround(d.secret_grace * 1000));
  e.breaker.failures = d.breaker_failures;
  e.breaker.cooldown =
      static_cast<unix_ms>(std::llround(d.breaker_cooldown * 1000));
  return e;
}

result<config> parse_config(std::string_view toml_text,
                            std::string_view source) {
  toml::table root;
  try {
    root = toml::parse(toml_text, source);
  } catch (const toml::parse_error& e) {
    std::ostringstream os;
    os << source << ":" << e.source().begin.line << ":"
       << e.source().begin.column << ": " << e.description();
    return error{"config_syntax", os.str()};
  }
  config cfg;
  table_reader top{root, ""};
  auto section = [&](std::string_view key, auto&& read) -> status {
    auto n = top.get(key);
    if (!n)
      return {};
    auto t = n->as_table();
    if (!t)
      return top.bad(key, "must be a table ([" + std::string{key} + "])");
    table_reader r{*t, std::string{key}};
    return read(r);
  };
  TOCSIN_TRY(section(
      "server", [&](table_reader& r) { return read_server(r, cfg.server); }));
  TOCSIN_TRY(section("delivery", [&](table_reader& r) {
    return read_delivery(r, cfg.delivery);
  }));
  TOCSIN_TRY(section("storage", [&](table_reader& r) {
    return read_storage(r, cfg.storage);
  }));
  TOCSIN_TRY(section("cluster", [&](table_reader& r) {
    return read_cluster(r, cfg.cluster);
  }));
  TOCSIN_TRY(section("auth", [&](table_reader& r) -> status {
    TOCSIN_TRY(for_each_table(r, "tokens", [&](table_reader& tr) -> status {
      api::token_config t;
      TOCSIN_TRY(read_token(tr, t));
      cfg.tokens.push_back(std::move(t));
      return {};
    }));
    return r.finish();
  }));
  // The integrations' secrets authenticate whoever calls their routes: a
  // short one would be guessable.
  auto secret = [](table_reader& r, const char* key,
                   std::string& out) -> status {
    TOCSIN_TRY(r.read(key, out));
    if (!out.empty() && out.size() < 16)
      return r.bad(key, "must be at least 16 characters (or empty: off)");
    return r.finish();
  };
  TOCSIN_TRY(section("slack", [&](table_reader& r) -> status {
    auto& hosts = cfg.slack_response_url_hosts;
    TOCSIN_TRY(r.read("response_url_hosts", hosts));
    for (auto& h : hosts) {
      std::transform(h.begin(), h.end(), h.begin(), [](unsigned char c) {
        return static_cast<char>(std::tolower(c));
      });
      auto u = parse_url("https://" + h + "/");
      if (!u || u->host != h)
        return r.bad("response_url_hosts",
                     "must hold host names (e.g. \"hooks.slack.com\"), "
                     "got '" +
                         h + "'");
    }
    return secret(r, "signing_secret", cfg.slack_signing_secret);
  }));
  TOCSIN_TRY(section("pagerduty", [&](table_reader& r) {
    return secret(r, "webhook_secret", cfg.pagerduty_webhook_secret);
  }));
  TOCSIN_TRY(section("log", [&](table_reader& r) -> status {
    TOCSIN_TRY(r.read("level", cfg.log_level));
    if (!log::level_from(cfg.log_level))
      return r.bad("level", "must be debug, info, warn or error");
    return r.finish();
  }));
  TOCSIN_TRY(for_each_table(top, "endpoints", [&](table_reader& r) -> status {
    endpoint_entry e;
    TOCSIN_TRY(read_endpoint(r, cfg.delivery, e));
    for (auto& other : cfg.endpoints)
      if (other.endpoint.id == e.endpoint.id)
        return r.bad("id", "duplicates endpoint id '" + e.endpoint.id + "'");
    cfg.endpoints.push_back(std::move(e));
    return {};
  }));
  TOCSIN_TRY(for_each_table(top, "escalation", [&](table_reader& r) -> status {
    delivery::escalation_rule e;
    TOCSIN_TRY(read_escalation(r, cfg.delivery, e));
    for (auto& other : cfg.escalation)
      if (other.name == e.name)
        return r.bad("name", "duplicates escalation rule '" + e.name + "'");
    cfg.escalation.push_back(std::move(e));
    return {};
  }));
  TOCSIN_TRY(top.finish());
  return cfg;
}

std::string node_id_of(const config& cfg) {
  if (!cfg.cluster.node_id.empty())
    return cfg.cluster.node_id;
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0 || !*host)
    std::snprintf(host, sizeof host, "tocsin");
  auto& listen = cfg.server.listen;
  auto colon = listen.rfind(':');
  auto port = colon == std::string::npos ? listen : listen.substr(colon + 1);
  // Any free port (:0): "<host>:0" would be every such node's id on the
  // host (they would take each other's leases for their own). Its data
  // directory names it instead: its own, and the same after a restart (which
  // then renews its leases at once instead of waiting for them to expire).
  if (port == "0")
    return std::string{host} + ":" + cfg.server.data_dir;
  return std::string{host} + ":" + port;
}

result<config> load_config(const std::filesystem::path& file) {
  std::ifstream in{file, std::ios::binary};
  if (!in)
    return error{"config_unreadable",
                 "cannot read config file " + file.string()};
  std::ostringstream text;
  text << in.rdbuf();
  return parse_config(text.str(), file.string());
}

} // namespace tocsin::app
