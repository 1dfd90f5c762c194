// A store that cannot go on: the disk under RocksDB starts failing its
// syncs (fsync and fdatasync fail with EIO, through a preloaded shim: the
// real store on a real disk, failing where a dying disk fails). The daemon
// exits 3 with one line, for its supervisor to start it again; started
// again on the same data directory, it delivers every event it answered
// 202.
#include "tests/e2e/fixture.hpp"

#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

using namespace tocsin::test;

BOOST_AUTO_TEST_SUITE(store_failure)

BOOST_AUTO_TEST_CASE(a_failed_sync_exits_3_and_a_restart_delivers_every_202) {
  daemon_fixture f;
  if (f.backend() != tocsin::storage::backend::rocksdb)
    return; // PostgreSQL goes on after a lost connection (postgres_outage)
  auto receiver = f.make_receiver();
  auto trigger = f.dir() / "the-disk-fails";
  f.set_environment({"LD_PRELOAD=" TOCSIN_FAILING_SYNC_SHIM,
                     "TOCSIN_FAIL_SYNC_TRIGGER=" + trigger.string()});
  f.start({{"ep", daemon_fixture::url_of(*receiver)}});

  // Events one after another; the disk starts failing after the 50th is
  // accepted. Only those answered 202 count as accepted.
  http_client producer{"127.0.0.1", f.api_port()};
  std::vector<std::string> accepted;
  std::size_t refused = 0;
  for (int i = 0; i < 10000; ++i) {
    auto r = producer.request("POST", "/v1/events",
                              sample_event("agent-" + std::to_string(i)).dump(),
                              {{"authorization", "Bearer " + f.admin_token()},
                               {"content-type", "application/json"}});
    if (!r.error.empty())
      break; // the daemon is gone
    if (r.status == 202)
      accepted.push_back(nlohmann::json::parse(r.body)["ids"][0]);
    else
      ++refused;
    if (accepted.size() == 50 && !std::filesystem::exists(trigger))
      std::ofstream{trigger}.put('x');
  }
  BOOST_TEST_MESSAGE(accepted.size()
                     << " answered 202, " << refused << " refused");
  BOOST_REQUIRE(std::filesystem::exists(trigger));
  BOOST_TEST(accepted.size() >= 50u);
  auto code = f.process().wait_exit(std::chrono::seconds{30});
  BOOST_REQUIRE_MESSAGE(code, "the daemon still runs:\n" << f.process().log());
  BOOST_TEST(*code == 3, f.process().log());
  auto log = f.process().log();
  BOOST_TEST(count_of(log, "tocsin: store cannot go on: ") == 1u, log);
  BOOST_TEST(contains(log, "; exiting for the supervisor to restart\n"), log);

  // Started again as a supervisor would, the disk healthy again.
  std::filesystem::remove(trigger);
  f.set_environment({});
  f.restart();
  std::set<std::string> missing(accepted.begin(), accepted.end());
  std::size_t received = 0;
  bool all = eventually(
      [&] {
        auto requests = receiver->requests();
        for (; received < requests.size(); ++received)
          missing.erase(requests[received].headers["webhook-id"]);
        return missing.empty();
      },
      std::chrono::seconds{30});
  BOOST_TEST(all, missing.size() << " events answered 202 never delivered, "
                                    "e.g. "
                                 << (missing.empty() ? "" : *missing.begin()));
  std::set<std::string> distinct;
  for (auto& r : receiver->requests())
    distinct.insert(r.headers["webhook-id"]);
  BOOST_TEST_MESSAGE(receiver->count()
                     << " requests for " << distinct.size() << " events");
}

BOOST_AUTO_TEST_SUITE_END()
