#include "endpoints/definition.hpp"

#include "common/event_types.hpp"
#include "common/ids.hpp"
#include "common/json_parse.hpp"
#include "common/url.hpp"
#include "delivery/signing.hpp"

#include <algorithm>
#include <cmath>

namespace tocsin::endpoints {

namespace {

error invalid(std::string field, std::string message,
              std::string code = "invalid_field") {
  return error{std::move(code), std::move(message), std::move(field)};
}

bool is_valid_endpoint_id(std::string_view id) {
  return !id.empty() && id.size() <= 64 &&
         id.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUV"
                              "WXYZ0123456789-_.") == std::string_view::npos;
}

/// Ids a URL could not name unambiguously: the names of an endpoint's
/// sub-resources, and the dot segments clients remove from paths.
bool is_reserved_endpoint_id(std::string_view id) {
  return id == "replay" || id == "rotate-secret" || id == "." || id == "..";
}

result<std::string> get_string(const ordered_json& v, const std::string& field,
                               std::size_t max_len) {
  if (!v.is_string())
    return invalid(field, field + " must be a string");
  auto s = v.get<std::string>();
  if (s.size() > max_len)
    return invalid(field, field + " must be at most " +
                              std::to_string(max_len) + " characters");
  return s;
}

result<std::vector<std::string>> get_strings(const ordered_json& v,
                                             const std::string& field) {
  if (!v.is_array() || v.size() > 100)
    return invalid(field, field + " must be an array of at most 100 strings");
  std::vector<std::string> out;
  for (auto& el : v) {
    if (!el.is_string())
      return invalid(field, field + " must be an array of strings");
    out.push_back(el.get<std::string>());
  }
  return out;
}

status set_url(endpoint_definition& e, const ordered_json& v) {
  TOCSIN_TRY_ASSIGN(text, get_string(v, "url", 2048));
  auto u = parse_url(text);
  if (!u)
    return invalid("url",
                   "url is not a valid absolute URL: " + u.error().message,
                   "invalid_url");
  if (u->scheme != "https")
    return invalid("url",
                   "url must use https:// (got " + u->scheme +
                       "://); deliveries are never sent in clear text",
                   "insecure_url");
  e.url = std::move(text);
  return {};
}

status set_transport(endpoint_definition& e, const ordered_json& v) {
  TOCSIN_TRY_ASSIGN(t, get_string(v, "transport", 64));
  if (t.empty())
    return invalid("transport", "transport must not be empty");
  e.transport = std::move(t);
  return {};
}

status set_event_types(endpoint_definition& e, const ordered_json& v) {
  TOCSIN_TRY_ASSIGN(types, get_strings(v, "event_types"));
  if (types.empty())
    return invalid("event_types",
                   "event_types must name at least one type, or \"*\"");
  for (auto& t : types)
    if (t != "*" && !is_event_type(t))
      return invalid("event_types", "unknown event type '" + t + "'",
                     "unknown_event_type");
  e.event_types = std::move(types);
  return {};
}

status set_min_severity(endpoint_definition& e, const ordered_json& v) {
  TOCSIN_TRY_ASSIGN(s, get_string(v, "min_severity", 16));
  if (!severity_rank(s))
    return invalid("min_severity",
                   "min_severity must be one of info, low, medium, high, "
                   "critical (got '" +
                       s + "')",
                   "invalid_severity");
  e.min_severity = std::move(s);
  return {};
}

status set_agents(endpoint_definition& e, const ordered_json& v) {
  TOCSIN_TRY_ASSIGN(globs, get_strings(v, "agents"));
  for (auto& g : globs)
    if (!is_valid_glob(g))
      return invalid("agents",
                     "'" + g +
                         "' is not a valid glob (1-256 characters, every '[' "
                         "closed, no trailing '\\')",
                     "invalid_glob");
  e.agents = std::move(globs);
  return {};
}

status set_secret(endpoint_definition& e, const ordered_json& v) {
  TOCSIN_TRY_ASSIGN(s, get_string(v, "secret", 256));
  if (auto k = delivery::decode_signing_secret(s); !k)
    return invalid("secret", k.error().message, "invalid_secret");
  e.secret = std::move(s);
  return {};
}

/// {"per_second": >0, "burst": >=1 (default 1)}; null: the transport's.
status set_rate_limit(endpoint_definition& e, const ordered_json& v) {
  const std::string field = "rate_limit";
  if (v.is_null()) {
    e.rate_limit.reset();
    return {};
  }
  if (!v.is_object())
    return invalid(field, "rate_limit must be {\"per_second\": n, "
                          "\"burst\": n} or null");
  delivery::rate_limit r;
  for (auto& [k, x] : v.items()) {
    if (k == "per_second" && x.is_number() && x.get<double>() > 0 &&
        x.get<double>() <= 100000)
      r.per_second = x.get<double>();
    else if (k == "burst" && x.is_number_integer() &&
             x.get<std::int64_t>() >= 1 && x.get<std::int64_t>() <= 10000)
      r.burst = x.get<int>();
    else if (k == "per_second" || k == "burst")
      return invalid(field + "." + k,
                     k == "per_second"
                         ? "rate_limit.per_second must be a number from "
                           "0 (exclusive) to 100000"
                         : "rate_limit.burst must be an integer from 1 to "
                           "10000");
    else
      return invalid(field + "." + k, "unknown field 'rate_limit." + k + "'",
                     "unknown_field");
  }
  if (r.per_second <= 0)
    return invalid(field + ".per_second", "rate_limit.per_second is required",
                   "missing_field");
  e.rate_limit = r;
  return {};
}

/// {"failures": >=0 (0: never opens), "cooldown": seconds}; null: defaults.
status set_circuit_breaker(endpoint_definition& e, const ordered_json& v) {
  const std::string field = "circuit_breaker";
  if (v.is_null()) {
    e.circuit_breaker.reset();
    return {};
  }
  if (!v.is_object())
    return invalid(field, "circuit_breaker must be {\"failures\": n, "
                          "\"cooldown\": seconds} or null");
  delivery::breaker_settings b;
  for (auto& [k, x] : v.items()) {
    if (k == "failures" && x.is_number_integer() &&
        x.get<std::int64_t>() >= 0 && x.get<std::int64_t>() <= 1000)
      b.failures = x.get<int>();
    else if (k == "cooldown" && x.is_number() && x.get<double>() >= 0.01 &&
             x.get<double>() <= 86400)
      b.cooldown = static_cast<unix_ms>(std::llround(x.get<double>() * 1000));
    else if (k == "failures" || k == "cooldown")
      return invalid(field + "." + k,
                     k == "failures"
                         ? "circuit_breaker.failures must be an integer "
                           "from 0 (never open) to 1000"
                         : "circuit_breaker.cooldown must be a number of "
                           "seconds from 0.01 to 86400");
    else
      return invalid(field + "." + k,
                     "unknown field 'circuit_breaker." + k + "'",
                     "unknown_field");
  }
  e.circuit_breaker = b;
  return {};
}

/// The fields a client may set; `create` also allows id and secret.
status apply_fields(endpoint_definition& e, const ordered_json& body,
                    const endpoint_rules& rules, bool create) {
  if (!body.is_object())
    return invalid("", "the endpoint must be a JSON object");
  auto previous_options = e.options;
  std::optional<std::string> signature;
  for (auto& [key, v] : body.items()) {
    if (key == "url") {
      TOCSIN_TRY(set_url(e, v));
    } else if (key == "transport") {
      TOCSIN_TRY(set_transport(e, v));
    } else if (key == "event_types") {
      TOCSIN_TRY(set_event_types(e, v));
    } else if (key == "min_severity") {
      TOCSIN_TRY(set_min_severity(e, v));
    } else if (key == "agents") {
      TOCSIN_TRY(set_agents(e, v));
    } else if (key == "enabled") {
      if (!v.is_boolean())
        return invalid(key, "enabled must be true or false");
      e.enabled = v.get<bool>();
    } else if (key == "description") {
      TOCSIN_TRY_ASSIGN(d, get_string(v, key, 1024));
      e.description = std::move(d);
    } else if (key == "max_in_flight") {
      if (v.is_null()) {
        e.max_in_flight.reset();
        continue;
      }
      if (!v.is_number_integer() || v.get<std::int64_t>() < 1 ||
          v.get<std::int64_t>() > 1024)
        return invalid(key, "max_in_flight must be an integer from 1 to 1024");
      e.max_in_flight = v.get<int>();
    } else if (key == "min_in_flight") {
      if (v.is_null()) {
        e.min_in_flight.reset();
        continue;
      }
      if (!v.is_number_integer() || v.get<std::int64_t>() < 1 ||
          v.get<std::int64_t>() > 1024)
        return invalid(key, "min_in_flight must be an integer from 1 to 1024");
      e.min_in_flight = v.get<int>();
    } else if (key == "concurrency") {
      if (v.is_null()) {
        e.concurrency.reset();
        continue;
      }
      if (!v.is_string() || (v.get<std::string>() != "adaptive" &&
                             v.get<std::string>() != "fixed"))
        return invalid(key, "concurrency must be \"adaptive\" or \"fixed\"");
      e.concurrency = v.get<std::string>();
    } else if (key == "http2") {
      if (v.is_null()) {
        e.http2.reset();
        continue;
      }
      if (!v.is_boolean())
        return invalid(key, "http2 must be true, false or null");
      e.http2 = v.get<bool>();
    } else if (key == "timeout") {
      if (v.is_null()) {
        e.timeout.reset();
        continue;
      }
      if (!v.is_number() || !(v.get<double>() >= 0.001) ||
          v.get<double>() > 600)
        return invalid(key, "timeout must be a number of seconds from 0.001 "
                            "to 600");
      e.timeout = v.get<double>();
    } else if (key == "retry_schedule") {
      if (v.is_null()) {
        e.retry_schedule.reset();
        continue;
      }
      if (!v.is_array() || v.empty() || v.size() > 20)
        return invalid(key, "retry_schedule must be an array of 1 to 20 "
                            "numbers (seconds between attempts)");
      std::vector<double> schedule;
      for (auto& el : v) {
        if (!el.is_number() || !std::isfinite(el.get<double>()) ||
            el.get<double>() < 0 || el.get<double>() > 86400)
          return invalid(key, "retry_schedule must hold numbers of seconds "
                              "between 0 and 86400");
        schedule.push_back(el.get<double>());
      }
      e.retry_schedule = std::move(schedule);
    } else if (key == "options") {
      if (!v.is_object())
        return invalid(key, "options must be an object");
      // API bodies are held to this while parsed; the config file's tables
      // are checked here.
      if (!json_depth_within(v, input_json_limits.max_depth - 1))
        return invalid(key,
                       "options nest deeper than " +
                           std::to_string(input_json_limits.max_depth - 1) +
                           " levels");
      e.options = v;
    } else if (key == "rate_limit") {
      TOCSIN_TRY(set_rate_limit(e, v));
    } else if (key == "circuit_breaker") {
      TOCSIN_TRY(set_circuit_breaker(e, v));
    } else if (key == "ordered") {
      if (!v.is_boolean())
        return invalid(key, "ordered must be true or false");
      e.ordered = v.get<bool>();
    } else if (create && key == "id") {
      TOCSIN_TRY_ASSIGN(id, get_string(v, key, 64));
      if (!is_valid_endpoint_id(id))
        return invalid(key, "id must be 1 to 64 characters of [A-Za-z0-9._-]");
      if (is_reserved_endpoint_id(id))
        return invalid(key, "id '" + id +
                                "' is reserved (it names a "
                                "sub-resource or a path segment)");
      e.id = std::move(id);
    } else if (create && key == "secret") {
      TOCSIN_TRY(set_secret(e, v));
    } else if (create && key == "signature") {
      TOCSIN_TRY_ASSIGN(s, get_string(v, key, 16));
      if (s != "hmac-sha256" && s != "ed25519")
        return invalid(key, "signature must be hmac-sha256 or ed25519");
      signature = std::move(s);
    } else if (key == "secret") {
      return invalid(key,
                     "the secret is changed with POST "
                     "/v1/endpoints/{id}/rotate-secret",
                     "read_only_field");
    } else if (key == "id" || key == "signature" || key == "source" ||
               key == "created_at" || key == "updated_at" ||
               key == "revision" || key == "public_key") {
      return invalid(key, key + " cannot be changed", "read_only_field");
    } else {
      return invalid(key, "unknown field '" + key + "'", "unknown_field");
    }
  }
  if (e.url.empty())
    return invalid("url", "url is required", "missing_field");
  // A credential sent back as the API showed it: the stored one stays.
  if (auto* plugin =
          rules.transports ? rules.transports->find(e.transport) : nullptr;
      plugin && !create && body.contains("options"))
    for (auto& name : plugin->secret_options())
      if (auto now = e.options.find(name), before = previous_options.find(name);
          now != e.options.end() && before != previous_options.end() &&
          now->is_string() && *now == masked_option(*before))
        *now = *before;
  if (create) {
    auto* plugin =
        rules.transports ? rules.transports->find(e.transport) : nullptr;
    bool signs = plugin ? plugin->signs_requests() : true;
    if (e.secret.empty() && (!rules.generate_secret || !signs)) {
      if (signature)
        return invalid("signature", "a signature needs a secret");
    } else if (e.secret.empty()) {
      e.secret = signature == "ed25519"
                     ? delivery::generate_ed25519_keypair().secret_key
                     : delivery::generate_webhook_secret();
    } else if (signature && *signature != e.signature()) {
      return invalid("signature", "signature " + *signature +
                                      " does not match the secret's kind (" +
                                      std::string{e.signature()} + ")");
    }
  }
  if (rules.transports)
    TOCSIN_TRY(check_transport(e, *rules.transports));
  return {};
}

} // namespace

