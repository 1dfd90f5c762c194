// The one PostgreSQL of a test binary, started on first use and stopped
// when the binary exits, and a fresh database in it per test case.
#pragma once

#include "tests/support/pg_cluster.hpp"

#include <boost/test/unit_test.hpp>

#include <memory>
#include <string>

namespace tocsin::test {

inline pg_cluster& cluster() {
  static std::unique_ptr<pg_cluster> pg = [] {
    BOOST_TEST_REQUIRE(postgres_installed(),
                       "PostgreSQL 15 is not installed: apt-get install "
                       "postgresql (scripts/install-deps.sh --test)");
    return std::make_unique<pg_cluster>();
  }();
  return *pg;
}

/// A new, empty database named `name` (dropped first if a run left it);
/// its URL.
inline std::string fresh_database(const std::string& name) {
  auto& pg = cluster();
  pg.psql("DROP DATABASE IF EXISTS " + name, "postgres");
  pg.psql("CREATE DATABASE " + name, "postgres");
  return pg.url(name);
}

} // namespace tocsin::test
