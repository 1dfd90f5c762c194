// The config the Debian package installs as /etc/tocsin/tocsin.toml: valid,
// and every value it sets the default, except data_dir.
#include "app/config.hpp"

#include <boost/test/unit_test.hpp>

using namespace tocsin;
using namespace tocsin::app;

BOOST_AUTO_TEST_SUITE(packaged_config)

BOOST_AUTO_TEST_CASE(holds_the_defaults_with_the_data_in_var_lib) {
  auto packaged = load_config(TOCSIN_SOURCE_DIR "/packaging/tocsin.toml");
  BOOST_REQUIRE_MESSAGE(packaged, (packaged ? "" : packaged.error().message));
  auto defaults = parse_config("", "defaults");
  BOOST_REQUIRE(defaults);
  auto& p = *packaged;
  auto& d = *defaults;

  BOOST_TEST(p.server.data_dir == "/var/lib/tocsin");
  BOOST_TEST(p.server.listen == d.server.listen);
  BOOST_TEST(p.server.max_body_bytes == d.server.max_body_bytes);
  BOOST_TEST(p.server.request_timeout == d.server.request_timeout);
  BOOST_TEST(p.server.header_timeout == d.server.header_timeout);
  BOOST_TEST(p.server.idle_timeout == d.server.idle_timeout);
  BOOST_TEST(p.server.max_connections == d.server.max_connections);
  BOOST_TEST(p.server.max_connections_per_address ==
             d.server.max_connections_per_address);
  BOOST_TEST(p.server.max_reading_bytes == d.server.max_reading_bytes);
  BOOST_TEST(p.server.max_queued_requests == d.server.max_queued_requests);
  BOOST_TEST(p.server.max_queued_bytes == d.server.max_queued_bytes);
  BOOST_TEST(p.server.plugins_dir == d.server.plugins_dir);
  BOOST_TEST(p.server.audit_url_template == d.server.audit_url_template);
  BOOST_TEST(p.server.allow_producer_links == d.server.allow_producer_links);
  BOOST_TEST(p.server.public_url == d.server.public_url);
  BOOST_TEST(p.server.public_metrics == d.server.public_metrics);
  BOOST_TEST(p.server.io_threads == d.server.io_threads);
  BOOST_TEST(p.server.actor_threads == d.server.actor_threads);
  BOOST_TEST(p.server.read_threads == d.server.read_threads);

  BOOST_TEST(p.delivery.retry_schedule == d.delivery.retry_schedule,
             boost::test_tools::per_element());
  BOOST_TEST(p.delivery.jitter == d.delivery.jitter);
  BOOST_TEST(p.delivery.timeout == d.delivery.timeout);
  BOOST_TEST(p.delivery.max_payload_bytes == d.delivery.max_payload_bytes);
  BOOST_TEST(p.delivery.ca_file == d.delivery.ca_file);
  BOOST_TEST(p.delivery.allow_networks == d.delivery.allow_networks,
             boost::test_tools::per_element());
  BOOST_TEST(p.delivery.concurrency == d.delivery.concurrency);
  BOOST_TEST(p.delivery.max_in_flight == d.delivery.max_in_flight);
  BOOST_TEST(p.delivery.min_in_flight == d.delivery.min_in_flight);
  BOOST_TEST(p.delivery.http2 == d.delivery.http2);
  BOOST_TEST(p.delivery.max_connections_per_origin ==
             d.delivery.max_connections_per_origin);
  BOOST_TEST(p.delivery.queue_window == d.delivery.queue_window);
  BOOST_TEST(p.delivery.retention == d.delivery.retention);
  BOOST_TEST(p.delivery.secret_grace == d.delivery.secret_grace);
  BOOST_TEST(p.delivery.breaker_failures == d.delivery.breaker_failures);
  BOOST_TEST(p.delivery.breaker_cooldown == d.delivery.breaker_cooldown);

  BOOST_TEST((p.storage.backend == d.storage.backend));
  BOOST_TEST(p.storage.postgres_url == d.storage.postgres_url);
  BOOST_TEST(p.cluster.node_id == d.cluster.node_id);
  BOOST_TEST(p.cluster.lease_ttl == d.cluster.lease_ttl);
  BOOST_TEST(p.tokens.empty());
  BOOST_TEST(p.log_level == d.log_level);
  BOOST_TEST(p.slack_signing_secret == d.slack_signing_secret);
  BOOST_TEST(p.slack_response_url_hosts == d.slack_response_url_hosts,
             boost::test_tools::per_element());
  BOOST_TEST(p.pagerduty_webhook_secret == d.pagerduty_webhook_secret);
  BOOST_TEST(p.endpoints.empty());
  BOOST_TEST(p.escalation.empty());
}

BOOST_AUTO_TEST_SUITE_END()
