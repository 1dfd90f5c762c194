// The HTTP API as plain functions of a request: routing, auth, validation and
// the JSON answers of DESIGN.md. No sockets here (see server).
#pragma once

#include "actors/engine.hpp"
#include "api/auth.hpp"
#include "api/event_validation.hpp"
#include "api/stream.hpp"
#include "common/defaults.hpp"
#include "endpoints/definition.hpp"
#include "net/address_policy.hpp"
#include "storage/store.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace tocsin::api {

struct request {
  std::string method;
  std::string target; ///< path and query
  std::string content_type;
  std::string authorization;
  std::string idempotency_key; ///< Idempotency-Key header
  std::string body;
  // The integrations' signature headers (see api/integrations.hpp).
  std::string slack_signature = {};     ///< X-Slack-Signature
  std::string slack_timestamp = {};     ///< X-Slack-Request-Timestamp
  std::string pagerduty_signature = {}; ///< X-PagerDuty-Signature
  std::string if_none_match = {};       ///< If-None-Match
};

struct response {
  int status = 200;
  std::string body; ///< JSON
  std::vector<std::pair<std::string, std::string>> headers;
};

/// {"error": {"code", "message", "field"}} with `status`. A 503 says the
/// refusal passes by itself (overloaded, the store out of reach): it carries
/// Retry-After: 1, for clients to come back rather than give up.
response error_response(int status, const error& e);

struct handler_options {
  std::string audit_url_template;
  /// Producers may set links.audit (server.allow_producer_links).
  bool allow_producer_links = false;
  std::size_t max_payload_bytes = defaults::max_payload_bytes;
  endpoints::endpoint_defaults defaults = {};
  endpoints::endpoint_rules rules = {};
  /// Back-pressure: requests (and their bytes) handed to the engine and not
  /// yet answered; past either, POST /v1/events answers 503 + Retry-After.
  std::size_t max_queued_requests = 4096;
  std::size_t max_queued_bytes = 64 << 20;
  /// Where routes that read the store run, so that a slow disk never holds
  /// up the HTTP I/O threads. Unset: on the caller's thread (tests).
  std::function<void(std::function<void()>)> offload = {};
  /// Enable POST /v1/integrations/slack/interactions and
  /// /v1/integrations/pagerduty/webhook (404 while empty).
  std::string slack_signing_secret = {};
  std::string pagerduty_webhook_secret = {};
  /// The hosts a Slack click's response_url may name
  /// (slack.response_url_hosts).
  std::vector<std::string> slack_response_url_hosts = {"hooks.slack.com"};
  /// GET /v1/stream's hub; none: the stream is off (404).
  stream_hub* stream = nullptr;
  /// GET /metrics without a token (server.public_metrics).
  bool public_metrics = false;
  /// The time the integrations' signatures are checked against.
  std::function<unix_ms()> clock = now_ms;
  /// The largest body of a route (server.max_body_bytes); the integration
  /// routes take at most integration_max_body_bytes (64 KiB) of it.
  std::size_t max_body_bytes = defaults::max_body_bytes;
  /// GET /v1/cluster: this node's id (app::node_id_of), which store it runs
  /// on, and how long a heartbeat lasts (a node is alive while its last one
  /// is younger).
  std::string node_id = {};
  storage::backend backend = storage::backend::rocksdb;
  std::chrono::milliseconds lease_ttl{10000};
  /// The address the API listens on (the port it was given once bound):
  /// what GET /v1/cluster shows for this node alone, with RocksDB. Unset:
  /// empty.
  std::function<std::string()> listen = {};
  /// What each endpoint delivering on this node is doing (its in-flight
  /// limit): shown in GET /v1/endpoints. None: null there.
  std::shared_ptr<const endpoint_board> board = {};
  /// The SSRF guard deliveries go through (delivery.allow_networks): an
  /// endpoint whose URL it would refuse on every address is refused at
  /// POST/PATCH (422 forbidden_address); one whose host does not resolve
  /// is taken with a warning. None: not checked.
  std::optional<net::address_policy> addresses = {};
};

/// What a reload of the config file (SIGHUP) changes while requests are
/// answered: the tokens and the integrations' secrets. Each request reads
/// one snapshot of them.
struct live_settings {
  authenticator auth{{}};
  std::string slack_signing_secret = {};
  std::vector<std::string> slack_response_url_hosts = {};
  std::string pagerduty_webhook_secret = {};
};

/// What the head of a request that announces a body may do (check_head).
struct head_verdict {
  /// The answer to give at once, without reading a byte of the body.
  std::optional<response> refusal;
  /// Otherwise: the most the route takes (for a chunked body as it comes).
  std::size_t body_limit = 0;
};

class request_handler {
public:
  request_handler(actors::engine& engine, storage::store& log,
                  authenticator auth, handler_options opts);

