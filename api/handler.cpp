// The router: the route table, who may call each route, and the dispatch
// to the route units (api/routes/*.cpp, one per resource); and the helpers
// those units share (api/routes/shared.hpp).
#include "api/handler.hpp"

#include "api/integrations.hpp"
#include "api/routes/shared.hpp"
#include "common/encoding.hpp"
#include "common/json_parse.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

namespace tocsin::api {

namespace shared {

response json_response(int status, const json& body) {
  return response{
      status, body.dump(-1, ' ', false, json::error_handler_t::replace), {}};
}

/// "a=1&b=2" -> value of `key` (decoded), or empty.
std::string query_param(std::string_view query, std::string_view key) {
  return form_value(query, key).value_or(std::string{});
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
  // The cluster node that made it (nothing on a node alone).
  if (!a.node.empty())
    j["node"] = a.node;
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
  // A notice tells its endpoint the event was acknowledged or resolved.
  if (d.news.state != storage::event_state::open)
    j["notice"] = storage::to_string(d.news.state);
  // What the receiver made of it (a Slack app's channel and ts), as its
  // transport said; the host checked it is a small JSON object.
  if (json receipt;
      !d.receipt.empty() &&
      parse_json(d.receipt, receipt, nullptr, stored_json_limits) &&
      receipt.is_object())
    j["receipt"] = std::move(receipt);
  return j;
}

json answer_json(const storage::event_answer& a) {
  json j{{"by", a.by}, {"source", a.source}, {"at", format_rfc3339(a.at)}};
  if (!a.note.empty())
    j["note"] = a.note;
  // Answered along with another event (an escalation and its members).
  if (!a.via.empty())
    j["via"] = a.via;
  return j;
}

/// "state" and, once answered, "acknowledged" and "resolved" (who, when,
/// from where) of an event.
void add_answers(json& j, storage::event_state state,
                 const std::vector<storage::event_answer>& answers) {
  j["state"] = storage::to_string(state);
  for (auto& a : answers)
    j[std::string{storage::to_string(a.state)}] = answer_json(a);
}

const error store_failure{"store_error", "the event store could not be read"};

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
result<json> json_body(const request& req, bool empty_ok) {
  if (req.body.empty() && empty_ok)
    return json::object();
  if (!is_json_content_type(req.content_type))
    return error{"unsupported_media_type",
                 "Content-Type must be application/json"};
  json body;
  std::string why;
  if (!parse_json(req.body, body, &why))
    return error{"invalid_json", "the body is not valid JSON: " + why};
  if (!body.is_object())
    return error{"invalid_field", "the body must be a JSON object"};
  return body;
}

response body_error(const error& e) {
  return error_response(e.code == "unsupported_media_type" ? 415 : 400, e);
}

/// The path's segments: "/v1/endpoints/ops" -> {"v1", "endpoints", "ops"}.
/// One trailing slash is ignored; an empty segment never matches a route.
std::vector<std::string_view> segments_of(std::string_view path) {
  std::vector<std::string_view> out;
  if (path.empty() || path.front() != '/')
    return out;
  path.remove_prefix(1);
  if (!path.empty() && path.back() == '/')
    path.remove_suffix(1);
  while (!path.empty() || out.empty()) {
    auto slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos)
      break;
    path.remove_prefix(slash + 1);
    if (path.empty())
      out.emplace_back(); // "a//" and the like: an empty last segment
  }
  return out;
}

/// What the engine answered, as the API shows it: the event, and the events
/// of its escalation episode that were answered with it.
json outcome_json(const delivery::answer_outcome& out) {
  auto one = [](const delivery::answered_event& e) {
    json j{{"id", e.event_id}};
    add_answers(j, e.state, e.answers);
    j["changed"] = e.changed;
    j["notices"] = e.notices;
    return j;
  };
  json j = one(out.events.at(0));
  if (out.events.size() > 1) {
    json also = json::array();
    for (std::size_t i = 1; i < out.events.size(); ++i)
      also.push_back(one(out.events[i]));
    j["episode"] = std::move(also);
  }
  return j;
}

int answer_status(const error& e) {
  return e.code == "not_found" || e.code == "event_expired" ? 404 : 503;
}

} // namespace shared

using namespace shared;

namespace {

enum class need { nobody, ingest, read, admin };

} // namespace

response error_response(int status, const error& e) {
  json err{{"code", e.code}, {"message", e.message}};
  if (!e.field.empty())
    err["field"] = e.field;
  auto resp = json_response(status, json{{"error", std::move(err)}});
  if (status == 503)
    resp.headers.emplace_back("Retry-After", "1");
  return resp;
}

