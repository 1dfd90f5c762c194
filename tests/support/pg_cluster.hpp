// A throwaway PostgreSQL 15 cluster for tests: initdb and pg_ctl on a
// directory of its own and a free port on 127.0.0.1, run as the `postgres`
// user (PostgreSQL refuses to run as root, and CI runs as root). Stopped
// hard and removed when the object goes. One per test binary is the
// intended use: starting one takes about a second.
//
// For failover tests a cluster made with `replication = true` can have
// standbys: make_standby() takes a base backup of it into a directory of
// the standby's own and starts that on a port of its own, streaming from
// the primary; make_synchronous() makes the primary wait for it on every
// commit; promote() turns a standby into a primary.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace tocsin::test {

struct pg_options {
  /// Extra server settings, "name=value" (passed as -c).
  std::vector<std::string> settings = {};
  /// Ready to have standbys: wal_level = replica, WAL senders, and a
  /// `host replication postgres 127.0.0.1/32 trust` line in pg_hba.conf.
  bool replication = false;
};

class pg_cluster {
  struct standby_tag {};

public:
  using options = pg_options;

  /// initdb + start + `CREATE DATABASE tocsin`. Throws std::runtime_error
  /// with the commands' output when PostgreSQL cannot be started.
  explicit pg_cluster(options opts = {});
  /// A standby of `primary` (use make_standby).
  pg_cluster(standby_tag, const pg_cluster& primary, std::string name);
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
  bool running() const { return running_; }

  /// Runs one SQL command with psql on `db`; its output (unaligned, tuples
  /// only). Throws on failure.
  std::string psql(const std::string& sql,
                   const std::string& db = "tocsin") const;

  /// The server's own log (for a failing test's message).
  std::string server_log() const;

  // ---- Replication --------------------------------------------------------

  /// A standby of this running primary (made with `replication = true`),
  /// known to it as `name` (its application_name): pg_basebackup into a
  /// directory of its own, started on a free port of its own, returned once
  /// pg_stat_replication on this primary shows it streaming. Asynchronous
  /// until make_synchronous(name). Stopped and removed when the object goes.
  std::unique_ptr<pg_cluster> make_standby(const std::string& name) const;

  /// Makes the running standby `name` synchronous: every commit on this
  /// primary waits until the standby has flushed it. Returns once
  /// pg_stat_replication shows it streaming with sync_state `sync`; throws
  /// if it does not within `timeout`. (Only once the standby is running:
  /// set before, every commit waits for it.)
  void make_synchronous(
      const std::string& name,
      std::chrono::milliseconds timeout = std::chrono::seconds{30});

  /// The state of standby `name` in this primary's pg_stat_replication,
  /// "state|sync_state" (e.g. "streaming|sync"); empty when not connected.
  std::string replication_state(const std::string& name) const;

  /// This server is a standby still (pg_is_in_recovery()).
  bool in_recovery() const;

  /// pg_ctl promote -w: this standby becomes a primary, returns once it
  /// takes writes.
  void promote();

  /// The standby's name; empty for a primary made by initdb.
  const std::string& standby_name() const { return standby_name_; }

private:
  void make_dirs();

  std::filesystem::path root_;
  std::filesystem::path data_;
  std::filesystem::path sockets_;
  std::uint16_t port_ = 0;
  options opts_;
  bool running_ = false;
  std::string standby_name_;
};

/// A libpq URL naming several servers, for the one that takes writes:
/// "postgresql://postgres@127.0.0.1:P1,127.0.0.1:P2/<db>?target_session_attrs=read-write".
std::string read_write_url(const std::vector<const pg_cluster*>& servers,
                           const std::string& db = "tocsin");

/// Whether PostgreSQL's server binaries are installed (tests skip with a
/// message naming the package when they are not).
bool postgres_installed();

} // namespace tocsin::test
