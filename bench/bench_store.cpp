#include "bench/bench_store.hpp"

#include "bench/bench_util.hpp"
#include "bench/pg_ceiling.hpp"

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <sys/vfs.h>

namespace tocsin::bench {

namespace {

constexpr const char* ceiling_database = "tocsin_ceiling";
constexpr int ceiling_batch_rows = 100; ///< what a group commit often holds
constexpr int ceiling_seconds = 3;

/// The file system `p` (or the nearest directory above it that exists) is
/// on: "ext4", "tmpfs", ...
std::string file_system(std::filesystem::path p) {
  std::error_code ec;
  while (!std::filesystem::exists(p, ec) && p.has_parent_path() &&
         p != p.parent_path())
    p = p.parent_path();
  struct statfs s {};
  if (::statfs(p.c_str(), &s) != 0)
    return "an unknown file system";
  switch (static_cast<unsigned long>(s.f_type)) {
  case 0xEF53:
    return "ext2/3/4";
  case 0x01021994:
    return "tmpfs";
  case 0x58465342:
    return "xfs";
  case 0x9123683E:
    return "btrfs";
  case 0x794c7630:
    return "overlayfs";
  case 0x2fc12fc1:
    return "zfs";
  default:
    char buf[40];
    std::snprintf(buf, sizeof buf, "file system 0x%lx",
                  static_cast<unsigned long>(s.f_type));
    return buf;
  }
}

/// psql's answer without its final newline.
std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r'))
    s.pop_back();
  return s;
}

} // namespace

void bench_store::check_flags(const std::string& kind, int pg_clients) {
  if ((kind != "rocksdb" && kind != "postgres") || pg_clients < 1) {
    std::cerr << "--store must be rocksdb or postgres, --pg-clients at least "
                 "1\n";
    std::exit(2);
  }
  if (kind == "postgres" && !test::postgres_installed()) {
    std::cerr << "PostgreSQL 15 not found (/usr/lib/postgresql/15/bin, user "
                 "postgres): apt-get install postgresql-15\n";
    std::exit(2);
  }
}

bench_store::bench_store(const std::string& kind,
                         std::filesystem::path data_dir, int pg_clients,
                         std::vector<std::string> settings)
    : data_dir_(std::move(data_dir)), pg_clients_(pg_clients) {
  if (kind == "postgres") // creates "tocsin"
    cluster_ = std::make_unique<test::pg_cluster>(
        test::pg_options{.settings = std::move(settings)});
}

bench_store::~bench_store() = default;

std::string bench_store::flags() const {
  if (!cluster_)
    return " --store rocksdb";
  return " --store postgres --pg-clients " + std::to_string(pg_clients_);
}

std::string bench_store::config_toml() const {
  if (!cluster_)
    return "";
  return "\n[storage]\nbackend = \"postgres\"\npostgres_url = \"" +
         cluster_->url(database_) + "\"\n";
}

void bench_store::use_new_database(const std::string& name) {
  if (!cluster_)
    throw std::logic_error("use_new_database: the store is not PostgreSQL");
  cluster_->psql("CREATE DATABASE " + name, "postgres");
  database_ = name;
}

std::string bench_store::query(const std::string& sql) const {
  if (!cluster_)
    throw std::logic_error("query: the store is not PostgreSQL");
  return cluster_->psql(sql, database_);
}

