// The sink's own ceiling, measured in the same run as what is compared with
// it: tocsin's HTTPS client (keep-alive, a fixed number of requests
// outstanding) POSTing a webhook-sized body straight at the sink, with none
// of the daemon's work (no ingest, no store, no signing). On a shared
// machine a throughput is only meaningful as a ratio to this.
#pragma once

#include <cstdint>
#include <string>

namespace tocsin::bench {

/// POSTs per second the sink on 127.0.0.1:`port` answered with 200 over
/// `seconds`, `in_flight` outstanding, trusting `ca_file`. 0 if the client
/// could not be made. With `http2`, over HTTP/2 if the sink offers it (one
/// connection carrying the streams), else over as many HTTP/1.1
/// connections as requests outstanding.
double sink_ceiling(std::uint16_t port, const std::string& ca_file,
                    int in_flight, int seconds, bool http2 = false);

} // namespace tocsin::bench