std::string_view endpoint_definition::signature() const {
  if (secret.empty())
    return {};
  return secret.rfind("whsk_", 0) == 0 ? "ed25519" : "hmac-sha256";
}

bool is_valid_glob(std::string_view glob) {
  if (glob.empty() || glob.size() > 256)
    return false;
  for (std::size_t i = 0; i < glob.size(); ++i) {
    if (glob[i] == '\\') {
      if (++i == glob.size())
        return false;
    } else if (glob[i] == '[') {
      // "[]...]" and "[!]...]" take the first ']' literally, as fnmatch does.
      auto j = i + 1;
      if (j < glob.size() && (glob[j] == '!' || glob[j] == '^'))
        ++j;
      if (j < glob.size() && glob[j] == ']')
        ++j;
      auto close = glob.find(']', j);
      if (close == std::string_view::npos)
        return false;
      i = close;
    }
  }
  return true;
}

result<endpoint_definition> create_endpoint(const ordered_json& body,
                                            const endpoint_rules& rules,
                                            unix_ms now) {
  endpoint_definition e;
  TOCSIN_TRY(apply_fields(e, body, rules, true));
  if (e.id.empty())
    e.id = new_id("ep");
  e.created_at = e.updated_at = now;
  e.revision = 1;
  return e;
}

