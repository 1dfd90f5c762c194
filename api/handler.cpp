#include "api/handler.hpp"

#include "api/dashboard.hpp"
#include "api/integrations.hpp"
#include "common/encoding.hpp"
#include "common/event_types.hpp"
#include "common/ids.hpp"
#include "common/json_parse.hpp"
#include "common/log.hpp"
#include "common/metric_families.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

#include <nlohmann/json.hpp>

namespace tocsin::api {

using namespace tocsin::endpoints;

namespace {

using json = nlohmann::ordered_json;

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
  /// Reads the store: runs on the `offload` threads.
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
       &request_handler::create_endpoint},
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

void request_handler::health(call& c) {
  c.respond(json_response(200, json{{"status", "ok"}}));
}

void request_handler::ready(call& c) {
  // Ready: events would be accepted. Not while the store refuses writes (a
  // full disk): a load balancer should send producers elsewhere.
  if (auto st = log_.writable(); !st)
    return c.respond(
        json_response(503, json{{"status", "store_unavailable"},
                                {"error",
                                 {{"code", "store_unavailable"},
                                  {"message", st.error().message}}}}));
  c.respond(json_response(200, json{{"status", "ok"}}));
}

namespace {

response asset_response(std::string_view path) {
  for (auto& a : dashboard_assets())
    if (a.path == path) {
      response r{200, std::string{a.body}, {}};
      r.headers.emplace_back("Content-Type",
                             std::string{a.content_type} + "; charset=utf-8");
      r.headers.emplace_back("X-Content-Type-Options", "nosniff");
      r.headers.emplace_back("Referrer-Policy", "no-referrer");
      r.headers.emplace_back(
          "Content-Security-Policy",
          // 'self' covers ws(s):// to this same host (CSP Level 3): the
          // stream, and nothing else.
          "default-src 'self'; connect-src 'self'; "
          "img-src 'self' data:; style-src 'self'; script-src 'self'; "
          "frame-ancestors 'none'");
      r.headers.emplace_back("Cache-Control", "no-cache");
      return r;
    }
  return error_response(404, {"not_found", "no such file"});
}

} // namespace

void request_handler::dashboard_page(call& c) {
  c.respond(asset_response("/"));
}

void request_handler::dashboard_file(call& c) {
  c.respond(asset_response("/dashboard/" + std::string{c.id}));
}

void request_handler::stream_needs_upgrade(call& c) {
  auto r = error_response(426, {"upgrade_required",
                                "GET /v1/stream is a websocket: send "
                                "Connection: Upgrade, Upgrade: websocket"});
  r.headers.emplace_back("Upgrade", "websocket");
  c.respond(std::move(r));
}

std::variant<request_handler::stream_grant, response>
request_handler::open_stream(const request& req,
                             std::string_view offered_protocols) {
  std::string_view target = req.target;
  auto qpos = target.find('?');
  auto segs = segments_of(target.substr(0, qpos));
  if (segs != std::vector<std::string_view>{"v1", "stream"} || !opts_.stream)
    return error_response(404, {"not_found", "no websocket here"});
  auto query = qpos == std::string_view::npos ? std::string_view{}
                                              : target.substr(qpos + 1);
  stream_grant grant;
  // The token: the header, else the query, else an offered subprotocol.
  std::optional<principal> who;
  auto live = settings();
  auto& auth = live->auth;
  if (!req.authorization.empty())
    who = auth.authenticate(req.authorization);
  else if (auto t = form_value(query, "token"); t && !t->empty())
    who = auth.authenticate("Bearer " + *t);
  while (!offered_protocols.empty()) {
    auto comma = offered_protocols.find(',');
    auto p = offered_protocols.substr(0, comma);
    while (!p.empty() && p.front() == ' ')
      p.remove_prefix(1);
    while (!p.empty() && p.back() == ' ')
      p.remove_suffix(1);
    if (p == "tocsin")
      grant.tocsin_protocol = true;
    else if (!who && req.authorization.empty() && !p.empty())
      who = auth.authenticate("Bearer " + std::string{p});
    if (comma == std::string_view::npos)
      break;
    offered_protocols.remove_prefix(comma + 1);
  }
  if (!who)
    return error_response(401,
                          {"unauthorized", "missing or invalid bearer token"});
  if (who->r != role::admin && who->r != role::read)
    return error_response(403,
                          {"forbidden", "this token's role may not do that"});
  auto filter = parse_stream_query(query);
  if (!filter)
    return error_response(400, filter.error());
  grant.filter = std::move(*filter);
  return grant;
}

void request_handler::get_cluster(call& c) {
  json nodes = json::array();
  if (auto* cluster = log_.cluster()) {
    // The nodes sharing the store and the leases they hold, as the
    // database sees them.
    auto all = cluster->nodes(opts_.lease_ttl);
    if (!all) {
      log::error("cluster read failed", {{"error", all.error().message}});
      return c.respond(error_response(
          503, all.error().code == "store_unavailable" ? all.error()
                                                       : store_failure));
    }
    for (auto& n : *all) {
      json endpoints = json::array();
      bool escalation = false;
      for (auto& lease : n.leases) {
        if (lease == storage::escalation_lease)
          escalation = true;
        else
          endpoints.push_back(lease);
      }
      json node{{"id", n.id},
                {"listen", n.listen},
                {"heartbeat_at", format_rfc3339(n.heartbeat_at)},
                {"alive", n.alive},
                {"endpoints", std::move(endpoints)}};
      if (escalation)
        node["escalation"] = true;
      nodes.push_back(std::move(node));
    }
  } else {
    // Alone: every endpoint is this node's.
    auto all = log_.list_endpoints();
    if (!all) {
      log::error("endpoint read failed", {{"error", all.error().message}});
      return c.respond(error_response(503, store_failure));
    }
    json endpoints = json::array();
    for (auto& [id, text] : *all)
      endpoints.push_back(id);
    nodes.push_back(json{{"id", opts_.node_id},
                         {"listen", opts_.listen ? opts_.listen() : ""},
                         {"heartbeat_at", format_rfc3339(now_ms())},
                         {"alive", true},
                         {"endpoints", std::move(endpoints)}});
  }
  c.respond(json_response(
      200,
      json{{"node", opts_.node_id},
           {"backend", opts_.backend == storage::backend::postgres ? "postgres"
                                                                   : "rocksdb"},
           {"nodes", std::move(nodes)}}));
}

void request_handler::metrics(call& c) {
  response r{200, metrics::global().render(), {}};
  r.headers.emplace_back("Content-Type", "text/plain; version=0.0.4");
  c.respond(std::move(r));
}

void request_handler::post_events(call& c) {
  auto& req = c.req;
  static auto& ingest_time = metrics::families::ingest_duration().with();
  auto started = std::chrono::steady_clock::now();
  if (!is_json_content_type(req.content_type))
    return c.respond(
        error_response(415, {"unsupported_media_type",
                             "Content-Type must be application/json"}));
  auto& key = req.idempotency_key;
  if (!key.empty() && !is_valid_idempotency_key(key))
    return c.respond(error_response(
        400, {"invalid_field",
              "Idempotency-Key must be 1 to 256 printable ASCII characters "
              "without spaces",
              "Idempotency-Key"}));
  // Back-pressure before any work: past the queue bounds the producer is
  // told to come back, instead of every request waiting longer.
  auto bytes = req.body.size();
  auto requests_before = queued_requests_.fetch_add(1);
  auto bytes_before = queued_bytes_.fetch_add(bytes);
  auto release = [this, bytes] {
    queued_requests_.fetch_sub(1);
    queued_bytes_.fetch_sub(bytes);
  };
  if (requests_before >= opts_.max_queued_requests ||
      bytes_before + bytes > opts_.max_queued_bytes) {
    release();
    return c.respond(error_response(
        503, {"overloaded", "too many requests are waiting to be stored; "
                            "retry after the time in Retry-After"}));
  }
  validation_options vopts{opts_.audit_url_template, now_ms(),
                           opts_.max_payload_bytes, !key.empty(),
                           opts_.allow_producer_links};
  auto batch = validate_events(req.body, vopts);
  if (!batch) {
    release();
    return c.respond(error_response(400, batch.error()));
  }
  batch->idempotency_key = key;
  batch->idempotency_scope = c.who.scope;
  engine_.ingest(
      std::move(*batch), [respond = std::move(c.respond), release,
                          started](result<delivery::ingest_answer> answer) {
        release();
        if (!answer)
          return respond(error_response(
              answer.error().code == "idempotency_key_reused" ? 422 : 503,
              answer.error()));
        ingest_time.observe(std::chrono::duration<double>(
                                std::chrono::steady_clock::now() - started)
                                .count());
        respond(json_response(202, json{{"ids", std::move(answer->ids)},
                                        {"deliveries", answer->deliveries}}));
      });
}

void request_handler::get_event(call& c) {
  auto id = c.id;
  if (!is_valid_id(id, "evt"))
    return c.respond(
        error_response(404, {"not_found", "no event " + std::string{id}}));
  auto ev = log_.get_event(id);
  if (!ev) {
    log::error("event read failed", {{"error", ev.error().message}});
    return c.respond(error_response(500, store_failure));
  }
  if (!*ev) {
    // Made before what retention has removed: it was kept its time and is
    // gone, which a client should be able to tell from a wrong id.
    if (auto made = time_of_id(id, "evt");
        made && *made < log_.expired_before())
      return c.respond(
          error_response(404, {"event_expired",
                               "event " + std::string{id} +
                                   " was removed: finished events are kept for "
                                   "delivery.retention"}));
    return c.respond(
        error_response(404, {"not_found", "no event " + std::string{id}}));
  }
  auto& rec = **ev;
  json deliveries = json::array();
  for (auto& dlv_id : rec.delivery_ids) {
    auto d = log_.get_delivery(dlv_id);
    if (!d) {
      log::error("delivery read failed", {{"error", d.error().message}});
      return c.respond(error_response(500, store_failure));
    }
    if (*d)
      deliveries.push_back(delivery_json(**d));
  }
  json body;
  if (!parse_json(rec.body, body, nullptr, stored_json_limits)) {
    log::error("stored event unreadable", {{"event", std::string{id}}});
    return c.respond(error_response(500, store_failure));
  }
  json answer{{"event", std::move(body)},
              {"accepted_at", format_rfc3339(rec.accepted_at)}};
  add_answers(answer, rec.state(), rec.answers);
  answer["deliveries"] = std::move(deliveries);
  c.respond(json_response(200, answer));
}

namespace {

/// The most events one page of GET /v1/events holds, and how many it holds
/// when the client does not say.
constexpr std::size_t max_events_per_page = 500;
constexpr std::size_t default_events_per_page = 50;

/// A page's `next_cursor`: where the store stopped, base64url-encoded so
/// that clients pass it back as it is instead of building their own (what
/// it holds may change).
std::string cursor_of(std::string_view event_id) {
  auto text = base64_encode(event_id);
  while (!text.empty() && text.back() == '=')
    text.pop_back();
  for (auto& ch : text)
    ch = ch == '+' ? '-' : ch == '/' ? '_' : ch;
  return text;
}

/// The event id a cursor of cursor_of() holds; nothing for anything else.
std::optional<std::string> event_id_of_cursor(std::string_view cursor) {
  if (cursor.size() > 128)
    return std::nullopt;
  std::string text{cursor};
  for (auto& ch : text) {
    if (ch == '+' || ch == '/' || ch == '=')
      return std::nullopt; // the standard alphabet: not one of ours
    ch = ch == '-' ? '+' : ch == '_' ? '/' : ch;
  }
  while (text.size() % 4 != 0)
    text += '=';
  auto id = base64_decode(text);
  if (!id || !is_valid_id(*id, "evt"))
    return std::nullopt;
  return id;
}

/// The filters and page of GET /v1/events from its query string; errors
/// name the parameter.
result<storage::event_query> event_query_of(std::string_view query) {
  storage::event_query q;
  q.limit = default_events_per_page;
  auto bad = [](const char* field, std::string message) {
    return error{"invalid_field", std::move(message), field};
  };
  auto given = [&](const char* key) {
    auto v = form_value(query, key);
    return v && !v->empty() ? v : std::nullopt;
  };
  if (auto v = given("limit")) {
    std::size_t n = 0;
    auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
    if (ec != std::errc{} || p != v->data() + v->size() || n < 1 ||
        n > max_events_per_page)
      return bad("limit", "limit must be an integer from 1 to " +
                              std::to_string(max_events_per_page));
    q.limit = n;
  }
  if (auto v = given("state")) {
    auto st = storage::event_state_from(*v);
    if (!st)
      return bad("state", "state must be one of open, acknowledged, resolved");
    q.state = *st;
  }
  if (auto v = given("type")) {
    if (!is_event_type(*v))
      return bad("type",
                 "type must be one of policy.denied, approval.required, "
                 "content.detected, anomaly.detected, system.health");
    q.type = std::move(*v);
  }
  if (auto v = given("severity")) {
    if (!severity_rank(*v))
      return bad("severity",
                 "severity must be one of info, low, medium, high, critical");
    q.severity = std::move(*v);
  }
  if (auto v = given("agent_id")) {
    if (v->size() > 256 || !is_valid_utf8(*v))
      return bad("agent_id", "agent_id must be 1 to 256 bytes of UTF-8");
    q.agent_id = std::move(*v);
  }
  auto since = given("since");
  if (since) {
    auto t = parse_rfc3339(*since);
    if (!t)
      return bad("since", "since must be RFC 3339");
    q.since = *t;
  }
  if (auto v = given("until")) {
    auto t = parse_rfc3339(*v);
    if (!t)
      return bad("until", "until must be RFC 3339");
    if (since && *t <= q.since)
      return bad("until", "until must be later than since");
    q.until = *t;
  }
  if (auto v = given("cursor")) {
    auto id = event_id_of_cursor(*v);
    if (!id)
      return bad("cursor", "cursor must be a next_cursor of GET /v1/events");
    q.before = std::move(*id);
  }
  return q;
}

/// One event of a listing: its fields, when it was accepted, its state and
/// its answers.
json event_item_json(const storage::event_record& e) {
  auto f = storage::fields_of_event(e);
  json j{{"id", e.id},
         {"type", f.type},
         {"severity", f.severity},
         {"agent_id", f.agent_id.empty() ? json(nullptr) : json(f.agent_id)},
         {"summary", f.summary},
         {"timestamp", f.timestamp},
         {"accepted_at", format_rfc3339(e.accepted_at)}};
  add_answers(j, e.state(), e.answers);
  return j;
}

} // namespace

void request_handler::list_events(call& c) {
  auto q = event_query_of(c.query);
  if (!q)
    return c.respond(error_response(400, q.error()));
  auto page = log_.list_events(*q);
  if (!page) {
    log::error("event listing failed", {{"error", page.error().message}});
    return c.respond(error_response(500, store_failure));
  }
  json items = json::array();
  for (auto& e : page->events)
    items.push_back(event_item_json(e));
  json body{{"events", std::move(items)},
            {"next_cursor",
             page->next ? json(cursor_of(*page->next)) : json(nullptr)}};
  c.respond(json_response(200, body));
}

void request_handler::acknowledge_event(call& c) {
  answer_event(c, storage::event_state::acknowledged);
}

void request_handler::resolve_event(call& c) {
  answer_event(c, storage::event_state::resolved);
}

namespace {

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

} // namespace

void request_handler::answer_event(call& c, storage::event_state state) {
  auto id = std::string{c.id};
  if (!is_valid_id(id, "evt"))
    return c.respond(error_response(404, {"not_found", "no event " + id}));
  auto body = json_body(c.req, true);
  if (!body)
    return c.respond(body_error(body.error()));
  delivery::answer_request req;
  req.event_id = id;
  req.state = state;
  req.source = "api";
  req.by = c.who.name.empty() ? c.who.scope : c.who.name;
  for (auto& [key, value] : body->items()) {
    auto limit = key == "by" ? 200u : key == "note" ? 1000u : 0u;
    if (limit == 0)
      return c.respond(error_response(
          400, {"unknown_field", "unknown field '" + key + "'", key}));
    if (!value.is_string() || value.get_ref<const std::string&>().empty() ||
        value.get_ref<const std::string&>().size() > limit ||
        !is_valid_utf8(value.get_ref<const std::string&>()))
      return c.respond(
          error_response(400, {"invalid_field",
                               "'" + key + "' must be a string of 1 to " +
                                   std::to_string(limit) + " bytes",
                               key}));
    // Shown to people (Slack, PagerDuty, the dashboard): no text that reads
    // other than it was sent; a note may have lines and tabs.
    if (auto why =
            deceptive_text(value.get_ref<const std::string&>(), key == "note"))
      return c.respond(error_response(
          400,
          {"invalid_field", "'" + key + "' must not contain a " + *why, key}));
    (key == "by" ? req.by : req.note) = value.get<std::string>();
  }
  engine_.answer(std::move(req), [respond = std::move(c.respond)](
                                     result<delivery::answer_outcome> out) {
    if (!out)
      return respond(error_response(answer_status(out.error()), out.error()));
    respond(json_response(200, outcome_json(*out)));
  });
}

void request_handler::slack_interaction(call& c) {
  auto live = settings();
  auto& secret = live->slack_signing_secret;
  if (secret.empty())
    return c.respond(error_response(
        404, {"not_found", "Slack interactions are not enabled (set "
                           "slack.signing_secret)"}));
  auto& req = c.req;
  if (auto ok =
          verify_slack_request(secret, req.slack_timestamp, req.slack_signature,
                               req.body, opts_.clock());
      !ok) {
    log::warn("Slack interaction refused", {{"reason", ok.error().message}});
    return c.respond(error_response(401, ok.error()));
  }
  auto clicks =
      parse_slack_interaction(req.body, live->slack_response_url_hosts);
  if (!clicks)
    return c.respond(error_response(400, clicks.error()));
  // Slack wants its answer within 3 s: it gets it now, and the
  // acknowledgement is recorded (and the message replaced) after.
  c.respond(response{200, "", {}});
  for (auto& click : *clicks) {
    delivery::answer_request a;
    a.event_id = click.event_id;
    a.state = click.state;
    a.by = click.user;
    a.source = "slack";
    a.reply_url = click.response_url;
    a.reply_transport = "slack";
    a.clicked_channel = click.channel;
    a.clicked_ts = click.message_ts;
    a.only_if_sent_by = "slack";
    engine_.answer(std::move(a), [event = click.event_id](
                                     result<delivery::answer_outcome> out) {
      if (!out && out.error().code == "not_sent_there") {
        metrics::families::answers_ignored().with({"slack"}).add();
        return log::warn("Slack click about an event never sent to Slack "
                         "ignored",
                         {{"event", event}});
      }
      if (!out)
        return log::warn("Slack answer not recorded",
                         {{"event", event}, {"error", out.error().message}});
      if (!out->events.at(0).changed)
        log::info("Slack answer to an event already in that state",
                  {{"event", event},
                   {"state",
                    std::string{storage::to_string(out->events.at(0).state)}}});
    });
  }
}

void request_handler::pagerduty_webhook(call& c) {
  auto live = settings();
  auto& secret = live->pagerduty_webhook_secret;
  if (secret.empty())
    return c.respond(error_response(
        404, {"not_found", "PagerDuty webhooks are not enabled (set "
                           "pagerduty.webhook_secret)"}));
  auto& req = c.req;
  if (auto ok =
          verify_pagerduty_request(secret, req.pagerduty_signature, req.body);
      !ok) {
    log::warn("PagerDuty webhook refused", {{"reason", ok.error().message}});
    return c.respond(error_response(401, ok.error()));
  }
  auto changes = parse_pagerduty_webhook(req.body);
  if (!changes)
    return c.respond(error_response(400, changes.error()));
  if (changes->empty())
    return c.respond(json_response(200, json{{"recorded", 0}}));
  // Answered once recorded: PagerDuty retries a webhook that failed.
  auto change = std::move(changes->front());
  delivery::answer_request a;
  a.event_id = change.event_id;
  a.state = change.state;
  a.by = change.by;
  a.source = "pagerduty";
  a.only_if_sent_by = "pagerduty";
  engine_.answer(
      std::move(a), [respond = std::move(c.respond), event = change.event_id](
                        result<delivery::answer_outcome> out) {
        if (!out && out.error().code == "not_sent_there") {
          // Signed by PagerDuty, about an incident tocsin never opened: nothing
          // to retry, nothing changed.
          metrics::families::answers_ignored().with({"pagerduty"}).add();
          log::warn("PagerDuty webhook about an event never sent to PagerDuty "
                    "ignored",
                    {{"event", event}});
          return respond(json_response(200, json{{"recorded", 0}}));
        }
        if (!out) {
          // An incident of an event tocsin no longer has: nothing to retry.
          if (answer_status(out.error()) == 404)
            return respond(json_response(200, json{{"recorded", 0}}));
          return respond(error_response(503, out.error()));
        }
        respond(json_response(
            200, json{{"recorded", 1}, {"event", outcome_json(*out)}}));
      });
}

void request_handler::list_dead_letters(call& c) {
  std::size_t limit = 100;
  auto limit_text = query_param(c.query, "limit");
  if (!limit_text.empty()) {
    auto [p, ec] = std::from_chars(
        limit_text.data(), limit_text.data() + limit_text.size(), limit);
    if (ec != std::errc{} || p != limit_text.data() + limit_text.size() ||
        limit < 1 || limit > 1000)
      return c.respond(error_response(
          400, {"invalid_field", "limit must be an integer from 1 to 1000",
                "limit"}));
  }
  auto after = query_param(c.query, "after");
  auto dead = log_.list_dead_letters(after, limit);
  if (!dead) {
    log::error("dead-letter read failed", {{"error", dead.error().message}});
    return c.respond(error_response(500, store_failure));
  }
  json items = json::array();
  for (auto& d : *dead)
    items.push_back(delivery_json(d));
  json body{{"dead_letters", std::move(items)}};
  if (dead->size() == limit)
    body["next_after"] = dead->back().id;
  c.respond(json_response(200, body));
}

void request_handler::replay_dead_letter(call& c) {
  delivery::replay_selection sel;
  sel.delivery_ids.emplace_back(c.id);
  replay(std::move(sel), c);
}

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

void request_handler::replay(delivery::replay_selection sel, call& c) {
  auto limit = sel.limit;
  engine_.replay(std::move(sel), [respond = std::move(c.respond),
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
  change_endpoint(std::move(change), std::move(*def), 201, true, c);
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
  auto next = endpoints::patch_endpoint(std::move(*current), *body, opts_.rules,
                                        now_ms());
  if (!next)
    return c.respond(error_response(400, next.error()));
  change_endpoint(std::move(change), std::move(*next), 200, false, c);
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
                                      bool with_secret, call& c) {
  auto config = runtime_config(def, opts_.defaults, opts_.rules.transports);
  if (!config)
    return c.respond(error_response(400, config.error()));
  change.id = def.id;
  change.config = std::move(*config);
  change.definition = to_stored_json(def);
  // What it is doing as of the change (an update keeps its actor).
  auto shown = live(to_api_json(def, with_secret, opts_.rules.transports));
  engine_.change_endpoint(
      std::move(change), [respond = std::move(c.respond), status,
                          shown = std::move(shown)](tocsin::status st) {
        if (!st)
          return respond(error_response(status_of(st.error()), st.error()));
        respond(json_response(status, shown));
      });
}

} // namespace tocsin::api
