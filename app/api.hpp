// The HTTP API as plain functions of a request: routing, auth, validation and
// the JSON answers of DESIGN.md. No sockets here (see api_server).
#pragma once

#include "actors/engine.hpp"
#include "app/auth.hpp"
#include "app/endpoint_definition.hpp"
#include "app/event_validation.hpp"
#include "storage/event_log.hpp"

#include <functional>
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
  endpoint_defaults defaults = {};
  endpoint_rules rules = {};
};

class api {
public:
  api(actors::engine& engine, storage::event_log& log, authenticator auth,
      api_options opts);

  /// Handles one request; `respond` runs exactly once, possibly later and on
  /// another thread (POST /v1/events answers once the events are durable).
  void handle(api_request req, std::function<void(api_response)> respond);

private:
  void post_events(api_request& req,
                   std::function<void(api_response)>& respond);
  void endpoints(api_request& req, std::string_view path,
                 std::function<void(api_response)>& respond);
  void change_endpoint(actors::endpoint_change change, endpoint_definition def,
                       int status, bool with_secret,
                       std::function<void(api_response)>& respond);
  api_response get_event(std::string_view id);
  api_response list_dead_letters(std::string_view query);

  actors::engine& engine_;
  storage::event_log& log_;
  authenticator auth_;
  api_options opts_;
};

} // namespace tocsin::app
