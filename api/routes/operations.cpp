// Operations: GET /healthz, /readyz, /metrics, /v1/openapi.json, and the
// dashboard (GET / and its files).
#include "api/handler.hpp"

#include "api/dashboard.hpp"
#include "api/openapi.hpp"
#include "api/routes/shared.hpp"
#include "common/metrics.hpp"

namespace tocsin::api {

using namespace shared;

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

void request_handler::metrics(call& c) {
  response r{200, metrics::global().render(), {}};
  r.headers.emplace_back("Content-Type", "text/plain; version=0.0.4");
  c.respond(std::move(r));
}

void request_handler::openapi_description(call& c) {
  // The description changes only with the binary: a client that has this
  // one (If-None-Match: its ETag, or *) is told so without the body.
  std::string_view etag = openapi_etag();
  std::string_view asked = c.req.if_none_match;
  bool same = asked == "*";
  while (!same && !asked.empty()) {
    auto comma = asked.find(',');
    auto tag = asked.substr(0, comma);
    while (!tag.empty() && tag.front() == ' ')
      tag.remove_prefix(1);
    while (!tag.empty() && tag.back() == ' ')
      tag.remove_suffix(1);
    if (tag.substr(0, 2) == "W/") // weak comparison (RFC 9110, 13.1.2)
      tag.remove_prefix(2);
    same = tag == etag;
    if (comma == std::string_view::npos)
      break;
    asked.remove_prefix(comma + 1);
  }
  response r{same ? 304 : 200, same ? "" : std::string{openapi_json()}, {}};
  r.headers.emplace_back("ETag", std::string{etag});
  r.headers.emplace_back("Cache-Control", "no-cache");
  c.respond(std::move(r));
}

} // namespace tocsin::api