/// One route: a path pattern ("{id}" matches any one segment; "/" alone is
/// the root), a method
/// (GET also serves HEAD), who may call it, and its handler.
struct request_handler::route {
  std::vector<std::string_view> pattern;
  std::string_view method;
  need role;
  void (request_handler::*handler)(call&);
  /// Blocks (reads the store, or resolves an endpoint's host): runs on
  /// the `offload` threads.
  bool reads_store = false;

  /// Whether `segs` fits the pattern; the {id} segment goes to `id`.
  bool matches(const std::vector<std::string_view>& segs,
               std::string_view& id) const {
    if (pattern.size() == 1 && pattern[0] == "/") // the root itself
      return segs.size() == 1 && segs[0].empty();
    if (segs.size() != pattern.size())
      return false;
    for (std::size_t i = 0; i < segs.size(); ++i) {
      if (segs[i].empty())
        return false;
      if (pattern[i] == "{id}")
        id = segs[i];
      else if (pattern[i] != segs[i])
        return false;
    }
    return true;
  }
};

const std::vector<request_handler::route>& request_handler::routes() {
  static const std::vector<route> all{
      // The dashboard: the page holds no data (it asks for a token).
      {{"/"}, "GET", need::nobody, &request_handler::dashboard_page},
      {{"dashboard", "{id}"},
       "GET",
       need::nobody,
       &request_handler::dashboard_file},
      {{"healthz"}, "GET", need::nobody, &request_handler::health},
      {{"v1", "openapi.json"},
       "GET",
       need::nobody,
       &request_handler::openapi_description},
      {{"readyz"}, "GET", need::nobody, &request_handler::ready, true},
      {{"metrics"}, "GET", need::read, &request_handler::metrics, true},
      {{"v1", "cluster"},
       "GET",
       need::read,
       &request_handler::get_cluster,
       true},
      {{"v1", "stream"},
       "GET",
       need::read,
       &request_handler::stream_needs_upgrade},
      {{"v1", "events"}, "POST", need::ingest, &request_handler::post_events},
      {{"v1", "events"},
       "GET",
       need::read,
       &request_handler::list_events,
       true},
      {{"v1", "events", "{id}"},
       "GET",
       need::read,
       &request_handler::get_event,
       true},
      {{"v1", "events", "{id}", "ack"},
       "POST",
       need::admin,
       &request_handler::acknowledge_event},
      {{"v1", "events", "{id}", "resolve"},
       "POST",
       need::admin,
       &request_handler::resolve_event},
      // Authenticated by the sender's signature: Slack and PagerDuty cannot
      // send a bearer token.
      {{"v1", "integrations", "slack", "interactions"},
       "POST",
       need::nobody,
       &request_handler::slack_interaction},
      {{"v1", "integrations", "pagerduty", "webhook"},
       "POST",
       need::nobody,
       &request_handler::pagerduty_webhook},
      {{"v1", "dead-letters"},
       "GET",
       need::read,
       &request_handler::list_dead_letters,
       true},
      {{"v1", "dead-letters", "{id}", "replay"},
       "POST",
       need::admin,
       &request_handler::replay_dead_letter},
      {{"v1", "endpoints"},
       "GET",
       need::read,
       &request_handler::list_endpoints,
       true},
      {{"v1", "endpoints"},
       "POST",
       need::admin,
       &request_handler::create_endpoint,
       true},
      {{"v1", "endpoints", "{id}"},
       "GET",
       need::read,
       &request_handler::get_endpoint,
       true},
      {{"v1", "endpoints", "{id}"},
       "PATCH",
       need::admin,
       &request_handler::patch_endpoint,
       true},
      {{"v1", "endpoints", "{id}"},
       "DELETE",
       need::admin,
       &request_handler::delete_endpoint,
       true},
      {{"v1", "endpoints", "{id}", "rotate-secret"},
       "POST",
       need::admin,
       &request_handler::rotate_secret,
       true},
      {{"v1", "endpoints", "{id}", "replay"},
       "POST",
       need::admin,
       &request_handler::replay_endpoint},
  };
  return all;
}

std::vector<request_handler::route_info> request_handler::route_table() {
  std::vector<route_info> out;
  for (auto& r : routes()) {
    std::string path;
    if (r.pattern.size() == 1 && r.pattern[0] == "/")
      path = "/";
    else
      for (auto seg : r.pattern)
        path.append("/").append(seg);
    out.push_back({std::string{r.method}, std::move(path)});
  }
  return out;
}

request_handler::request_handler(actors::engine& engine, storage::store& log,
                                 authenticator auth, handler_options opts)
    : engine_(engine), log_(log), opts_(std::move(opts)),
      settings_(std::make_shared<const live_settings>(live_settings{
          std::move(auth), opts_.slack_signing_secret,
          opts_.slack_response_url_hosts, opts_.pagerduty_webhook_secret})) {}

