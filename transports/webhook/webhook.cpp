// The generic webhook transport (DESIGN.md, "Payload" and "Signing"): the
// event's normalized JSON, POSTed as is; the host signs it (Standard
// Webhooks). Built as a plugin against tocsin_plugin.h only.
#include "tocsin_plugin.h"
#include "tocsin_plugin_util.h"

#include <string_view>

namespace {

using tocsin::plugin_util::fail;
using tocsin::plugin_util::str;

/// Checks that there are no options; keeps nothing.
int open_endpoint(const tocsin_host_api* host, tocsin_call* call,
                  const tocsin_endpoint_view* endpoint, tocsin_instance**) {
  // The options are a JSON object from the host: "{}" or "{ }" when empty.
  std::string_view o{endpoint->options_json.ptr, endpoint->options_json.len};
  for (char c : o)
    if (c != '{' && c != '}' && c != ' ' && c != '\n' && c != '\t' &&
        c != '\r') {
      return fail(host, call, "invalid_options",
                  "the webhook transport takes no options");
    }
  return 0;
}

int build_request(const tocsin_host_api* host, tocsin_call* call,
                  tocsin_instance*, const tocsin_event_view* event,
                  const tocsin_endpoint_view*) {
  host->add_header(call, str("Content-Type"), str("application/json"));
  return host->append_body(call, event->payload_json);
}

/// 2xx delivered; 408, 425, 429, 5xx and 3xx (redirects are not followed)
/// retried; 410 Gone flags the endpoint; any other 4xx is permanent.
int classify(const tocsin_host_api*, tocsin_call*, tocsin_instance*,
             const tocsin_response_view* r) {
  auto s = r->status;
  if (s >= 200 && s < 300)
    return TOCSIN_OUTCOME_SUCCESS;
  if (s == 410)
    return TOCSIN_OUTCOME_DISABLE_ENDPOINT;
  if (s == 408 || s == 425 || s == 429 || s >= 500 || (s >= 300 && s < 400))
    return TOCSIN_OUTCOME_RETRY;
  return TOCSIN_OUTCOME_PERMANENT;
}

const tocsin_transport table = {
    sizeof(tocsin_transport),
    TOCSIN_PLUGIN_ABI_VERSION,
    "webhook",
    "1.0.0",
    open_endpoint,
    nullptr, // keeps nothing per endpoint
    build_request,
    classify,
    TOCSIN_TRANSPORT_SIGNED,
    0, // no rate limit: the receiver is the operator's own
    0,
    nullptr,
    nullptr, // no option is a credential (the signing secret is not one)
};

} // namespace

extern "C" TOCSIN_PLUGIN_EXPORT const tocsin_transport*
tocsin_plugin_entry_v2(const tocsin_host*, const char**) {
  return &table;
}
