// GET /v1/stream: the websocket upgrade's checks (token, filters), and the
// answer to a plain GET.
#include "api/handler.hpp"

#include "api/routes/shared.hpp"
#include "common/encoding.hpp"

namespace tocsin::api {

using namespace shared;

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

} // namespace tocsin::api
