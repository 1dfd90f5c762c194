// The request for one attempt of a delivery: built by the endpoint's
// transport plugin from the event, then signed per Standard Webhooks when
// the transport asks for it (with every key still in its grace period).
#pragma once

#include "common/result.hpp"
#include "delivery/endpoint_config.hpp"
#include "delivery/job.hpp"
#include "net/http_types.hpp"

namespace tocsin::delivery {

/// The request for `job` at `now` (Unix ms, for webhook-timestamp); an error
/// ("transport_error", "insecure_url", or the plugin's own code) when it
/// cannot be built — it never will be, so the delivery is dead-lettered.
/// `public_url` (server.public_url, may be empty) links to the event on the
/// dashboard.
result<net::outbound_request> build_request(const endpoint_config& cfg,
                                            const job& job, unix_ms now,
                                            std::string_view public_url = {});

/// "{public_url}/#event={id}", or nothing without a public URL.
std::string event_url(std::string_view public_url, std::string_view event_id);

} // namespace tocsin::delivery
