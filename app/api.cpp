#include "app/api.hpp"

#include "common/ids.hpp"
#include "common/log.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

#include <nlohmann/json.hpp>

namespace tocsin::app {

namespace {

using json = nlohmann::ordered_json;

api_response json_response(int status, const json& body) {
  return api_response{
      status, body.dump(-1, ' ', false, json::error_handler_t::replace), {}};
}

/// Decodes %XX escapes (and '+' as a space, as forms do).
std::string percent_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() &&
        std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(
          std::stoi(std::string{s.substr(i + 1, 2)}, nullptr, 16));
      i += 2;
    } else {
      out += s[i] == '+' ? ' ' : s[i];
    }
  }
  return out;
}

/// "a=1&b=2" -> value of `key` (decoded), or empty.
std::string query_param(std::string_view query, std::string_view key) {
  while (!query.empty()) {
    auto amp = query.find('&');
    auto pair = query.substr(0, amp);
    auto eq = pair.find('=');
    if (pair.substr(0, eq) == key)
      return eq == std::string_view::npos ? std::string{}
                                          : percent_decode(pair.substr(eq + 1));
    if (amp == std::string_view::npos)
      break;
    query.remove_prefix(amp + 1);
  }
  return {};
}

bool is_json_content_type(std::string_view ct) {
  auto semi = ct.find(';');
  auto mime = ct.substr(0, semi);
  while (!mime.empty() && mime.back() == ' ')
    mime.remove_suffix(1);
  std::string lower;
  for (char c : mime)
    lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower == "application/json";
}

json attempt_json(const storage::attempt& a) {
  json j{{"number", a.number},
         {"started_at", format_rfc3339(a.started_at)},
         {"finished_at",
          a.finished() ? json(format_rfc3339(a.finished_at)) : json(nullptr)},
         {"status", a.status == 0 ? json(nullptr) : json(a.status)},
         {"latency_ms", a.latency_ms}};
  j["response"] = a.response;
  j["error"] = a.error.empty() ? json(nullptr) : json(a.error);
  return j;
}

json delivery_json(const storage::delivery& d) {
  json attempts = json::array();
  for (auto& a : d.attempts)
    attempts.push_back(attempt_json(a));
  json j{{"id", d.id},
         {"event_id", d.event_id},
         {"endpoint_id", d.endpoint_id},
         {"state", storage::to_string(d.state)},
         {"created_at", format_rfc3339(d.created_at)},
         {"attempts", std::move(attempts)}};
  if (d.state == storage::delivery_state::pending)
    j["next_attempt_at"] = format_rfc3339(d.next_attempt_at);
  else
    j["finished_at"] = format_rfc3339(d.finished_at);
  if (!d.reason.empty())
    j["reason"] = d.reason;
  return j;
}

const error store_failure{"store_error", "the event store could not be read"};

} // namespace

api_response error_response(int status, const error& e) {
  json err{{"code", e.code}, {"message", e.message}};
  if (!e.field.empty())
    err["field"] = e.field;
  return json_response(status, json{{"error", std::move(err)}});
}

api::api(actors::engine& engine, storage::event_log& log, authenticator auth,
         api_options opts)
    : engine_(engine), log_(log), auth_(std::move(auth)),
      opts_(std::move(opts)) {}

