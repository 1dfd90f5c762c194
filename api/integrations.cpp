#include "api/integrations.hpp"

#include "common/encoding.hpp"
#include "common/ids.hpp"
#include "common/json_parse.hpp"
#include "common/url.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>

namespace tocsin::api {

using nlohmann::json;

namespace {

error bad_signature(std::string message) {
  return error{"invalid_signature", std::move(message)};
}

error bad_payload(std::string message) {
  return error{"invalid_payload", std::move(message)};
}

/// A name from a sender, made fit for a log record and a Slack message: no
/// control characters and no bidirectional overrides or isolates (each
/// becomes a space), at most 200 bytes (whole UTF-8 sequences).
std::string clean_name(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size() && out.size() < 200;) {
    auto n = utf8_sequence_length(s, i);
    if (n == 0) {
      ++i;
      continue;
    }
    auto c = static_cast<unsigned char>(s[i]);
    if ((n == 1 && (c < 0x20 || c == 0x7f)) ||
        (n == 3 && deceptive_text(s.substr(i, n), false)))
      out += ' ';
    else if (out.size() + n <= 200)
      out.append(s.substr(i, n));
    else
      break;
    i += n;
  }
  return out;
}

/// obj[key], or nothing when obj is not an object (or is nothing).
const json* member(const json* obj, const char* key) {
  if (!obj || !obj->is_object())
    return nullptr;
  auto it = obj->find(key);
  return it == obj->end() ? nullptr : &*it;
}

std::string_view text(const json* j) {
  return j && j->is_string()
             ? std::string_view{j->get_ref<const std::string&>()}
             : std::string_view{};
}

/// X-Slack-Request-Timestamp: a Unix time within 300 s of `now`.
status check_slack_timestamp(std::string_view timestamp, unix_ms now) {
  std::int64_t seconds = 0;
  auto [end, ec] = std::from_chars(
      timestamp.data(), timestamp.data() + timestamp.size(), seconds);
  if (ec != std::errc{} || end != timestamp.data() + timestamp.size() ||
      seconds < 0 || seconds > 100'000'000'000)
    return bad_signature("X-Slack-Request-Timestamp is not a Unix time");
  auto skew = now - seconds * 1000;
  if (skew > slack_max_skew_ms || skew < -slack_max_skew_ms)
    return error{"stale_request",
                 "X-Slack-Request-Timestamp is more than 300 s away from now"};
  return {};
}

} // namespace

status verify_slack_request(std::string_view signing_secret,
                            std::string_view timestamp,
                            std::string_view signature, std::string_view body,
                            unix_ms now) {
  // The signature first: nothing of an unauthenticated request is trusted,
  // its timestamp included.
  auto expected =
      "v0=" +
      hex_encode(hmac_sha256(signing_secret, "v0:" + std::string{timestamp} +
                                                 ":" + std::string{body}));
  if (signature.empty() || !constant_time_equal(signature, expected))
    return bad_signature("X-Slack-Signature does not match the request");
  return check_slack_timestamp(timestamp, now);
}

status check_slack_headers(std::string_view timestamp,
                           std::string_view signature, unix_ms now) {
  if (signature.empty())
    return bad_signature("no X-Slack-Signature");
  return check_slack_timestamp(timestamp, now);
}

status check_pagerduty_headers(std::string_view signature) {
  if (signature.empty())
    return bad_signature("no X-PagerDuty-Signature");
  return {};
}

result<std::vector<slack_click>>
parse_slack_interaction(std::string_view body,
                        const std::vector<std::string>& response_url_hosts) {
  auto payload = form_value(body, "payload");
  if (!payload)
    return bad_payload("expected a form with a 'payload' field");
  json p;
  if (!parse_json(*payload, p) || !p.is_object())
    return bad_payload("the payload is not a JSON object");
  std::vector<slack_click> clicks;
  if (text(member(&p, "type")) != "block_actions")
    return clicks;
  auto actions = member(&p, "actions");
  if (!actions || !actions->is_array())
    return bad_payload("block_actions without 'actions'");
  auto user = member(&p, "user");
  auto name = text(member(user, "username"));
  if (name.empty())
    name = text(member(user, "name"));
  auto id = text(member(user, "id"));
  std::string who = name.empty() ? std::string{id}
                    : id.empty()
                        ? std::string{name}
                        : std::string{name} + " (" + std::string{id} + ")";
  who = clean_name(who);
  if (who.empty())
    who = "a Slack user";
  std::string reply = std::string{text(member(&p, "response_url"))};
  if (!reply.empty()) {
    auto u = parse_url(reply);
    if (!u || u->scheme != "https")
      return bad_payload("response_url is not an https URL");
    if (std::find(response_url_hosts.begin(), response_url_hosts.end(),
                  u->host) == response_url_hosts.end())
      return bad_payload("response_url's host '" + clean_name(u->host) +
                         "' is not listed in slack.response_url_hosts");
  }
  // The message clicked: the container names it; older payloads only
  // carry channel.id and message.ts.
  auto container = member(&p, "container");
  std::string channel{text(member(container, "channel_id"))};
  if (channel.empty())
    channel = text(member(member(&p, "channel"), "id"));
  std::string ts{text(member(container, "message_ts"))};
  if (ts.empty())
    ts = text(member(member(&p, "message"), "ts"));
  if (channel.size() > 64 || ts.size() > 64) // ids and "1700000000.000100"
    channel.clear(), ts.clear();
  for (auto& a : *actions) {
    auto action = text(member(&a, "action_id"));
    storage::event_state state;
    if (action == "tocsin.ack")
      state = storage::event_state::acknowledged;
    else if (action == "tocsin.resolve")
      state = storage::event_state::resolved;
    else
      continue;
    auto value = text(member(&a, "value"));
    if (!is_valid_id(value, "evt"))
      return bad_payload("a " + std::string{action} +
                         " button whose value is not an event id");
    clicks.push_back({std::string{value}, who, reply, state, channel, ts});
  }
  return clicks;
}

status verify_pagerduty_request(std::string_view webhook_secret,
                                std::string_view signature,
                                std::string_view body) {
  auto expected = "v1=" + hex_encode(hmac_sha256(webhook_secret, body));
  // Every listed value is compared (none is skipped early), so the time
  // taken says nothing of which one matched.
  bool ok = false;
  std::size_t listed = 0;
  while (!signature.empty() && listed < 16) {
    auto comma = signature.find(',');
    auto one = signature.substr(0, comma);
    while (!one.empty() && one.front() == ' ')
      one.remove_prefix(1);
    while (!one.empty() && one.back() == ' ')
      one.remove_suffix(1);
    ok |= constant_time_equal(one, expected);
    ++listed;
    if (comma == std::string_view::npos)
      break;
    signature.remove_prefix(comma + 1);
  }
  if (!ok)
    return bad_signature("X-PagerDuty-Signature does not match the request");
  return {};
}

result<std::vector<pagerduty_change>>
parse_pagerduty_webhook(std::string_view body) {
  json p;
  if (!parse_json(body, p) || !p.is_object())
    return bad_payload("the body is not a JSON object");
  auto ev = member(&p, "event");
  if (!ev || !ev->is_object())
    return bad_payload("expected {\"event\": {...}} (webhooks v3)");
  std::vector<pagerduty_change> out;
  auto type = text(member(ev, "event_type"));
  storage::event_state state;
  if (type == "incident.acknowledged")
    state = storage::event_state::acknowledged;
  else if (type == "incident.resolved")
    state = storage::event_state::resolved;
  else
    return out;
  auto data = member(ev, "data");
  if (!data)
    return out;
  constexpr std::string_view prefix = "tocsin-";
  auto key = text(member(data, "incident_key"));
  if (!key.starts_with(prefix))
    return out; // not an incident tocsin opened
  key.remove_prefix(prefix.size());
  if (!is_valid_id(key, "evt"))
    return out;
  auto agent = member(ev, "agent");
  auto who = text(member(agent, "summary"));
  if (who.empty())
    who = text(member(agent, "id"));
  auto by = clean_name(who);
  out.push_back({std::string{key}, state, by.empty() ? "PagerDuty" : by});
  return out;
}

} // namespace tocsin::api
