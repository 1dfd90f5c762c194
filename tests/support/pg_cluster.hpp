// A throwaway PostgreSQL 15 cluster for tests: initdb and pg_ctl on a
// directory of its own and a free port on 127.0.0.1, run as the `postgres`
// user (PostgreSQL refuses to run as root, and CI runs as root). Stopped
// hard and removed when the object goes. One per test binary is the
// intended use: starting one takes about a second.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace tocsin::test {

struct pg_options {
  /// Extra server settings, "name=value" (passed as -c).
  std::vector<std::string> settings = {};
};

class pg_cluster {
public:
  using options = pg_options;

  /// initdb + start + `CREATE DATABASE tocsin`. Throws std::runtime_error
  /// with the commands' output when PostgreSQL cannot be started.
  explicit pg_cluster(options opts = {});
  ~pg_cluster();
  pg_cluster(const pg_cluster&) = delete;
  pg_cluster& operator=(const pg_cluster&) = delete;

  std::uint16_t port() const { return port_; }
  const std::filesystem::path& data_dir() const { return data_; }

  /// A libpq URL of database `db` as the superuser over TCP.
  std::string url(const std::string& db = "tocsin") const;

  /// pg_ctl stop: "fast" (clean) or "immediate" (a crash).
  void stop(const std::string& mode = "fast");
  /// pg_ctl start on the same port, waiting until it accepts connections.
  void start();

  /// Runs one SQL command with psql on `db`; its output (unaligned, tuples
  /// only). Throws on failure.
  std::string psql(const std::string& sql,
                   const std::string& db = "tocsin") const;

private:
  std::filesystem::path root_;
  std::filesystem::path data_;
  std::filesystem::path sockets_;
  std::uint16_t port_ = 0;
  options opts_;
  bool running_ = false;
};

/// Whether PostgreSQL's server binaries are installed (tests skip with a
/// message naming the package when they are not).
bool postgres_installed();

} // namespace tocsin::test
