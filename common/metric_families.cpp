#include "common/metric_families.hpp"

namespace tocsin::metrics::families {

family<counter>& events_accepted() {
  static auto& f =
      global().counters("tocsin_events_accepted_total",
                        "Events accepted (durable), by type.", {"type"});
  return f;
}

family<counter>& deliveries() {
  static auto& f =
      global().counters("tocsin_deliveries_total",
                        "Deliveries finished, by transport and outcome "
                        "(delivered, dead_lettered).",
                        {"transport", "outcome"});
  return f;
}

family<counter>& attempts() {
  static auto& f = global().counters(
      "tocsin_delivery_attempts_total",
      "Delivery attempts, by transport and class of answer (2xx, 3xx, 4xx, "
      "5xx; error: none came).",
      {"transport", "class"});
  return f;
}

family<histogram>& attempt_duration() {
  static auto& f = global().histograms(
      "tocsin_delivery_attempt_duration_seconds",
      "Time from sending a delivery's request to its answer.", {},
      latency_buckets());
  return f;
}

family<histogram>& ingest_duration() {
  static auto& f = global().histograms(
      "tocsin_ingest_duration_seconds",
      "Time from a POST /v1/events request to its 202 (durable).", {},
      latency_buckets());
  return f;
}

family<gauge>& circuit_open() {
  static auto& f = global().gauges(
      "tocsin_circuit_open",
      "1 while the endpoint's circuit is open (failing, attempts paused).",
      {"endpoint"});
  return f;
}

family<gauge>& in_flight_limit() {
  static auto& f = global().gauges(
      "tocsin_in_flight_limit",
      "Attempts the endpoint may have in flight now: the adaptive limit its "
      "receiver's answers set (max_in_flight when fixed, 1 when ordered).",
      {"endpoint"});
  return f;
}

family<gauge>& in_flight() {
  static auto& f = global().gauges(
      "tocsin_in_flight", "Attempts the endpoint has in flight.", {"endpoint"});
  return f;
}

family<counter>& acknowledgements() {
  static auto& f = global().counters(
      "tocsin_acknowledgements_total",
      "Events acknowledged or resolved, by where the answer came from (api, "
      "slack, pagerduty) and what it was.",
      {"source", "state"});
  return f;
}

family<counter>& answers_ignored() {
  static auto& f = global().counters(
      "tocsin_answers_ignored_total",
      "Slack clicks and PagerDuty webhooks about an event that was never "
      "delivered to an endpoint of that transport: answered 200, nothing "
      "changed.",
      {"source"});
  return f;
}

family<counter>& escalations() {
  static auto& f = global().counters(
      "tocsin_escalations_total",
      "Escalations raised (events derived by a rule), by rule.", {"rule"});
  return f;
}

family<counter>& escalation_groups_forgotten() {
  static auto& f = global().counters(
      "tocsin_escalation_groups_forgotten_total",
      "Groups an escalation rule forgot with their counts because it tracked "
      "as many as it may ([[escalation]] max_groups), by rule.",
      {"rule"});
  return f;
}

family<gauge>& http_connections() {
  static auto& f = global().gauges(
      "tocsin_http_connections",
      "Connections open to the API (websocket streams not counted).", {});
  return f;
}

family<counter>& http_connections_refused() {
  static auto& f = global().counters(
      "tocsin_http_connections_refused_total",
      "New API connections closed at once: their address held "
      "server.max_connections_per_address (per_address), or every "
      "connection was busy at server.max_connections (full).",
      {"reason"});
  return f;
}

family<counter>& http_connections_evicted() {
  static auto& f = global().counters(
      "tocsin_http_connections_evicted_total",
      "API connections closed to make room at server.max_connections, by "
      "what they were doing (closing, head, idle, body).",
      {"phase"});
  return f;
}

family<counter>& http_refused_before_body() {
  static auto& f = global().counters(
      "tocsin_http_refused_before_body_total",
      "Requests with a body answered from their head, none of the body "
      "read, by status (401, 403, 404, 405, 413; 503: "
      "server.max_reading_bytes).",
      {"status"});
  return f;
}

family<gauge>& cluster_leases() {
  static auto& f = global().gauges(
      "tocsin_cluster_leases",
      "Leases this node holds (cluster mode): endpoints it drives, and the "
      "escalation lease.",
      {"kind"});
  return f;
}

family<gauge>& cluster_nodes() {
  static auto& f = global().gauges(
      "tocsin_cluster_nodes",
      "Nodes of the cluster as this node's last heartbeat saw them.",
      {"state"});
  return f;
}

family<counter>& cluster_heartbeat_failures() {
  static auto& f =
      global().counters("tocsin_cluster_heartbeat_failures_total",
                        "Heartbeats that did not reach the database.", {});
  return f;
}

family<counter>& cluster_fenced_writes() {
  static auto& f = global().counters(
      "tocsin_cluster_fenced_writes_total",
      "Writes refused because another node took the lease meanwhile (this "
      "node then stops driving that endpoint).",
      {});
  return f;
}

void register_all() {
  events_accepted();
  deliveries();
  attempts();
  attempt_duration().with(); // unlabelled: the one child from the start
  ingest_duration().with();
  circuit_open();
  in_flight_limit();
  in_flight();
  acknowledgements();
  answers_ignored();
  escalations();
  escalation_groups_forgotten();
  http_connections().with();
  http_connections_refused();
  http_connections_evicted();
  http_refused_before_body();
}

} // namespace tocsin::metrics::families