void api::handle(api_request req, std::function<void(api_response)> respond) {
  std::string_view target = req.target;
  auto qpos = target.find('?');
  auto path = target.substr(0, qpos);
  auto query = qpos == std::string_view::npos ? std::string_view{}
                                              : target.substr(qpos + 1);
  auto& method = req.method;

  if (path == "/healthz" || path == "/readyz") {
    if (method != "GET" && method != "HEAD")
      return respond(error_response(
          405, {"method_not_allowed", "use GET " + std::string{path}}));
    return respond(json_response(200, json{{"status", "ok"}}));
  }

  enum class need { ingest, read, admin };
  auto authorize = [&](need n) -> std::optional<api_response> {
    auto r = auth_.authenticate(req.authorization);
    if (!r)
      return error_response(
          401, {"unauthorized", "missing or invalid bearer token"});
    bool ok = *r == role::admin || (n == need::ingest && *r == role::ingest) ||
              (n == need::read && *r == role::read);
    if (!ok)
      return error_response(403,
                            {"forbidden", "this token's role may not do that"});
    return std::nullopt;
  };

  if (path == "/v1/events") {
    if (method != "POST")
      return respond(
          error_response(405, {"method_not_allowed", "use POST /v1/events"}));
    if (auto denied = authorize(need::ingest))
      return respond(std::move(*denied));
    return post_events(req, respond);
  }
  constexpr std::string_view events_prefix = "/v1/events/";
  if (path.substr(0, events_prefix.size()) == events_prefix) {
    if (method != "GET")
      return respond(error_response(
          405, {"method_not_allowed", "use GET /v1/events/{id}"}));
    if (auto denied = authorize(need::read))
      return respond(std::move(*denied));
    return respond(get_event(path.substr(events_prefix.size())));
  }
  if (path == "/v1/dead-letters") {
    if (method != "GET")
      return respond(error_response(
          405, {"method_not_allowed", "use GET /v1/dead-letters"}));
    if (auto denied = authorize(need::read))
      return respond(std::move(*denied));
    return respond(list_dead_letters(query));
  }
  constexpr std::string_view endpoints_path = "/v1/endpoints";
  if (path.substr(0, endpoints_path.size()) == endpoints_path &&
      (path.size() == endpoints_path.size() ||
       path[endpoints_path.size()] == '/') &&
      !(path.size() > 7 && path.substr(path.size() - 7) == "/replay")) {
    bool reading = method == "GET" || method == "HEAD";
    if (auto denied = authorize(reading ? need::read : need::admin))
      return respond(std::move(*denied));
    return endpoints(req, path, respond);
  }
  // POST /v1/dead-letters/{id}/replay, POST /v1/endpoints/{id}/replay
  constexpr std::string_view replay_suffix = "/replay";
  for (std::string_view prefix : {"/v1/dead-letters/", "/v1/endpoints/"}) {
    if (path.substr(0, prefix.size()) != prefix ||
        path.size() <= prefix.size() ||
        path.substr(path.size() - replay_suffix.size()) != replay_suffix)
      continue;
    auto id = path.substr(prefix.size(),
                          path.size() - prefix.size() - replay_suffix.size());
    if (id.empty() || id.find('/') != std::string_view::npos)
      break;
    if (method != "POST")
      return respond(error_response(
          405, {"method_not_allowed", "use POST " + std::string{path}}));
    if (auto denied = authorize(need::admin))
      return respond(std::move(*denied));
    actors::replay_selection sel;
    if (prefix == "/v1/dead-letters/") {
      sel.delivery_ids.emplace_back(id);
    } else {
      sel.endpoint_id.assign(id);
      auto since = query_param(query, "since");
      if (!since.empty()) {
        auto t = parse_rfc3339(since);
        if (!t)
          return respond(error_response(
              400, {"invalid_field", "since must be RFC 3339", "since"}));
        sel.since = *t;
      }
    }
    auto limit = sel.limit;
    return engine_.replay(std::move(sel), [respond = std::move(respond),
                                           limit](result<std::size_t> n) {
      if (!n) {
        auto& code = n.error().code;
        int status = code == "not_found"           ? 404
                     : code == "store_unavailable" ? 503
                                                   : 409;
        return respond(error_response(status, n.error()));
      }
      respond(json_response(
          202, json{{"replayed", *n}, {"limit_reached", *n >= limit}}));
    });
  }
  respond(error_response(
      404, {"not_found", "no such resource: " + std::string{path}}));
}

void api::post_events(api_request& req,
                      std::function<void(api_response)>& respond) {
  if (!is_json_content_type(req.content_type))
    return respond(
        error_response(415, {"unsupported_media_type",
                             "Content-Type must be application/json"}));
  auto& key = req.idempotency_key;
  bool printable = std::all_of(key.begin(), key.end(), [](unsigned char c) {
    return c > 0x20 && c < 0x7f;
  });
  if (key.size() > 256 || !printable)
    return respond(error_response(
        400, {"invalid_field",
              "Idempotency-Key must be 1 to 256 printable ASCII characters",
              "Idempotency-Key"}));
  auto events = validate_events(
      req.body, validation_options{opts_.audit_url_template, now_ms()});
  if (!events)
    return respond(error_response(400, events.error()));
  engine_.ingest(
      std::move(*events),
      [respond = std::move(respond)](result<actors::ingest_answer> answer) {
        if (!answer)
          return respond(error_response(503, answer.error()));
        respond(json_response(202, json{{"ids", std::move(answer->ids)},
                                        {"deliveries", answer->deliveries}}));
      },
      req.idempotency_key);
}

