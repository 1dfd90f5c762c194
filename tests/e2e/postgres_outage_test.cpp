// The daemon on PostgreSQL while the database goes away and comes back: what
// cannot be made durable is refused with 503 and Retry-After (never
// answered 202), /readyz sends producers elsewhere meanwhile, and the daemon
// takes events again by itself. Every event answered 202 is delivered.
#include "tests/e2e/fixture.hpp"

#include "tests/support/pg_cluster.hpp"

#include <boost/test/unit_test.hpp>

#include <set>
#include <string>
#include <vector>

using namespace tocsin::test;
using nlohmann::json;

BOOST_AUTO_TEST_SUITE(postgres_outage)

BOOST_AUTO_TEST_CASE(
    while_the_database_is_down_events_get_503_and_none_is_lost) {
  BOOST_TEST_REQUIRE(postgres_installed(),
                     "PostgreSQL 15 is not installed: apt-get install "
                     "postgresql (scripts/install-deps.sh --test)");
  pg_cluster pg; // its own: this test stops it
  daemon_fixture f;
  f.use_postgres(pg.url());
  auto receiver = f.make_receiver();
  f.start({{"ops", daemon_fixture::url_of(*receiver)}});
  std::vector<std::string> accepted = f.post_events(sample_event("before"));
  BOOST_REQUIRE(receiver->wait_for(1, std::chrono::seconds{10}));
  BOOST_TEST(f.get("/readyz").status == 200);

  pg.stop("immediate"); // as a crash or a failover looks to its clients
  auto post = [&] {
    return f.post("/v1/events", sample_event("during").dump(), f.admin_token());
  };
  http_result refused;
  BOOST_REQUIRE_MESSAGE(
      eventually([&] {
        refused = post();
        if (refused.status == 202)
          accepted.push_back(
              json::parse(refused.body)["ids"][0].get<std::string>());
        return refused.status != 202;
      }),
      "still accepting events with the database down");
  BOOST_TEST(refused.status == 503, refused.status << " " << refused.body);
  BOOST_TEST(error_of(refused)["code"] == "store_unavailable");
  BOOST_TEST(refused.headers["retry-after"] == "1");
  BOOST_TEST(f.get("/healthz").status == 200); // alive,
  http_result ready;
  BOOST_TEST(eventually([&] { // not ready
    ready = f.get("/readyz");
    return ready.status == 503;
  }));
  BOOST_TEST(error_of(ready)["code"] == "store_unavailable");
  BOOST_TEST(f.process().running());

  pg.start();
  // Producers that come back as Retry-After says get their events taken.
  BOOST_REQUIRE_MESSAGE(
      eventually(
          [&] {
            auto r = post();
            if (r.status != 202)
              return false;
            accepted.push_back(
                json::parse(r.body)["ids"][0].get<std::string>());
            return true;
          },
          std::chrono::seconds{30}),
      "still refusing 30 s after the database came back");
  BOOST_TEST(eventually([&] { return f.get("/readyz").status == 200; }));
  auto after = f.post_events(sample_event("after"));
  accepted.insert(accepted.end(), after.begin(), after.end());

  // At least once: an attempt whose outcome the outage kept from the store
  // may be sent again.
  std::size_t missing = 0;
  eventually(
      [&] {
        std::set<std::string> delivered;
        for (auto& r : receiver->requests())
          delivered.insert(r.headers.at("webhook-id"));
        missing = 0;
        for (auto& id : accepted)
          missing += delivered.count(id) == 0;
        return missing == 0;
      },
      std::chrono::seconds{30});
  BOOST_TEST(missing == 0u, missing << " of " << accepted.size()
                                    << " events answered 202 never arrived");
  BOOST_TEST(f.terminate() == 0);
}

BOOST_AUTO_TEST_SUITE_END()