result<endpoint_definition> patch_endpoint(endpoint_definition current,
                                           const ordered_json& body,
                                           const endpoint_rules& rules,
                                           unix_ms now) {
  TOCSIN_TRY(apply_fields(current, body, rules, false));
  current.updated_at = now;
  ++current.revision;
  return current;
}

result<endpoint_definition>
rotate_endpoint_secret(endpoint_definition current,
                       std::optional<std::string> new_secret, unix_ms grace_ms,
                       unix_ms now) {
  std::string next;
  if (new_secret) {
    if (auto k = delivery::decode_signing_secret(*new_secret); !k)
      return invalid("secret", k.error().message, "invalid_secret");
    if (*new_secret == current.secret)
      return invalid("secret", "the new secret must differ from the current",
                     "invalid_secret");
    next = std::move(*new_secret);
  } else {
    next = current.signature() == "ed25519"
               ? delivery::generate_ed25519_keypair().secret_key
               : delivery::generate_webhook_secret();
  }
  // Secrets whose grace has ended are forgotten; the replaced one joins the
  // rest. At most 4 are kept: rotating in a loop cannot grow the headers.
  std::erase_if(current.retired,
                [&](const retired_secret& r) { return r.expires_at <= now; });
  if (grace_ms > 0)
    current.retired.insert(current.retired.begin(),
                           retired_secret{current.secret, now + grace_ms});
  if (current.retired.size() > 4)
    current.retired.resize(4);
  current.secret = std::move(next);
  current.updated_at = now;
  ++current.revision;
  return current;
}

