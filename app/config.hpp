// The daemon's configuration: one TOML file (DESIGN.md, "Config file"), every
// key with a default, unknown keys and bad values refused with a one-line
// reason.
#pragma once

#include "api/auth.hpp"
#include "common/defaults.hpp"
#include "common/result.hpp"
#include "delivery/endpoint_config.hpp"
#include "delivery/escalation.hpp"
#include "endpoints/definition.hpp"
#include "storage/store.hpp"

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace tocsin::app {

struct server_config {
  std::string listen = "127.0.0.1:8650";
  std::string data_dir = "./data";
  std::size_t max_body_bytes = defaults::max_body_bytes;
  /// Seconds a client has to send a whole request from its first byte (and
  /// tocsin to answer it).
  double request_timeout = 30;
  /// Seconds a request's head (request line and headers) may take from its
  /// first byte.
  double header_timeout = 10;
  /// Seconds a connection with no request in progress is kept open.
  double idle_timeout = 60;
  /// At this many connections, a new one closes the one that has made the
  /// least progress (a closing one, then an unfinished head, then an idle
  /// keep-alive, then a body being read; oldest first); with every one
  /// being answered it is refused.
  std::size_t max_connections = 1024;
  /// Connections one client address may hold; past it a new one from that
  /// address is closed at once.
  std::size_t max_connections_per_address = 256;
  /// Bytes of the request bodies being read at once (by Content-Length;
  /// chunked bodies as they arrive): past it a new body gets 503 with
  /// Retry-After before any of it is read. At least max_body_bytes.
  std::size_t max_reading_bytes = 64 << 20;
  /// Requests validated and waiting to be made durable, and the bytes of
  /// their bodies: past either, POST /v1/events answers 503 with
  /// Retry-After instead of queueing without bound.
  std::size_t max_queued_requests = 4096;
  std::size_t max_queued_bytes = 64 << 20;
  std::string plugins_dir;
  std::string audit_url_template;
  /// Producers may set an event's links.audit; otherwise the audit link
  /// only ever comes from audit_url_template.
  bool allow_producer_links = false;
  /// Where people reach this tocsin's dashboard ("https://tocsin.example"):
  /// Slack's Investigate button and PagerDuty's links point at an event
  /// there. Empty: no such links.
  std::string public_url;
  /// GET /metrics without a token (Prometheus can send bearer tokens; this
  /// is for scrapers that cannot).
  bool public_metrics = false;
  /// Threads for HTTP I/O (API and deliveries each get this many).
  unsigned io_threads = 1;
  /// Worker threads of the actor scheduler.
  unsigned actor_threads = 1;
  /// Threads that read the store for the API (off the HTTP I/O threads).
  unsigned read_threads = 2;
};

struct delivery_config {
  std::vector<double> retry_schedule = defaults::retry_schedule();
  double jitter = defaults::jitter;
  double timeout = defaults::attempt_timeout; ///< seconds per attempt
  std::size_t max_payload_bytes = defaults::max_payload_bytes;
  std::string ca_file;
  std::vector<std::string> allow_networks;
  /// "adaptive": each endpoint's in-flight limit follows its receiver,
  /// between min_in_flight and max_in_flight; "fixed": max_in_flight.
  std::string concurrency = "adaptive";
  int max_in_flight = defaults::max_in_flight;
  int min_in_flight = defaults::min_in_flight;
  /// HTTP/2 to receivers that offer it (ALPN), HTTP/1.1 otherwise.
  bool http2 = true;
  /// Connections open at once to one origin (scheme, host, port), shared by
  /// every endpoint there.
  int max_connections_per_origin = defaults::max_connections_per_origin;
  /// Deliveries each endpoint holds in memory; the rest wait in the store.
  std::size_t queue_window = defaults::queue_window;
  /// Seconds finished deliveries (and their events, log records and
  /// idempotency keys) are kept.
  double retention = defaults::retention;
  /// Seconds a rotated-out secret keeps signing next to the new one.
  double secret_grace = defaults::secret_grace;
  /// Consecutive failures that open an endpoint's circuit (0: never), and
  /// seconds it stays open before a probe.
  int breaker_failures = defaults::breaker_failures;
  double breaker_cooldown = defaults::breaker_cooldown;
};

/// [storage]: which store, and where. Cannot change while tocsin runs.
struct storage_config {
  storage::backend backend = storage::backend::rocksdb;
  /// With backend postgres (required then, refused otherwise): a libpq
  /// connection string or URL. It may hold a password: what goes to a log
  /// or an error goes through mask_password (common/conninfo.hpp).
  std::string postgres_url;
};

/// [cluster]: this node among the nodes that share a PostgreSQL store
/// (with RocksDB a node is alone; node_id still names it).
struct cluster_config {
  /// Empty: the host name and the port the API listens on.
  std::string node_id;
  /// Seconds a node's heartbeat and leases last: after kill -9 or a pause,
  /// its endpoints move to the others within this.
  double lease_ttl = 10;
};

/// "rocksdb" or "postgres", as storage.backend spells it.
std::string_view backend_name(storage::backend b);

struct config {
  server_config server;
  delivery_config delivery;
  storage_config storage;
  cluster_config cluster;
  std::vector<api::token_config> tokens;
  std::string log_level = "info"; ///< [log] level
  /// [slack] signing_secret: enables POST /v1/integrations/slack/interactions.
  std::string slack_signing_secret;
  /// [slack] response_url_hosts: the hosts a click's response_url may name
  /// (lower case); a click naming another is refused.
  std::vector<std::string> slack_response_url_hosts = {"hooks.slack.com"};
  /// [pagerduty] webhook_secret: enables POST
  /// /v1/integrations/pagerduty/webhook.
  std::string pagerduty_webhook_secret;
  std::vector<endpoints::endpoint_entry> endpoints;
  /// [[escalation]]: each passed delivery::check_rule(), names unique. Not
  /// given in a rule: group_by "agent_id", severity "critical", suppress_for
  /// the window, the default summary. window and suppress_for are at most
  /// delivery.retention (restore() reads the log that far back).
  std::vector<delivery::escalation_rule> escalation;
};

/// This node's id: cluster.node_id, or the host name and the port the API
/// listens on ("db-2:8650"; with port 0, its data directory:
/// "db-2:/var/lib/tocsin").
std::string node_id_of(const config& cfg);

/// What endpoints inherit from [delivery].
endpoints::endpoint_defaults endpoint_defaults_of(const delivery_config& d);

/// Parses TOML text; `source` names it in error messages.
result<config> parse_config(std::string_view toml_text,
                            std::string_view source);
result<config> load_config(const std::filesystem::path& file);

} // namespace tocsin::app
