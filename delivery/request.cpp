#include "delivery/request.hpp"

#include "delivery/signature_headers.hpp"

namespace tocsin::delivery {

std::string event_url(std::string_view public_url, std::string_view event_id) {
  if (public_url.empty())
    return {};
  while (public_url.ends_with('/'))
    public_url.remove_suffix(1);
  // Event ids are [a-z0-9_A-Z]: nothing to escape in a fragment.
  return std::string{public_url} + "/#event=" + std::string{event_id};
}

result<net::outbound_request> build_request(const endpoint_config& cfg,
                                            const job& job, unix_ms now,
                                            std::string_view public_url) {
  if (!job.event)
    return error{"store_corrupt", "the event " + job.state.event_id +
                                      " of this delivery is missing from "
                                      "the store"};
  auto& ev = *job.event;
  plugins::event_view view;
  view.id = ev.id;
  view.type = ev.type;
  view.severity = ev.severity;
  view.agent_id = ev.agent_id;
  view.summary = ev.summary;
  view.timestamp = ev.timestamp;
  view.payload_json = ev.payload;
  view.audit_url = ev.audit_url;
  auto link = event_url(public_url, ev.id);
  view.event_url = link;
  // A notice: the event was acknowledged or resolved since it was sent.
  auto& news = job.state.news;
  std::string state_at;
  if (news.state != storage::event_state::open) {
    view.state = news.state == storage::event_state::acknowledged
                     ? plugins::event_state::acknowledged
                     : plugins::event_state::resolved;
    view.state_by = news.by;
    state_at = format_rfc3339(news.at);
    view.state_at = state_at;
    view.reply_url = news.reply_url;
    view.receipt = news.receipt;
    view.answered_along = news.along;
  }
  if (!cfg.plugin)
    return error{"transport_error", "no transport plugin for " + cfg.transport};
  auto built = cfg.plugin->build_request(view);
  if (!built)
    return built.error();
  net::outbound_request req;
  req.target = cfg.target;
  if (built->url) {
    auto u = parse_url(*built->url);
    if (!u)
      return error{"transport_error",
                   "the transport's URL: " + u.error().message};
    if (u->scheme != "https")
      return error{"insecure_url", "the transport's URL is not https://"};
    req.target = std::move(*u);
  }
  req.method = std::move(built->method);
  req.headers = std::move(built->headers);
  req.body = std::move(built->body);
  req.timeout = cfg.timeout;
  req.http2 = cfg.http2;
  if (cfg.plugin->signs_requests()) {
    // Rotated-out keys sign until their grace period ends.
    std::vector<signing_key> keys;
    for (auto& k : cfg.signing_keys)
      if (k.expires_at == 0 || k.expires_at > now)
        keys.push_back(k.key);
    auto sig =
        signature_headers({job.state.event_id, now / 1000, req.body}, keys);
    req.headers.insert(req.headers.end(), sig.begin(), sig.end());
  }
  return req;
}

} // namespace tocsin::delivery