namespace {

ordered_json settings_json(const endpoint_definition& e) {
  ordered_json j{{"id", e.id},
                 {"url", e.url},
                 {"transport", e.transport},
                 {"event_types", e.event_types},
                 {"min_severity", e.min_severity},
                 {"agents", e.agents},
                 {"enabled", e.enabled},
                 {"description", e.description},
                 {"signature", e.signature().empty()
                                   ? ordered_json(nullptr)
                                   : ordered_json(e.signature())}};
  j["max_in_flight"] =
      e.max_in_flight ? ordered_json(*e.max_in_flight) : ordered_json(nullptr);
  j["min_in_flight"] =
      e.min_in_flight ? ordered_json(*e.min_in_flight) : ordered_json(nullptr);
  j["concurrency"] =
      e.concurrency ? ordered_json(*e.concurrency) : ordered_json(nullptr);
  j["http2"] = e.http2 ? ordered_json(*e.http2) : ordered_json(nullptr);
  j["timeout"] = e.timeout ? ordered_json(*e.timeout) : ordered_json(nullptr);
  j["retry_schedule"] = e.retry_schedule ? ordered_json(*e.retry_schedule)
                                         : ordered_json(nullptr);
  j["rate_limit"] = e.rate_limit
                        ? ordered_json{{"per_second", e.rate_limit->per_second},
                                       {"burst", e.rate_limit->burst}}
                        : ordered_json(nullptr);
  j["circuit_breaker"] =
      e.circuit_breaker
          ? ordered_json{{"failures", e.circuit_breaker->failures},
                         {"cooldown", e.circuit_breaker->cooldown / 1000.0}}
          : ordered_json(nullptr);
  j["ordered"] = e.ordered;
  j["options"] = e.options;
  j["source"] = e.source;
  return j;
}

} // namespace

