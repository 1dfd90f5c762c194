// Endpoints: GET/POST /v1/endpoints, GET/PATCH/DELETE /v1/endpoints/{id},
// POST /v1/endpoints/{id}/rotate-secret and /v1/endpoints/{id}/replay.
#include "api/handler.hpp"

#include "api/routes/shared.hpp"
#include "common/log.hpp"
#include "common/time.hpp"
#include "common/url.hpp"

#include <cmath>

namespace tocsin::api {

using namespace tocsin::endpoints;
using namespace shared;

namespace {

/// What the SSRF guard would make of deliveries to the endpoint's URL: the
/// 422 answer when it refuses every address the host is (or resolves to);
/// a warning (into `warnings`) when the host does not resolve, which may
/// change (deliveries are judged again on the address they connect to).
std::optional<response>
judge_destination(const std::optional<net::address_policy>& policy,
                  const endpoint_definition& def, json& warnings) {
  if (!policy)
    return std::nullopt;
  auto u = parse_url(def.url);
  if (!u)
    return std::nullopt; // refused by the definition's checks already
  auto verdict = policy->check_host(u->host);
  using kind = net::destination_verdict::kind;
  if (verdict.what == kind::refused)
    return error_response(
        422,
        {"forbidden_address",
         "deliveries to this URL would be refused: " + verdict.reason, "url"});
  if (verdict.what == kind::unresolved)
    warnings.push_back(json{
        {"code", "unresolved_host"},
        {"message", u->host + " does not resolve now (" + verdict.reason +
                        "): its deliveries fail and are retried until it "
                        "does, each checked against delivery.allow_networks "
                        "on the address it connects to"},
        {"field", "url"}});
  return std::nullopt;
}

} // namespace

void request_handler::replay_endpoint(call& c) {
  delivery::replay_selection sel;
  sel.endpoint_id.assign(c.id);
  auto since = query_param(c.query, "since");
  if (!since.empty()) {
    auto t = parse_rfc3339(since);
    if (!t)
      return c.respond(error_response(
          400, {"invalid_field", "since must be RFC 3339", "since"}));
    sel.since = *t;
  }
  replay(std::move(sel), c);
}

ordered_json request_handler::live(ordered_json endpoint) const {
  auto now = opts_.board
                 ? opts_.board->get(endpoint.at("id").get<std::string>())
                 : std::nullopt;
  endpoint["in_flight"] =
      now ? ordered_json{{"limit", now->in_flight_limit},
                         {"current", now->in_flight},
                         {"latency_floor_ms",
                          now->latency_floor_ms < 0
                              ? ordered_json(nullptr)
                              : ordered_json(now->latency_floor_ms)}}
          : ordered_json(nullptr);
  return endpoint;
}

void request_handler::list_endpoints(call& c) {
  auto all = log_.list_endpoints();
  if (!all) {
    log::error("endpoint read failed", {{"error", all.error().message}});
    return c.respond(error_response(500, store_failure));
  }
  json items = json::array();
  for (auto& [id, text] : *all) {
    auto def = from_stored_json(text);
    if (!def)
      return c.respond(error_response(500, def.error()));
    items.push_back(live(to_api_json(*def, false, opts_.rules.transports)));
  }
  c.respond(json_response(200, json{{"endpoints", std::move(items)}}));
}

void request_handler::create_endpoint(call& c) {
  auto body = json_body(c.req, false);
  if (!body)
    return c.respond(body_error(body.error()));
  auto def = endpoints::create_endpoint(*body, opts_.rules, now_ms());
  if (!def)
    return c.respond(error_response(400, def.error()));
  delivery::endpoint_change change;
  change.what = delivery::endpoint_change::kind::create;
  change_endpoint(std::move(change), std::move(*def), 201, true, c, true);
}

std::optional<endpoint_definition>
request_handler::stored_endpoint(call& c, bool changing) {
  auto id = std::string{c.id};
  auto stored = log_.get_endpoint(id);
  if (!stored) {
    log::error("endpoint read failed", {{"error", stored.error().message}});
    c.respond(error_response(500, store_failure));
    return std::nullopt;
  }
  if (!*stored) {
    c.respond(error_response(404, {"not_found", "no endpoint " + id}));
    return std::nullopt;
  }
  auto current = from_stored_json(**stored);
  if (!current) {
    c.respond(error_response(500, current.error()));
    return std::nullopt;
  }
  if (changing && current->source == "config") {
    c.respond(error_response(
        409, {"managed_by_config",
              "endpoint " + id +
                  " is declared in the config file; change it there"}));
    return std::nullopt;
  }
  return std::move(*current);
}

void request_handler::get_endpoint(call& c) {
  if (auto current = stored_endpoint(c, false))
    c.respond(json_response(
        200, live(to_api_json(*current, false, opts_.rules.transports))));
}

void request_handler::patch_endpoint(call& c) {
  auto current = stored_endpoint(c, true);
  if (!current)
    return;
  auto body = json_body(c.req, false);
  if (!body)
    return c.respond(body_error(body.error()));
  delivery::endpoint_change change;
  change.what = delivery::endpoint_change::kind::update;
  change.id = current->id;
  change.based_on = current->revision;
  auto url = current->url;
  auto next = endpoints::patch_endpoint(std::move(*current), *body, opts_.rules,
                                        now_ms());
  if (!next)
    return c.respond(error_response(400, next.error()));
  // Only a new URL is judged: a change of anything else goes through
  // whatever the guard makes of the URL now.
  bool new_url = next->url != url;
  change_endpoint(std::move(change), std::move(*next), 200, false, c, new_url);
}

void request_handler::delete_endpoint(call& c) {
  auto current = stored_endpoint(c, true);
  if (!current)
    return;
  delivery::endpoint_change change;
  change.what = delivery::endpoint_change::kind::remove;
  change.id = current->id;
  change.based_on = current->revision;
  engine_.change_endpoint(
      std::move(change), [respond = std::move(c.respond)](status st) {
        if (!st)
          return respond(error_response(status_of(st.error()), st.error()));
        respond(response{204, {}, {}});
      });
}

void request_handler::rotate_secret(call& c) {
  auto current = stored_endpoint(c, true);
  if (!current)
    return;
  auto body = json_body(c.req, true);
  if (!body)
    return c.respond(body_error(body.error()));
  std::optional<std::string> secret;
  auto grace = opts_.defaults.secret_grace_ms;
  for (auto& [key, v] : body->items()) {
    if (key == "secret" && v.is_string()) {
      secret = v.get<std::string>();
    } else if (key == "grace" && v.is_number() && v.get<double>() >= 0 &&
               v.get<double>() <= 7 * 86400) {
      grace = static_cast<unix_ms>(std::llround(v.get<double>() * 1000));
    } else if (key == "secret" || key == "grace") {
      return c.respond(error_response(
          400, {"invalid_field",
                key == "secret"
                    ? "secret must be a string (whsec_... or whsk_...)"
                    : "grace must be a number of seconds from 0 to 604800",
                key}));
    } else {
      return c.respond(error_response(
          400, {"unknown_field", "unknown field '" + key + "'", key}));
    }
  }
  delivery::endpoint_change change;
  change.what = delivery::endpoint_change::kind::update;
  change.id = current->id;
  change.based_on = current->revision;
  change.record_kind = storage::record_kind::endpoint_secret_rotated;
  auto next = rotate_endpoint_secret(std::move(*current), std::move(secret),
                                     grace, now_ms());
  if (!next)
    return c.respond(error_response(400, next.error()));
  change_endpoint(std::move(change), std::move(*next), 200, true, c);
}

void request_handler::change_endpoint(delivery::endpoint_change change,
                                      endpoint_definition def, int status,
                                      bool with_secret, call& c, bool new_url) {
  auto config = runtime_config(def, opts_.defaults, opts_.rules.transports);
  if (!config)
    return c.respond(error_response(400, config.error()));
  auto warnings = json::array();
  if (new_url)
    if (auto refused = judge_destination(opts_.addresses, def, warnings))
      return c.respond(std::move(*refused));
  change.id = def.id;
  change.config = std::move(*config);
  change.definition = to_stored_json(def);
  // What it is doing as of the change (an update keeps its actor).
  auto shown = live(to_api_json(def, with_secret, opts_.rules.transports));
  if (!warnings.empty())
    shown["warnings"] = std::move(warnings);
  engine_.change_endpoint(
      std::move(change), [respond = std::move(c.respond), status,
                          shown = std::move(shown)](tocsin::status st) {
        if (!st)
          return respond(error_response(status_of(st.error()), st.error()));
        respond(json_response(status, shown));
      });
}

} // namespace tocsin::api
