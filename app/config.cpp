#include "app/config.hpp"

#include "common/encoding.hpp"
#include "common/event_types.hpp"
#include "transports/address_policy.hpp"
#include "transports/signing.hpp"

#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include <toml++/toml.h>

namespace tocsin::app {

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

#define TOCSIN_TRY(expr)                                                       \
  do {                                                                         \
    if (auto st_ = (expr); !st_)                                               \
      return st_.error();                                                      \
  } while (false)

status read_server(table_reader& r, server_config& s) {
  TOCSIN_TRY(r.read("listen", s.listen));
  TOCSIN_TRY(r.read("data_dir", s.data_dir));
  TOCSIN_TRY(r.read_int("max_body_bytes", s.max_body_bytes, 1024, 1 << 30));
  TOCSIN_TRY(r.read("request_timeout", s.request_timeout, 0.1, 3600));
  TOCSIN_TRY(r.read_int("max_connections", s.max_connections, 1, 100000));
  TOCSIN_TRY(r.read("plugins_dir", s.plugins_dir));
  TOCSIN_TRY(r.read("audit_url_template", s.audit_url_template));
  TOCSIN_TRY(r.read("public_metrics", s.public_metrics));
  TOCSIN_TRY(r.read_int("io_threads", s.io_threads, 1, 64));
  TOCSIN_TRY(r.read_int("actor_threads", s.actor_threads, 1, 64));
  if (s.data_dir.empty())
    return r.bad("data_dir", "must not be empty");
  return r.finish();
}

status read_delivery(table_reader& r, delivery_config& d) {
  TOCSIN_TRY(r.read_schedule("retry_schedule", d.retry_schedule));
  TOCSIN_TRY(r.read("jitter", d.jitter, 0, 0.5));
  TOCSIN_TRY(r.read("timeout", d.timeout, 0.001, 600));
  TOCSIN_TRY(
      r.read_int("max_payload_bytes", d.max_payload_bytes, 4096, 1 << 20));
  TOCSIN_TRY(r.read("ca_file", d.ca_file));
  TOCSIN_TRY(r.read("allow_networks", d.allow_networks));
  TOCSIN_TRY(r.read_int("retention", d.retention, 60, 10LL * 365 * 86400));
  TOCSIN_TRY(r.read_int("max_in_flight", d.max_in_flight, 1, 1024));
  if (auto policy = transports::address_policy::from_cidrs(d.allow_networks);
      !policy)
    return r.bad("allow_networks", policy.error().message);
  if (!d.ca_file.empty() && !std::ifstream{d.ca_file})
    return r.bad("ca_file", "cannot be read: " + d.ca_file);
  return r.finish();
}

status read_token(table_reader& r, token_config& t) {
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

status read_endpoint(table_reader& r, const delivery_config& defaults,
                     endpoint_entry& e) {
  auto& ep = e.endpoint;
  std::string url_text, min_severity = "info";
  TOCSIN_TRY(r.read("id", ep.id));
  TOCSIN_TRY(r.read("url", url_text));
  TOCSIN_TRY(r.read("transport", ep.transport));
  TOCSIN_TRY(r.read("event_types", ep.filter.event_types));
  TOCSIN_TRY(r.read("min_severity", min_severity));
  TOCSIN_TRY(r.read("agents", ep.filter.agents));
  TOCSIN_TRY(r.read("secret", e.secret));
  ep.retry.schedule = defaults.retry_schedule;
  ep.retry.jitter = defaults.jitter;
  TOCSIN_TRY(r.read_schedule("retry_schedule", ep.retry.schedule));
  double timeout = defaults.timeout;
  TOCSIN_TRY(r.read("timeout", timeout, 0.001, 600));
  ep.timeout = std::chrono::milliseconds{std::llround(timeout * 1000)};
  ep.max_in_flight = defaults.max_in_flight;
  TOCSIN_TRY(r.read_int("max_in_flight", ep.max_in_flight, 1, 1024));
  if (auto opts = r.get("options"); opts && !opts->is_table())
    return r.bad("options", "must be a table");
  if (url_text.empty())
    return r.bad("url", "is required");
  auto u = parse_url(url_text);
  if (!u)
    return r.bad("url", u.error().message);
  if (u->scheme != "https")
    return error{"insecure_url",
                 "'" + r.name("url") + "' must use https:// (got " + u->scheme +
                     "://)",
                 r.name("url")};
  ep.target = *u;
  if (ep.transport != "webhook")
    return r.bad("transport",
                 "'" + ep.transport +
                     "' is not available (this version has: webhook)");
  for (auto& t : ep.filter.event_types)
    if (t != "*" && !is_event_type(t))
      return r.bad("event_types", "names unknown event type '" + t + "'");
  auto rank = severity_rank(min_severity);
  if (!rank)
    return r.bad("min_severity",
                 "must be one of info, low, medium, high, critical");
  ep.filter.min_severity = *rank;
  if (e.secret.empty())
    return r.bad("secret", "is required for a webhook endpoint (whsec_...)");
  auto key = transports::decode_webhook_secret(e.secret);
  if (!key)
    return r.bad("secret", key.error().message);
  ep.signing_keys = {std::move(*key)};
  if (ep.id.empty()) // stable across restarts, so that recovery finds it
    ep.id = "ep_" + hex_encode(sha256(url_text)).substr(0, 16);
  if (ep.id.size() > 64 ||
      ep.id.find_first_not_of(
          "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVW"
          "XYZ0123456789-_.") != std::string::npos)
    return r.bad("id", "must be 1-64 characters of [A-Za-z0-9._-]");
  return r.finish();
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
  TOCSIN_TRY(section("auth", [&](table_reader& r) -> status {
    TOCSIN_TRY(for_each_table(r, "tokens", [&](table_reader& tr) -> status {
      token_config t;
      TOCSIN_TRY(read_token(tr, t));
      cfg.tokens.push_back(std::move(t));
      return {};
    }));
    return r.finish();
  }));
  TOCSIN_TRY(section("slack", [&](table_reader& r) -> status {
    TOCSIN_TRY(r.read("signing_secret", cfg.slack_signing_secret));
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
  if (top.get("escalation"))
    return error{"config_unsupported",
                 "'escalation' rules are not supported by this version yet",
                 "escalation"};
  TOCSIN_TRY(top.finish());
  return cfg;
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