std::string to_stored_json(const endpoint_definition& e) {
  auto j = settings_json(e);
  j["secret"] = e.secret;
  auto retired = ordered_json::array();
  for (auto& r : e.retired)
    retired.push_back({{"secret", r.secret}, {"expires_at", r.expires_at}});
  j["retired_secrets"] = std::move(retired);
  j["created_at"] = e.created_at;
  j["updated_at"] = e.updated_at;
  j["revision"] = e.revision;
  return j.dump();
}

result<endpoint_definition> from_stored_json(std::string_view text) {
  ordered_json j;
  if (!parse_json(text, j, nullptr, stored_json_limits))
    j = nullptr;
  auto corrupt = [&](std::string what) {
    return error{"store_corrupt", "unreadable endpoint record: " + what};
  };
  if (!j.is_object())
    return corrupt("not an object");
  try {
    endpoint_definition e;
    e.id = j.at("id").get<std::string>();
    e.url = j.at("url").get<std::string>();
    e.transport = j.at("transport").get<std::string>();
    e.event_types = j.at("event_types").get<std::vector<std::string>>();
    e.min_severity = j.at("min_severity").get<std::string>();
    e.agents = j.at("agents").get<std::vector<std::string>>();
    e.enabled = j.at("enabled").get<bool>();
    e.description = j.at("description").get<std::string>();
    e.secret = j.at("secret").get<std::string>();
    for (auto& r : j.at("retired_secrets"))
      e.retired.push_back(retired_secret{r.at("secret").get<std::string>(),
                                         r.at("expires_at").get<unix_ms>()});
    if (auto& v = j.at("max_in_flight"); !v.is_null())
      e.max_in_flight = v.get<int>();
    // Absent from definitions stored before they existed.
    if (auto it = j.find("min_in_flight"); it != j.end() && !it->is_null())
      e.min_in_flight = it->get<int>();
    if (auto it = j.find("concurrency"); it != j.end() && !it->is_null())
      e.concurrency = it->get<std::string>();
    if (auto it = j.find("http2"); it != j.end() && !it->is_null())
      e.http2 = it->get<bool>();
    if (auto& v = j.at("timeout"); !v.is_null())
      e.timeout = v.get<double>();
    if (auto& v = j.at("retry_schedule"); !v.is_null())
      e.retry_schedule = v.get<std::vector<double>>();
    if (auto it = j.find("rate_limit"); it != j.end() && !it->is_null())
      e.rate_limit = delivery::rate_limit{it->at("per_second").get<double>(),
                                          it->at("burst").get<int>()};
    if (auto it = j.find("circuit_breaker"); it != j.end() && !it->is_null())
      e.circuit_breaker = delivery::breaker_settings{
          it->at("failures").get<int>(),
          static_cast<unix_ms>(
              std::llround(it->at("cooldown").get<double>() * 1000))};
    e.ordered = j.value("ordered", false);
    e.options = j.at("options");
    e.source = j.at("source").get<std::string>();
    e.created_at = j.at("created_at").get<unix_ms>();
    e.updated_at = j.at("updated_at").get<unix_ms>();
    e.revision = j.at("revision").get<std::int64_t>();
    return e;
  } catch (const nlohmann::json::exception& ex) {
    return corrupt(ex.what());
  }
}

