// tocsin's metric families, named and described once (README, Metrics).
// Each function registers its family in metrics::global() on first call;
// register_all() makes every family appear in /metrics from the start.
#pragma once

#include "common/metrics.hpp"

namespace tocsin::metrics::families {

family<counter>& events_accepted(); ///< {type}
family<counter>& deliveries();      ///< {transport, outcome}
family<counter>& attempts();        ///< {transport, class}
family<histogram>& attempt_duration();
family<histogram>& ingest_duration();
family<gauge>& circuit_open();       ///< {endpoint}
family<gauge>& in_flight_limit();    ///< {endpoint}
family<gauge>& in_flight();          ///< {endpoint}
family<counter>& acknowledgements(); ///< {source, state}
/// Answers from Slack or PagerDuty about events never sent there.
family<counter>& answers_ignored();             ///< {source}
family<counter>& escalations();                 ///< {rule}
family<counter>& escalation_groups_forgotten(); ///< {rule}
family<gauge>& http_connections();
family<counter>& http_connections_refused(); ///< {reason}
family<counter>& http_connections_evicted(); ///< {phase}
family<counter>& http_refused_before_body(); ///< {status}

/// Cluster mode: the leases this node holds ({kind}: endpoint, escalation),
/// the nodes it sees ({state}: alive, dead), heartbeats that failed, writes
/// refused because another node took the lease meanwhile.
family<gauge>& cluster_leases(); ///< {kind}
family<gauge>& cluster_nodes();  ///< {state}
family<counter>& cluster_heartbeat_failures();
family<counter>& cluster_fenced_writes();

void register_all();

} // namespace tocsin::metrics::families
