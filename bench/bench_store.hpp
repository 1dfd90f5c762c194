// The store the daemon under test writes to, as a benchmark's --store flag
// names it: "rocksdb" (the default), the embedded store in the daemon's
// data_dir; or "postgres", a PostgreSQL 15 cluster that the benchmark
// starts for itself (tests/support/pg_cluster: initdb, pg_ctl as the
// postgres user, a free port on 127.0.0.1, stopped and removed at the end)
// with the server's own defaults, nothing tuned: shared_buffers and
// synchronous_commit included, as a user who installs PostgreSQL has them
// (the report says which values they had). The daemon gets its database,
// "tocsin", in the [storage] table of its config.
//
// With postgres, the report also gets PostgreSQL's own commit ceiling on
// that cluster, measured before the daemon starts (pg_ceiling.hpp), and
// PostgreSQL's CPU time beside the daemon's.
#pragma once

#include "bench/pg_ceiling.hpp"
#include "tests/support/pg_cluster.hpp"

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace tocsin::bench {

class bench_store {
public:
  /// The flags, for a benchmark's usage line.
  static constexpr const char* usage =
      "[--store rocksdb|postgres] [--pg-clients N]";
  /// Exits 2 with a message, as a bad flag does, unless `kind` is rocksdb
  /// or postgres and `pg_clients` at least 1; exits 2 for postgres when
  /// PostgreSQL 15 is not installed.
  static void check_flags(const std::string& kind, int pg_clients);

  /// With "postgres", starts the cluster and creates the database; throws
  /// std::runtime_error with the commands' output when it cannot.
  /// `data_dir`: the daemon's (it need not exist yet). `pg_clients`: the
  /// connections of the ceiling's one-row phase. `settings`: server
  /// settings beyond the defaults ("name=value", for a diagnostic run).
  bench_store(const std::string& kind, std::filesystem::path data_dir,
              int pg_clients, std::vector<std::string> settings = {});
  ~bench_store();
  bench_store(const bench_store&) = delete;
  bench_store& operator=(const bench_store&) = delete;

  bool postgres() const { return cluster_ != nullptr; }

  /// " --store rocksdb", or " --store postgres --pg-clients N": for the
  /// command line a report echoes.
  std::string flags() const;

  /// The daemon config's [storage] table; empty for RocksDB, the default.
  std::string config_toml() const;

  /// With postgres: creates database `name` (which must not exist) and
  /// makes it the one that config_toml(), work_per_event(), work() and
  /// bytes() name from now on ("tocsin" until then): for a benchmark that
  /// runs several daemons, one configuration after another, each on a
  /// database of its own in the same cluster. Throws for RocksDB.
  void use_new_database(const std::string& name);

  /// With postgres: runs `sql` with psql on that database; its output
  /// (unaligned, '|' between columns, tuples only). Throws on failure and
  /// for RocksDB.
  std::string query(const std::string& sql) const;

  /// For the report's store line: which store, where, on what file system,
  /// and for PostgreSQL its version and the settings that commits depend
  /// on, as the server had them.
  std::string description() const;

  /// PostgreSQL's commit ceiling on this cluster, measured now (about
  /// 2 x 3 s) in a database of its own, dropped after, followed by a
  /// CHECKPOINT so that what it wrote is not flushed during the window
  /// measured next; the line for the report. Empty for RocksDB.
  std::string measure_ceiling();
  /// The figures of the last measure_ceiling() (clients 0 before any).
  const pg_ceiling_figures& ceiling() const { return ceiling_; }

  /// User + system CPU seconds that PostgreSQL's processes have used so far
  /// (server_cpu_seconds of the postmaster, its pid the first line of
  /// postmaster.pid); 0 for RocksDB, which runs in the daemon's process.
  double cpu_seconds() const;

  /// What PostgreSQL did for the daemon, per event, over the database's
  /// whole life (so also at the daemon's start; pg_stat_database):
  /// rows written (inserted, updated or deleted), in all and by table, and
  /// transactions committed (reads included). Call it once the daemon has
  /// stopped: it waits up to 5 s for the daemon's connections to end, as their
  /// counts reach the statistics when they do. Empty for RocksDB.
  std::string work_per_event(std::size_t events) const;

  /// The figures of work_per_event() (which formats them): rows written
  /// and transactions committed per event, and the tables, most written
  /// first ("events 1.00, deliveries 3.00"). Zeros for RocksDB.
  struct work_figures {
    double rows_per_event = 0;
    double commits_per_event = 0;
    std::string by_table;
  };
  work_figures work(std::size_t events) const;

  /// The store's size: the files under the daemon's data_dir, or the
  /// database's (pg_database_size, which leaves out the WAL).
  std::uintmax_t bytes() const;
  /// What bytes() measured, for the report: "on disk" or "in PostgreSQL
  /// (pg_database_size, without the WAL)".
  const char* bytes_note() const;

private:
  std::filesystem::path data_dir_;
  int pg_clients_;
  std::string database_ = "tocsin"; ///< the daemon's, with postgres
  pg_ceiling_figures ceiling_;
  std::unique_ptr<test::pg_cluster> cluster_; ///< with postgres only
};

} // namespace tocsin::bench