std::string masked_option(const ordered_json& value) {
  constexpr std::string_view ellipsis = "\u2026";
  if (!value.is_string())
    return std::string{ellipsis};
  auto& s = value.get_ref<const std::string&>();
  // Where each character (code point) starts.
  std::vector<std::size_t> starts;
  for (std::size_t i = 0; i < s.size(); ++i)
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80)
      starts.push_back(i);
  if (starts.size() < 8)
    return std::string{ellipsis};
  return std::string{ellipsis} + s.substr(starts[starts.size() - 4]);
}

ordered_json to_api_json(const endpoint_definition& e, bool with_secret,
                         const plugins::loaded_plugins* transports) {
  auto j = settings_json(e);
  if (auto* plugin = transports ? transports->find(e.transport) : nullptr)
    for (auto& name : plugin->secret_options())
      if (auto it = j["options"].find(name); it != j["options"].end())
        *it = masked_option(*it);
  if (e.signature() == "ed25519")
    if (auto pk = delivery::ed25519_public_key(e.secret))
      j["public_key"] = *pk;
  if (with_secret)
    j["secret"] = e.secret;
  if (!e.retired.empty()) {
    unix_ms until = 0;
    for (auto& r : e.retired)
      until = std::max(until, r.expires_at);
    j["previous_secrets_expire_at"] = format_rfc3339(until);
  }
  j["created_at"] = format_rfc3339(e.created_at);
  j["updated_at"] = format_rfc3339(e.updated_at);
  j["revision"] = e.revision;
  return j;
}