namespace {

int status_of(const error& e) {
  if (e.code == "not_found")
    return 404;
  if (e.code == "conflict" || e.code == "managed_by_config")
    return 409;
  if (e.code == "store_unavailable" || e.code == "store_error")
    return 503;
  return 400;
}

/// The JSON body of a POST or PATCH; an empty body is `{}` when allowed.
result<json> json_body(const api_request& req, bool empty_ok) {
  if (req.body.empty() && empty_ok)
    return json::object();
  if (!is_json_content_type(req.content_type))
    return error{"unsupported_media_type",
                 "Content-Type must be application/json"};
  auto body = json::parse(req.body, nullptr, false);
  if (body.is_discarded())
    return error{"invalid_json", "the body is not valid JSON (UTF-8)"};
  if (!body.is_object())
    return error{"invalid_field", "the body must be a JSON object"};
  return body;
}

api_response body_error(const error& e) {
  return error_response(e.code == "unsupported_media_type" ? 415 : 400, e);
}

} // namespace

// GET/POST /v1/endpoints, GET/PATCH/DELETE /v1/endpoints/{id},
// POST /v1/endpoints/{id}/rotate-secret.
void api::endpoints(api_request& req, std::string_view path,
                    std::function<void(api_response)>& respond) {
  constexpr std::string_view prefix = "/v1/endpoints";
  auto rest = path.substr(prefix.size());
  auto& method = req.method;
  auto now = now_ms();
  if (rest.empty() || rest == "/") {
    if (method == "GET" || method == "HEAD") {
      auto all = log_.list_endpoints();
      if (!all) {
        log::error("endpoint read failed", {{"error", all.error().message}});
        return respond(error_response(500, store_failure));
      }
      json items = json::array();
      for (auto& [id, text] : *all) {
        auto def = from_stored_json(text);
        if (!def)
          return respond(error_response(500, def.error()));
        items.push_back(to_api_json(*def, false));
      }
      return respond(json_response(200, json{{"endpoints", std::move(items)}}));
    }
    if (method != "POST")
      return respond(error_response(
          405, {"method_not_allowed", "use GET or POST /v1/endpoints"}));
    auto body = json_body(req, false);
    if (!body)
      return respond(body_error(body.error()));
    auto def = create_endpoint(*body, opts_.rules, now);
    if (!def)
      return respond(error_response(400, def.error()));
    actors::endpoint_change change;
    change.what = actors::endpoint_change::kind::create;
    return change_endpoint(std::move(change), std::move(*def), 201, true,
                           respond);
  }
  rest.remove_prefix(1);
  auto slash = rest.find('/');
  auto id = std::string{rest.substr(0, slash)};
  auto action = slash == std::string_view::npos ? std::string_view{}
                                                : rest.substr(slash + 1);
  if (!action.empty() && action != "rotate-secret")
    return respond(error_response(
        404, {"not_found", "no such resource: " + std::string{path}}));
  auto stored = log_.get_endpoint(id);
  if (!stored) {
    log::error("endpoint read failed", {{"error", stored.error().message}});
    return respond(error_response(500, store_failure));
  }
  if (!*stored)
    return respond(error_response(404, {"not_found", "no endpoint " + id}));
  auto current = from_stored_json(**stored);
  if (!current)
    return respond(error_response(500, current.error()));
  if (action.empty() && (method == "GET" || method == "HEAD"))
    return respond(json_response(200, to_api_json(*current, false)));
  if (action.empty() ? method != "PATCH" && method != "DELETE"
                     : method != "POST")
    return respond(error_response(
        405, {"method_not_allowed",
              action.empty() ? "use GET, PATCH or DELETE /v1/endpoints/{id}"
                             : "use POST /v1/endpoints/{id}/rotate-secret"}));
  if (current->source == "config")
    return respond(error_response(
        409, {"managed_by_config",
              "endpoint " + id +
                  " is declared in the config file; change it there"}));
  actors::endpoint_change change;
  change.id = id;
  change.based_on = current->revision;
  if (method == "DELETE") {
    change.what = actors::endpoint_change::kind::remove;
    return engine_.change_endpoint(
        std::move(change), [respond = std::move(respond)](status st) {
          if (!st)
            return respond(error_response(status_of(st.error()), st.error()));
          respond(api_response{204, {}, {}});
        });
  }
  change.what = actors::endpoint_change::kind::update;
  auto body = json_body(req, !action.empty());
  if (!body)
    return respond(body_error(body.error()));
  result<endpoint_definition> next = error{};
  if (action.empty()) {
    next = patch_endpoint(std::move(*current), *body, opts_.rules, now);
  } else {
    std::optional<std::string> secret;
    auto grace = opts_.defaults.secret_grace_ms;
    for (auto& [key, v] : body->items()) {
      if (key == "secret" && v.is_string()) {
        secret = v.get<std::string>();
      } else if (key == "grace" && v.is_number() && v.get<double>() >= 0 &&
                 v.get<double>() <= 7 * 86400) {
        grace = static_cast<unix_ms>(std::llround(v.get<double>() * 1000));
      } else if (key == "secret" || key == "grace") {
        return respond(error_response(
            400, {"invalid_field",
                  key == "secret"
                      ? "secret must be a string (whsec_... or whsk_...)"
                      : "grace must be a number of seconds from 0 to 604800",
                  key}));
      } else {
        return respond(error_response(
            400, {"unknown_field", "unknown field '" + key + "'", key}));
      }
    }
    next = rotate_endpoint_secret(std::move(*current), std::move(secret), grace,
                                  now);
    change.record_kind = "endpoint.secret_rotated";
  }
  if (!next)
    return respond(error_response(400, next.error()));
  change_endpoint(std::move(change), std::move(*next), 200, !action.empty(),
                  respond);
}

