// The HTTP API as plain functions of a request: routing, auth, validation and
// the JSON answers of DESIGN.md. No sockets here (see api_server).
#pragma once

#include "actors/engine.hpp"
#include "app/auth.hpp"
#include "app/endpoint_definition.hpp"
#include "app/event_validation.hpp"
#include "storage/event_log.hpp"

#include <atomic>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace tocsin::app {

struct api_request {
  std::string method;
  std::string target; ///< path and query
  std::string content_type;
  std::string authorization;
  std::string idempotency_key; ///< Idempotency-Key header
  std::string body;
};

struct api_response {
  int status = 200;
  std::string body; ///< JSON
  std::vector<std::pair<std::string, std::string>> headers;
};

/// {"error": {"code", "message", "field"}} with `status`.
api_response error_response(int status, const error& e);

struct api_options {
  std::string audit_url_template;
  std::size_t max_payload_bytes = 4096;
  endpoint_defaults defaults = {};
  endpoint_rules rules = {};
  /// Back-pressure: requests (and their bytes) handed to the engine and not
  /// yet answered; past either, POST /v1/events answers 503 + Retry-After.
  std::size_t max_queued_requests = 4096;
  std::size_t max_queued_bytes = 64 << 20;
};

class api {
public:
  api(actors::engine& engine, storage::event_log& log, authenticator auth,
      api_options opts);

  /// Handles one request; `respond` runs exactly once, possibly later and on
  /// another thread (POST /v1/events answers once the events are durable).
  void handle(api_request req, std::function<void(api_response)> respond);

  /// One request as a route's handler sees it.
  struct call {
    api_request& req;
    std::string_view query;
    std::string_view id; ///< the path's {id} segment, if the route has one
    principal who;
    std::function<void(api_response)>& respond;
  };

private:
  struct route;
  static const std::vector<route>& routes();

  void health(call& c);
  void post_events(call& c);
  void get_event(call& c);
  void list_dead_letters(call& c);
  void replay_dead_letter(call& c);
  void list_endpoints(call& c);
  void create_endpoint(call& c);
  void get_endpoint(call& c);
  void patch_endpoint(call& c);
  void delete_endpoint(call& c);
  void rotate_secret(call& c);
  void replay_endpoint(call& c);

  void replay(actors::replay_selection sel, call& c);
  /// The stored endpoint of c.id, or the answer already given.
  std::optional<endpoint_definition> stored_endpoint(call& c, bool changing);
  void change_endpoint(actors::endpoint_change change, endpoint_definition def,
                       int status, bool with_secret, call& c);

  actors::engine& engine_;
  storage::event_log& log_;
  authenticator auth_;
  api_options opts_;
  std::atomic<std::size_t> queued_requests_{0};
  std::atomic<std::size_t> queued_bytes_{0};
};

} // namespace tocsin::app
