// The PagerDuty transport (DESIGN.md, "Transports (plugins)"): an event
// becomes a PagerDuty Events API v2 event, POSTed to the endpoint's URL
// (operators configure https://events.pagerduty.com/v2/enqueue):
//
//   {"routing_key": options.routing_key,
//    "event_action": "trigger",
//    "dedup_key": "tocsin-<event id>",
//    "payload": {"summary", "source", "severity", "timestamp", "component",
//                "group", "class", "custom_details"},
//    "links": [{"href": <audit url>, "text": "Audit record"}],
//    "client": "tocsin"}
//
// An acknowledged event sends {"routing_key", "event_action": "acknowledge",
// "dedup_key"} with the same dedup_key, which resolves nothing but stops the
// escalation of the incident the trigger opened; a resolved one sends
// "event_action": "resolve", which closes it.
//
// Options (checked when the endpoint is configured):
//   routing_key   required, 32 characters of [A-Za-z0-9] (an integration key)
//   severity_map  optional, e.g. {"high": "critical"}: tocsin severity
//                 (critical, high, medium, low, info) -> PagerDuty severity
//                 (critical, error, warning, info), overriding the default
//                 critical->critical, high->error, medium->warning,
//                 low->info, info->info
//   component     optional, 1..255 characters; default: the first part of
//                 the event type ("policy" for "policy.denied")
//   group         optional, 1..255 characters; default "tocsin"
//
// Built as a plugin against tocsin_plugin.h only. Nothing throws across the C
// boundary: every exported function catches everything.
#include "tocsin_plugin.h"
#include "tocsin_plugin_util.h"

#include "common/json_parse.hpp" // header-only: the host's JSON rules

#include <algorithm>
#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace {

using json = nlohmann::ordered_json;
using namespace tocsin::plugin_util;

// PagerDuty's limits (Events API v2).
constexpr std::size_t routing_key_length = 32;
constexpr std::size_t max_dedup_key = 255;
constexpr std::size_t max_summary_code_points = 1024;
constexpr std::size_t max_component_or_group = 255;
// The host keeps 256 bytes of a reason; cut there on a UTF-8 boundary so
// that what is recorded is still valid UTF-8.
constexpr std::size_t max_reason_bytes = 256;

constexpr std::array<std::string_view, 5> tocsin_severities{
    "critical", "high", "medium", "low", "info"};
constexpr std::array<std::string_view, 4> pagerduty_severities{
    "critical", "error", "warning", "info"};
// critical and error page with high urgency (DESIGN.md).
constexpr std::array<std::string_view, 5> default_severity_map{
    "critical", "error", "warning", "info", "info"};

std::optional<std::size_t> tocsin_severity_index(std::string_view s) {
  for (std::size_t i = 0; i < tocsin_severities.size(); ++i)
    if (tocsin_severities[i] == s)
      return i;
  return std::nullopt;
}

bool is_pagerduty_severity(std::string_view s) {
  for (auto p : pagerduty_severities)
    if (p == s)
      return true;
  return false;
}

struct options {
  std::string routing_key;
  std::array<std::string, 5> severity_map;
  std::optional<std::string> component;
  std::string group = "tocsin";
};

/// The endpoint's options, or nullopt after putting the reason in `why`.
/// Messages name the offending key but never repeat the routing key.
std::optional<options> parse_options(std::string_view text, std::string& why) {
  json j;
  if (!tocsin::parse_json(text, j) || !j.is_object()) {
    why = "options must be a JSON object";
    return std::nullopt;
  }
  options o;
  for (std::size_t i = 0; i < o.severity_map.size(); ++i)
    o.severity_map[i] = default_severity_map[i];
  bool have_routing_key = false;
  for (auto& [key, value] : j.items()) {
    if (key == "routing_key") {
      if (!value.is_string()) {
        why = "routing_key must be a string (the 32-character integration "
              "key of a PagerDuty Events API v2 integration)";
        return std::nullopt;
      }
      auto& k = value.get_ref<const std::string&>();
      bool alnum = true;
      for (char c : k)
        alnum = alnum && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                          (c >= '0' && c <= '9'));
      if (k.size() != routing_key_length || !alnum) {
        why = "routing_key must be exactly 32 characters of A-Z, a-z, 0-9 "
              "(the integration key of a PagerDuty Events API v2 "
              "integration); " +
              (alnum ? "got " + std::to_string(code_points(k)) + " characters"
                     : std::string{"it has other characters"});
        return std::nullopt;
      }
      o.routing_key = k;
      have_routing_key = true;
    } else if (key == "severity_map") {
      if (!value.is_object()) {
        why = "severity_map must be an object such as {\"high\": "
              "\"critical\"}";
        return std::nullopt;
      }
      for (auto& [from, to] : value.items()) {
        auto i = tocsin_severity_index(from);
        if (!i) {
          why = "severity_map: unknown severity '" + one_line(from) +
                "' (keys are critical, high, medium, low, info)";
          return std::nullopt;
        }
        if (!to.is_string() ||
            !is_pagerduty_severity(to.get_ref<const std::string&>())) {
          why = "severity_map." + from +
                " must be one of critical, error, warning, info";
          return std::nullopt;
        }
        o.severity_map[*i] = to.get<std::string>();
      }
    } else if (key == "component" || key == "group") {
      if (!value.is_string() || value.get_ref<const std::string&>().empty() ||
          code_points(value.get_ref<const std::string&>()) >
              max_component_or_group) {
        why = key + " must be a string of 1 to 255 characters";
        return std::nullopt;
      }
      if (key == "component")
        o.component = value.get<std::string>();
      else
        o.group = value.get<std::string>();
    } else {
      why = "unknown option '" + one_line(key) +
            "' (the pagerduty transport takes routing_key, severity_map, "
            "component, group)";
      return std::nullopt;
    }
  }
  if (!have_routing_key) {
    why = "routing_key is required (the 32-character integration key of a "
          "PagerDuty Events API v2 integration)";
    return std::nullopt;
  }
  return o;
}

} // namespace