bool same_settings(const endpoint_definition& a, const endpoint_definition& b) {
  return settings_json(a) == settings_json(b) && a.secret == b.secret;
}

status check_transport(const endpoint_definition& e,
                       const plugins::loaded_plugins& transports) {
  auto* plugin = transports.find(e.transport);
  if (!plugin) {
    std::string known;
    for (auto& p : transports.plugins)
      known += (known.empty() ? "" : ", ") + p.name();
    return invalid("transport",
                   "unknown transport '" + e.transport +
                       "' (loaded: " + (known.empty() ? "none" : known) + ")",
                   "unknown_transport");
  }
  if (plugin->signs_requests() && e.secret.empty())
    return invalid("secret",
                   "a secret is required: the " + e.transport +
                       " transport signs its requests (whsec_... or "
                       "whsk_...)",
                   "missing_field");
  auto options = e.options.dump();
  if (auto st = plugin->validate_options(
          plugins::endpoint_view{e.id, e.url, options});
      !st)
    return invalid("options", st.error().message, "invalid_options");
  return {};
}

result<delivery::endpoint_config>
runtime_config(const endpoint_definition& e, const endpoint_defaults& d,
               const plugins::loaded_plugins* transports) {
  delivery::endpoint_config c;
  c.id = e.id;
  c.url = e.url;
  c.options_json = e.options.dump();
  if (transports) {
    auto* plugin = transports->find(e.transport);
    if (!plugin)
      return invalid("transport", "unknown transport '" + e.transport + "'",
                     "unknown_transport");
    auto opened = plugin->open(
        plugins::endpoint_view{e.id, e.url, std::string_view{c.options_json}});
    if (!opened)
      return invalid("options", opened.error().message, "invalid_options");
    c.plugin = std::move(*opened);
  }
  auto u = parse_url(e.url);
  if (!u)
    return u.error();
  c.target = std::move(*u);
  c.transport = e.transport;
  c.filter.event_types = e.event_types;
  c.filter.min_severity = severity_rank(e.min_severity).value_or(0);
  c.filter.agents = e.agents;
  c.enabled = e.enabled;
  c.revision = e.revision;
  if (!e.secret.empty()) { // none for a transport that does not sign
    auto current = delivery::decode_signing_secret(e.secret);
    if (!current)
      return current.error();
    c.signing_keys.push_back(delivery::endpoint_key{std::move(*current), 0});
  }
  for (auto& r : e.retired) {
    auto k = delivery::decode_signing_secret(r.secret);
    if (!k)
      return k.error();
    c.signing_keys.push_back(
        delivery::endpoint_key{std::move(*k), r.expires_at});
  }
  c.retry.schedule = e.retry_schedule.value_or(d.retry_schedule);
  c.retry.jitter = d.jitter;
  c.timeout = std::chrono::milliseconds{
      std::llround(e.timeout.value_or(d.timeout) * 1000)};
  c.max_in_flight = e.max_in_flight.value_or(d.max_in_flight);
  c.min_in_flight =
      std::min(e.min_in_flight.value_or(d.min_in_flight), c.max_in_flight);
  c.concurrency = d.concurrency;
  if (e.concurrency)
    c.concurrency = *e.concurrency == "fixed"
                        ? delivery::concurrency_mode::fixed
                        : delivery::concurrency_mode::adaptive;
  c.http2 = e.http2.value_or(d.http2);
  if (e.rate_limit)
    c.rate = *e.rate_limit;
  else if (c.plugin && c.plugin->plugin().default_rate_per_second() > 0)
    c.rate = delivery::rate_limit{
        c.plugin->plugin().default_rate_per_second(),
        static_cast<int>(c.plugin->plugin().default_burst())};
  c.breaker = e.circuit_breaker.value_or(d.breaker);
  c.ordered = e.ordered;
  return c;
}

} // namespace tocsin::endpoints
