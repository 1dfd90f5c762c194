// Dead letters: GET /v1/dead-letters, POST /v1/dead-letters/{id}/replay,
// and the replay that POST /v1/endpoints/{id}/replay shares.
#include "api/handler.hpp"

#include "api/routes/shared.hpp"
#include "common/log.hpp"

#include <charconv>

namespace tocsin::api {

using namespace shared;

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

} // namespace tocsin::api