std::string bench_store::description() const {
  if (!cluster_)
    return "rocksdb (embedded, in the daemon's data_dir, on " +
           file_system(data_dir_) + ")";
  // psql -A separates the columns with '|'.
  std::istringstream row{trimmed(cluster_->psql(
      "SELECT split_part(current_setting('server_version'), ' ', 1), "
      "current_setting('shared_buffers'), "
      "current_setting('synchronous_commit'), current_setting('fsync'), "
      "current_setting('wal_sync_method'), current_setting('max_wal_size')"))};
  std::string version, shared_buffers, synchronous_commit, fsync, sync_method,
      max_wal_size;
  for (auto* v : {&version, &shared_buffers, &synchronous_commit, &fsync,
                  &sync_method, &max_wal_size})
    std::getline(row, *v, '|');
  return "postgres: PostgreSQL " + version + ", started for this run on " +
         "127.0.0.1:" + std::to_string(cluster_->port()) + ", data on " +
         file_system(cluster_->data_dir()) +
         "; server defaults, nothing tuned (shared_buffers " + shared_buffers +
         ", synchronous_commit " + synchronous_commit + ", fsync " + fsync +
         ", wal_sync_method " + sync_method + ", max_wal_size " + max_wal_size +
         ")";
}

std::string bench_store::measure_ceiling() {
  if (!cluster_)
    return "";
  cluster_->psql(std::string{"CREATE DATABASE "} + ceiling_database,
                 "postgres");
  ceiling_ = measure_pg_ceiling(cluster_->url(ceiling_database), pg_clients_,
                                ceiling_batch_rows, ceiling_seconds);
  cluster_->psql(std::string{"DROP DATABASE "} + ceiling_database, "postgres");
  cluster_->psql("CHECKPOINT", "postgres");
  return describe(ceiling_);
}

double bench_store::cpu_seconds() const {
  if (!cluster_)
    return 0;
  pid_t postmaster = -1;
  std::ifstream{cluster_->data_dir() / "postmaster.pid"} >> postmaster;
  return postmaster > 0 ? server_cpu_seconds(postmaster) : 0;
}

bench_store::work_figures bench_store::work(std::size_t events) const {
  if (!cluster_ || events == 0)
    return {};
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{5};
  while (trimmed(cluster_->psql("SELECT count(*) FROM pg_stat_activity WHERE "
                                "datname = '" +
                                    database_ + "'",
                                "postgres")) != "0" &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds{50});
  auto n = static_cast<double>(events);
  std::istringstream totals{trimmed(cluster_->psql(
      "SELECT xact_commit, tup_inserted + tup_updated + tup_deleted FROM "
      "pg_stat_database WHERE datname = '" +
          database_ + "'",
      "postgres"))};
  double commits = 0, rows = 0;
  char bar = 0;
  totals >> commits >> bar >> rows;
  work_figures w;
  w.rows_per_event = rows / n;
  w.commits_per_event = commits / n;
  // Which tables, most first.
  std::istringstream tables{cluster_->psql(
      "SELECT relname, n_tup_ins + n_tup_upd + n_tup_del AS w FROM "
      "pg_stat_user_tables ORDER BY w DESC, relname",
      database_)};
  std::string sep;
  char buf[40];
  for (std::string line; std::getline(tables, line);) {
    auto at = line.find('|');
    if (at == std::string::npos)
      continue;
    auto per_event = std::stod(line.substr(at + 1)) / n;
    if (per_event < 0.005)
      continue;
    std::snprintf(buf, sizeof buf, "%.2f", per_event);
    w.by_table += sep + line.substr(0, at) + " " + buf;
    sep = ", ";
  }
  return w;
}

std::string bench_store::work_per_event(std::size_t events) const {
  if (!cluster_ || events == 0)
    return "";
  auto w = work(events);
  char buf[200];
  std::snprintf(buf, sizeof buf, "%.2f rows written per event (",
                w.rows_per_event);
  std::string out = buf + w.by_table;
  std::snprintf(buf, sizeof buf,
                ") and %.3f transactions committed (reads included)",
                w.commits_per_event);
  return out + buf;
}

std::uintmax_t bench_store::bytes() const {
  if (!cluster_)
    return dir_bytes(data_dir_);
  return std::stoull(trimmed(cluster_->psql(
      "SELECT pg_database_size('" + database_ + "')", "postgres")));
}

const char* bench_store::bytes_note() const {
  return cluster_ ? "in PostgreSQL (pg_database_size, without the WAL)"
                  : "on disk";
}

} // namespace tocsin::bench