void request_handler::reload(live_settings settings) {
  settings_.store(std::make_shared<const live_settings>(std::move(settings)));
}

/// A request and its answer, kept alive while a handler runs elsewhere.
struct request_handler::context {
  request req;
  std::function<void(response)> respond;
};

const request_handler::route*
request_handler::find_route(std::string_view method,
                            const std::vector<std::string_view>& segs,
                            std::string_view& id, std::string& allowed) {
  for (auto& r : routes()) {
    std::string_view matched;
    if (!r.matches(segs, matched))
      continue;
    if (method == r.method || (r.method == "GET" && method == "HEAD")) {
      id = matched;
      return &r;
    }
    allowed += (allowed.empty() ? "" : ", ") + std::string{r.method};
  }
  return nullptr;
}

std::variant<principal, response>
request_handler::authorize(const route& r,
                           std::string_view authorization) const {
  bool open = r.role == need::nobody ||
              (opts_.public_metrics && r.handler == &request_handler::metrics);
  if (open)
    return principal{};
  auto p = settings()->auth.authenticate(authorization);
  if (!p)
    return error_response(401,
                          {"unauthorized", "missing or invalid bearer token"});
  bool ok = p->r == role::admin ||
            (r.role == need::ingest && p->r == role::ingest) ||
            (r.role == need::read && p->r == role::read);
  if (!ok)
    return error_response(403,
                          {"forbidden", "this token's role may not do that"});
  return std::move(*p);
}

response request_handler::no_route(std::string_view path,
                                   const std::string& allowed) {
  if (!allowed.empty())
    return error_response(405, {"method_not_allowed",
                                "use " + allowed + " " + std::string{path}});
  return error_response(
      404, {"not_found", "no such resource: " + std::string{path}});
}

void request_handler::handle(request req,
                             std::function<void(response)> respond) {
  auto ctx =
      std::make_shared<context>(context{std::move(req), std::move(respond)});
  std::string_view target = ctx->req.target;
  auto qpos = target.find('?');
  auto path = target.substr(0, qpos);
  auto query = qpos == std::string_view::npos ? std::string_view{}
                                              : target.substr(qpos + 1);
  auto segs = segments_of(path);
  std::string allowed; // methods of the routes the path matches
  std::string_view id;
  auto* r = find_route(ctx->req.method, segs, id, allowed);
  if (!r)
    return ctx->respond(no_route(path, allowed));
  auto who = authorize(*r, ctx->req.authorization);
  if (auto* refused = std::get_if<response>(&who))
    return ctx->respond(std::move(*refused));
  auto run = [this, ctx, query, id, who = std::get<principal>(std::move(who)),
              r]() mutable {
    call c{ctx->req, query, id, std::move(who), ctx->respond};
    (this->*r->handler)(c);
  };
  if (r->reads_store && opts_.offload)
    return opts_.offload(std::move(run));
  run();
}

head_verdict
request_handler::check_head(const request& head,
                            std::optional<std::uint64_t> content_length) const {
  std::string_view target = head.target;
  auto path = target.substr(0, target.find('?'));
  std::string allowed;
  std::string_view id;
  auto* r = find_route(head.method, segments_of(path), id, allowed);
  if (!r)
    return {no_route(path, allowed)};
  if (auto who = authorize(*r, head.authorization);
      auto* refused = std::get_if<response>(&who))
    return {std::move(*refused)};
  auto limit = opts_.max_body_bytes;
  // Not logged (a flood would flood the log): counted in /metrics by the
  // server.
  auto refuse = [](const error& e) {
    return head_verdict{error_response(401, e)};
  };
  auto live = settings();
  if (r->handler == &request_handler::slack_interaction) {
    if (live->slack_signing_secret.empty())
      return {error_response(404, {"not_found", "Slack interactions are not "
                                                "enabled (set "
                                                "slack.signing_secret)"})};
    if (auto ok = check_slack_headers(head.slack_timestamp,
                                      head.slack_signature, opts_.clock());
        !ok)
      return refuse(ok.error());
    limit = std::min(limit, integration_max_body_bytes);
  } else if (r->handler == &request_handler::pagerduty_webhook) {
    if (live->pagerduty_webhook_secret.empty())
      return {error_response(404, {"not_found", "PagerDuty webhooks are not "
                                                "enabled (set "
                                                "pagerduty.webhook_secret)"})};
    if (auto ok = check_pagerduty_headers(head.pagerduty_signature); !ok)
      return refuse(ok.error());
    limit = std::min(limit, integration_max_body_bytes);
  }
  if (content_length && *content_length > limit)
    return {error_response(
        413, {"payload_too_large",
              "the body exceeds " + std::to_string(limit) + " bytes"})};
  return {std::nullopt, limit};
}

} // namespace tocsin::api