void api::change_endpoint(actors::endpoint_change change,
                          endpoint_definition def, int status, bool with_secret,
                          std::function<void(api_response)>& respond) {
  auto config = runtime_config(def, opts_.defaults, opts_.rules.transports);
  if (!config)
    return respond(error_response(400, config.error()));
  change.id = def.id;
  change.config = std::move(*config);
  change.definition = to_stored_json(def);
  auto shown = to_api_json(def, with_secret);
  engine_.change_endpoint(
      std::move(change), [respond = std::move(respond), status,
                          shown = std::move(shown)](tocsin::status st) {
        if (!st)
          return respond(error_response(status_of(st.error()), st.error()));
        respond(json_response(status, shown));
      });
}

api_response api::get_event(std::string_view id) {
  if (!is_valid_id(id, "evt"))
    return error_response(404, {"not_found", "no event " + std::string{id}});
  auto ev = log_.get_event(id);
  if (!ev) {
    log::error("event read failed", {{"error", ev.error().message}});
    return error_response(500, store_failure);
  }
  if (!*ev)
    return error_response(404, {"not_found", "no event " + std::string{id}});
  auto& rec = **ev;
  json deliveries = json::array();
  for (auto& dlv_id : rec.delivery_ids) {
    auto d = log_.get_delivery(dlv_id);
    if (!d) {
      log::error("delivery read failed", {{"error", d.error().message}});
      return error_response(500, store_failure);
    }
    if (*d)
      deliveries.push_back(delivery_json(**d));
  }
  return json_response(200,
                       json{{"event", json::parse(rec.body)},
                            {"accepted_at", format_rfc3339(rec.accepted_at)},
                            {"deliveries", std::move(deliveries)}});
}

api_response api::list_dead_letters(std::string_view query) {
  std::size_t limit = 100;
  auto limit_text = query_param(query, "limit");
  if (!limit_text.empty()) {
    auto [p, ec] = std::from_chars(
        limit_text.data(), limit_text.data() + limit_text.size(), limit);
    if (ec != std::errc{} || p != limit_text.data() + limit_text.size() ||
        limit < 1 || limit > 1000)
      return error_response(400, {"invalid_field",
                                  "limit must be an integer from 1 to 1000",
                                  "limit"});
  }
  auto after = query_param(query, "after");
  auto dead = log_.list_dead_letters(after, limit);
  if (!dead) {
    log::error("dead-letter read failed", {{"error", dead.error().message}});
    return error_response(500, store_failure);
  }
  json items = json::array();
  for (auto& d : *dead)
    items.push_back(delivery_json(d));
  json body{{"dead_letters", std::move(items)}};
  if (dead->size() == limit)
    body["next_after"] = dead->back().id;
  return json_response(200, body);
}

} // namespace tocsin::app
