// The config file's endpoints against the stored ones: what is created,
// updated, taken over from the API and removed, and what is left alone.
#include "endpoints/reconcile.hpp"

#include <boost/test/unit_test.hpp>

using namespace tocsin;
using namespace tocsin::endpoints;

namespace {

endpoint_definition stored(std::string id, std::string source,
                           std::string url = "https://hooks.example/in") {
  endpoint_definition d;
  d.id = std::move(id);
  d.url = std::move(url);
  d.source = std::move(source);
  d.created_at = 1000;
  d.updated_at = 2000;
  d.revision = 4;
  return d;
}

endpoint_entry declared(std::string id,
                        std::string url = "https://hooks.example/in") {
  endpoint_entry e;
  e.definition.id = std::move(id);
  e.definition.url = std::move(url);
  return e;
}

} // namespace

BOOST_AUTO_TEST_SUITE(endpoint_plan)

BOOST_AUTO_TEST_CASE(the_file_is_authoritative_for_its_endpoints_only) {
  std::map<std::string, endpoint_definition> store;
  for (auto d :
       {stored("same", "config"), stored("changed", "config"),
        stored("gone", "config"), stored("api", "api"), stored("taken", "api")})
    store.emplace(d.id, d);
  auto plan = plan_endpoints(store,
                             {declared("same"),
                              declared("changed", "https://hooks.example/b"),
                              declared("new"), declared("taken")},
                             9000);
  using kind = planned_change::kind;
  BOOST_REQUIRE_EQUAL(plan.changes.size(), 4u);
  auto& changed = plan.changes[0];
  BOOST_TEST(changed.definition.id == "changed");
  BOOST_TEST((changed.what == kind::update));
  BOOST_TEST(changed.based_on == 4);
  BOOST_TEST(changed.definition.revision == 5);
  BOOST_TEST(changed.definition.created_at == 1000);
  BOOST_TEST(changed.definition.updated_at == 9000);
  BOOST_TEST(changed.definition.url == "https://hooks.example/b");
  BOOST_TEST(!changed.takes_over);
  auto& gone = plan.changes[1];
  BOOST_TEST(gone.definition.id == "gone");
  BOOST_TEST((gone.what == kind::remove));
  BOOST_TEST(gone.based_on == 4);
  auto& made = plan.changes[2];
  BOOST_TEST(made.definition.id == "new");
  BOOST_TEST((made.what == kind::create));
  BOOST_TEST(made.definition.revision == 1);
  BOOST_TEST(made.definition.source == "config");
  auto& taken = plan.changes[3];
  BOOST_TEST(taken.definition.id == "taken");
  BOOST_TEST((taken.what == kind::update));
  BOOST_TEST(taken.takes_over);
  BOOST_TEST(taken.definition.source == "config");
  BOOST_TEST(plan.created == 1u);
  BOOST_TEST(plan.updated == 2u);
  BOOST_TEST(plan.removed == 1u);
  // What runs after: the API's endpoint untouched, the unchanged one as
  // stored, the removed one gone.
  std::vector<std::string> ids;
  for (auto& [id, def] : plan.endpoints)
    ids.push_back(id);
  BOOST_TEST(ids == (std::vector<std::string>{"api", "changed", "new", "same",
                                              "taken"}),
             boost::test_tools::per_element());
  BOOST_TEST(plan.endpoints.at("api").source == "api");
  BOOST_TEST(plan.endpoints.at("same").revision == 4);
}

BOOST_AUTO_TEST_CASE(the_same_file_again_changes_nothing) {
  std::map<std::string, endpoint_definition> store;
  store.emplace("a", stored("a", "config"));
  auto plan = plan_endpoints(store, {declared("a")}, 9000);
  BOOST_TEST(plan.changes.empty());
  BOOST_TEST(plan.endpoints.size() == 1u);
}

BOOST_AUTO_TEST_SUITE_END()