  /// Handles one request; `respond` runs exactly once, possibly later and on
  /// another thread (POST /v1/events answers once the events are durable).
  void handle(request req, std::function<void(response)> respond);

  /// Checks a request from its head alone (`head.body` is not read yet),
  /// before any of its body is read: the route (404, 405), the bearer token
  /// and its role (401, 403) or, on the integration routes, that they are
  /// enabled (404) and the signature headers are there and Slack's
  /// timestamp fresh (401), then `content_length` against the route's body
  /// limit (413). handle() checks all of it again (and the signatures over
  /// the body).
  head_verdict check_head(const request& head,
                          std::optional<std::uint64_t> content_length) const;

  /// What a websocket upgrade of GET /v1/stream is granted: the filter,
  /// and whether the client offered the "tocsin" subprotocol (the answer
  /// must then name it).
  struct stream_grant {
    stream_filter filter;
    bool tocsin_protocol = false;
  };
  /// Checks an upgrade request: the path, a `read` token (Authorization
  /// header, `token` query parameter, or an offered subprotocol other than
  /// "tocsin": browsers cannot set headers on a websocket), the filters.
  /// The error response otherwise (401, 403, 400, 404).
  std::variant<stream_grant, response>
  open_stream(const request& req, std::string_view offered_protocols);
  stream_hub* stream() const { return opts_.stream; }

  /// A route the router knows: its method and its path, "{id}" for a
  /// segment that may be anything (GET routes answer HEAD too).
  struct route_info {
    std::string method;
    std::string path;
  };
  /// Every route, for the API's description to be checked against.
  static std::vector<route_info> route_table();

  /// Replaces the tokens and the integrations' secrets (a reload of the
  /// config file): requests from now on see the new ones, those being
  /// answered keep the ones they started with. Thread-safe.
  void reload(live_settings settings);
  /// The tokens and secrets in force now (at start: the constructor's).
  std::shared_ptr<const live_settings> settings() const {
    return settings_.load();
  }

  /// One request as a route's handler sees it.
  struct call {
    request& req;
    std::string_view query;
    std::string_view id; ///< the path's {id} segment, if the route has one
    principal who;
    std::function<void(response)>& respond;
  };

private:
  struct route;
  struct context;
  static const std::vector<route>& routes();
  /// The route of `method` on `segs` (its {id} into `id`), or none: then
  /// `allowed` lists the methods the path has (empty: no such path).
  static const route* find_route(std::string_view method,
                                 const std::vector<std::string_view>& segs,
                                 std::string_view& id, std::string& allowed);
  /// The caller of `r` by `authorization`, or the 401/403 answer.
  std::variant<principal, response>
  authorize(const route& r, std::string_view authorization) const;
  static response no_route(std::string_view path, const std::string& allowed);

  void health(call& c);
  void ready(call& c);
  void post_events(call& c);
  void get_event(call& c);
  void list_events(call& c);
  void list_dead_letters(call& c);
  void replay_dead_letter(call& c);
  void list_endpoints(call& c);
  /// The endpoint as the API shows it, with what it is doing now
  /// ("in_flight": its limit, attempts out, latency floor; null when it
  /// delivers on another node).
  endpoints::ordered_json live(endpoints::ordered_json endpoint) const;
  void create_endpoint(call& c);
  void get_endpoint(call& c);
  void patch_endpoint(call& c);
  void delete_endpoint(call& c);
  void rotate_secret(call& c);
  void replay_endpoint(call& c);
  void metrics(call& c);
  void stream_needs_upgrade(call& c);
  void dashboard_page(call& c);
  void dashboard_file(call& c);
  void openapi_description(call& c);
  void acknowledge_event(call& c);
  void resolve_event(call& c);
  void slack_interaction(call& c);
  void pagerduty_webhook(call& c);
  void get_cluster(call& c);

  void answer_event(call& c, storage::event_state state);

  void replay(delivery::replay_selection sel, call& c);
  /// The stored endpoint of c.id, or the answer already given.
  std::optional<endpoints::endpoint_definition> stored_endpoint(call& c,
                                                                bool changing);
  /// Makes the change, then answers `status` with the endpoint (and its
  /// secret when `with_secret`). With `new_url`, the URL is judged by the
  /// SSRF guard first (handler_options::addresses).
  void change_endpoint(delivery::endpoint_change change,
                       endpoints::endpoint_definition def, int status,
                       bool with_secret, call& c, bool new_url = false);

  actors::engine& engine_;
  storage::store& log_;
  handler_options opts_;
  std::atomic<std::shared_ptr<const live_settings>> settings_;
  std::atomic<std::size_t> queued_requests_{0};
  std::atomic<std::size_t> queued_bytes_{0};
};

} // namespace tocsin::api