/// An endpoint's options, read once when it is opened.
struct tocsin_instance {
  options opts;
};

namespace {

int open_endpoint(const tocsin_host_api* host, tocsin_call* call,
                  const tocsin_endpoint_view* endpoint,
                  tocsin_instance** instance) {
  try {
    std::string why;
    if (auto o = parse_options(view(endpoint->options_json), why)) {
      *instance = new tocsin_instance{std::move(*o)};
      return 0;
    }
    host->set_error(call, str("invalid_options"), str(why));
  } catch (...) {
    host->set_error(call, str("internal_error"),
                    str("the pagerduty transport failed to read the options"));
  }
  return 1;
}

void close_endpoint(tocsin_instance* instance) {
  delete instance;
}

json body_for(const tocsin_event_view& ev, const options& o) {
  auto id = view(ev.id);
  auto type = view(ev.type);
  json body;
  body["routing_key"] = o.routing_key;
  body["event_action"] = ev.state == TOCSIN_EVENT_ACKNOWLEDGED ? "acknowledge"
                         : ev.state == TOCSIN_EVENT_RESOLVED   ? "resolve"
                                                               : "trigger";
  // Stable across retries and shared by the trigger and the acknowledge.
  body["dedup_key"] =
      std::string{cut_bytes("tocsin-" + std::string{id}, max_dedup_key)};
  if (ev.state != TOCSIN_EVENT_OPEN)
    return body;

  // The host's normalized event: its details and the truncation mark.
  json event;
  if (!tocsin::parse_json(view(ev.payload_json), event, nullptr,
                          tocsin::stored_json_limits) ||
      !event.is_object())
    event = json::object();
  json details = json::object();
  if (auto it = event.find("details"); it != event.end() && it->is_object())
    details = *it;
  auto agent = view(ev.agent_id);
  if (!agent.empty())
    details["agent_id"] = agent;
  details["event_id"] = id;
  if (auto it = event.find("truncated"); it != event.end() && *it == true)
    details["truncated"] = true;

  auto summary = view(ev.summary);
  auto severity = tocsin_severity_index(view(ev.severity));
  json payload;
  payload["summary"] = cut_code_points(summary.empty() ? type : summary,
                                       max_summary_code_points);
  payload["source"] = agent.empty() ? std::string_view{"tocsin"} : agent;
  // The host only hands over the five severities; anything else would be a
  // new one, better paged than dropped.
  payload["severity"] = severity ? o.severity_map[*severity] : "error";
  if (ev.timestamp.len > 0)
    payload["timestamp"] = view(ev.timestamp);
  payload["component"] =
      o.component ? *o.component : std::string{type.substr(0, type.find('.'))};
  payload["group"] = o.group;
  payload["class"] = type;
  payload["custom_details"] = std::move(details);
  body["payload"] = std::move(payload);
  json links = json::array();
  if (ev.audit_url.len > 0)
    links.push_back(
        json{{"href", view(ev.audit_url)}, {"text", "Audit record"}});
  // The event on tocsin's dashboard, when it has a public URL.
  std::string_view event_url;
  if (TOCSIN_HAS_FIELD(tocsin_event_view, &ev, event_url))
    event_url = view(ev.event_url);
  if (!event_url.empty())
    links.push_back(json{{"href", event_url}, {"text", "Event in tocsin"}});
  if (!links.empty())
    body["links"] = std::move(links);
  body["client"] = "tocsin";
  if (!event_url.empty())
    body["client_url"] = event_url;
  return body;
}

int build_request(const tocsin_host_api* host, tocsin_call* call,
                  tocsin_instance* instance, const tocsin_event_view* event,
                  const tocsin_endpoint_view*) {
  try {
    auto body = body_for(*event, instance->opts)
                    .dump(-1, ' ', false, json::error_handler_t::replace);
    if (host->add_header(call, str("Content-Type"), str("application/json")))
      return 1;
    return host->append_body(call, str(body)) ? 1 : 0;
  } catch (...) {
    host->set_error(call, str("internal_error"),
                    str("the pagerduty transport failed to build the request"));
    return 1;
  }
}

/// Why PagerDuty refused an event, from its error body
/// ({"status": "invalid event", "message": "Event object is invalid",
///   "errors": ["Length of 'routing_key' is incorrect"]}): "<status>:
/// <errors joined by '; '>", else the message, else the body's first bytes.
std::string bad_request_reason(std::string_view body) {
  json j;
  if (tocsin::parse_json(body, j) && j.is_object()) {
    auto text = [&](const char* key) {
      auto it = j.find(key);
      return it != j.end() && it->is_string() ? it->get<std::string>()
                                              : std::string{};
    };
    std::string details;
    if (auto it = j.find("errors"); it != j.end() && it->is_array())
      for (auto& e : *it)
        if (e.is_string())
          details += (details.empty() ? "" : "; ") + e.get<std::string>();
    if (details.empty())
      details = text("message");
    auto status = text("status");
    if (status.empty())
      status = "bad request";
    return details.empty() ? status : status + ": " + details;
  }
  auto trimmed = body.substr(0, body.find_last_not_of(" \t\r\n") + 1);
  trimmed = trimmed.substr(
      std::min(trimmed.size(), trimmed.find_first_not_of(" \t\r\n")));
  return trimmed.empty() ? "bad request (HTTP 400)"
                         : "bad request (HTTP 400): " + std::string{trimmed};
}

void set_reason(const tocsin_host_api* host, tocsin_call* call,
                std::string_view reason) {
  auto line = one_line(reason);
  if (line.size() > max_reason_bytes) {
    line = std::string{cut_bytes(line, max_reason_bytes - ellipsis.size())} +
           std::string{ellipsis};
  }
  host->set_reason(call, str(line));
}

/// 2xx (PagerDuty answers 202) delivered; 400 (the event is invalid), 404 and
/// any other 4xx but 408 are permanent; 408, 429 and 5xx are retried. 1xx/3xx
/// are unexpected (the Events API does not redirect): permanent, so that a
/// wrong URL shows up instead of being retried.
int classify(const tocsin_host_api* host, tocsin_call* call, tocsin_instance*,
             const tocsin_response_view* r) {
  try {
    auto s = r->status;
    auto code = std::to_string(s);
    if (s >= 200 && s < 300)
      return TOCSIN_OUTCOME_SUCCESS;
    if (s == 400) {
      set_reason(host, call, bad_request_reason(view(r->body_prefix)));
      return TOCSIN_OUTCOME_PERMANENT;
    }
    if (s == 429) {
      set_reason(host, call, "rate limited");
      return TOCSIN_OUTCOME_RETRY;
    }
    if (s == 408) {
      set_reason(host, call, "request timeout (HTTP 408)");
      return TOCSIN_OUTCOME_RETRY;
    }
    if (s >= 500) {
      set_reason(host, call, "PagerDuty server error (HTTP " + code + ")");
      return TOCSIN_OUTCOME_RETRY;
    }
    if (s == 404) {
      set_reason(host, call,
                 "not found (HTTP 404): the endpoint URL should be "
                 "https://events.pagerduty.com/v2/enqueue");
      return TOCSIN_OUTCOME_PERMANENT;
    }
    if (s >= 400) {
      set_reason(host, call, "refused (HTTP " + code + ")");
      return TOCSIN_OUTCOME_PERMANENT;
    }
    set_reason(host, call, "unexpected status (HTTP " + code + ")");
    return TOCSIN_OUTCOME_PERMANENT;
  } catch (...) {
    return TOCSIN_OUTCOME_PERMANENT;
  }
}

// The routing key lets anyone page the service: never shown whole.
const char* const secret_options[] = {"routing_key", nullptr};

const tocsin_transport table = {
    sizeof(tocsin_transport),
    TOCSIN_PLUGIN_ABI_VERSION,
    "pagerduty",
    "1.0.0",
    open_endpoint,
    close_endpoint,
    build_request,
    classify,
    // No Standard Webhooks signature (the routing key authenticates); an
    // acknowledged or resolved event is sent as "acknowledge"/"resolve".
    TOCSIN_TRANSPORT_FOLLOWS_STATE,
    // PagerDuty throttles each routing key (around 120 events a minute
    // sustained, with short bursts allowed), answering 429 beyond: 2 per
    // second with a burst of 10 stays under it and lets a small flurry of
    // alerts through at once.
    2.0,
    10,
    nullptr,
    secret_options,
};

} // namespace

extern "C" TOCSIN_PLUGIN_EXPORT const tocsin_transport*
tocsin_plugin_entry_v2(const tocsin_host*, const char**) {
  return &table;
}
