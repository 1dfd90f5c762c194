#include "tests/support/pg_cluster.hpp"

#include "tests/support/run_command.hpp"

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>

#include <arpa/inet.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

namespace tocsin::test {

namespace {

const std::filesystem::path bin = "/usr/lib/postgresql/15/bin";

/// A port nothing listens on now (the kernel's pick for port 0).
std::uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    throw std::system_error(errno, std::generic_category(), "socket");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    throw std::system_error(errno, std::generic_category(), "bind");
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

/// Runs `argv` as the postgres user; throws with its output on failure.
command_result
as_postgres(std::vector<std::string> argv, const std::string& what,
            std::chrono::milliseconds timeout = std::chrono::seconds{60}) {
  std::vector<std::string> cmd{"/usr/sbin/runuser", "-u", "postgres", "--"};
  cmd.insert(cmd.end(), argv.begin(), argv.end());
  command_options o;
  o.timeout = timeout;
  o.cwd = "/";
  auto r = run_command(cmd, o);
  if (r.code != 0) {
    std::ostringstream msg;
    msg << what << " failed: " << r;
    throw std::runtime_error(msg.str());
  }
  return r;
}

void chown_to_postgres(const std::filesystem::path& p) {
  auto* pw = ::getpwnam("postgres");
  if (!pw)
    throw std::runtime_error("no postgres user: apt-get install postgresql");
  if (::chown(p.c_str(), pw->pw_uid, pw->pw_gid) != 0)
    throw std::system_error(errno, std::generic_category(),
                            "chown " + p.string());
}

} // namespace

bool postgres_installed() {
  return std::filesystem::exists(bin / "initdb") &&
         std::filesystem::exists("/usr/sbin/runuser") &&
         ::getpwnam("postgres") != nullptr;
}

void pg_cluster::make_dirs() {
  auto templ =
      (std::filesystem::temp_directory_path() / "tocsin-pg-XXXXXX").string();
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr)
    throw std::system_error(errno, std::generic_category(), "mkdtemp");
  root_ = buf.data();
  // The postgres user must reach its directories inside ours.
  ::chmod(root_.c_str(), 0711);
  data_ = root_ / "data";
  sockets_ = root_ / "sockets";
  std::filesystem::create_directory(sockets_);
  chown_to_postgres(sockets_);
  std::filesystem::create_directory(data_);
  ::chmod(data_.c_str(), 0700);
  chown_to_postgres(data_);
}

pg_cluster::pg_cluster(options opts) : opts_(std::move(opts)) {
  make_dirs();
  as_postgres({(bin / "initdb").string(), "-D", data_.string(), "-A", "trust",
               "-U", "postgres", "--no-sync", "-E", "UTF8", "--locale=C"},
              "initdb");
  if (opts_.replication) {
    // In the files, not on the command line: a base backup copies them, so
    // a standby has them too (a standby needs max_wal_senders and the
    // like no lower than its primary's).
    std::ofstream conf{data_ / "postgresql.conf", std::ios::app};
    conf << "\n# tests/support/pg_cluster: replication\n"
            "wal_level = replica\n"
            "max_wal_senders = 10\n"
            "max_replication_slots = 10\n"
            "wal_keep_size = 64MB\n"
            "hot_standby = on\n";
    std::ofstream hba{data_ / "pg_hba.conf", std::ios::app};
    hba << "host replication postgres 127.0.0.1/32 trust\n";
    if (!conf || !hba)
      throw std::runtime_error("cannot write the replication settings in " +
                               data_.string());
  }
  port_ = free_port();
  start();
  psql("CREATE DATABASE tocsin", "postgres");
}

pg_cluster::pg_cluster(standby_tag, const pg_cluster& primary, std::string name)
    : opts_(primary.opts_), standby_name_(std::move(name)) {
  if (!primary.opts_.replication)
    throw std::logic_error("make_standby: the primary was not made with "
                           "pg_options::replication");
  if (!primary.running_)
    throw std::logic_error("make_standby: the primary is not running");
  make_dirs();
  as_postgres({(bin / "pg_basebackup").string(), "-d",
               "host=127.0.0.1 port=" + std::to_string(primary.port_) +
                   " user=postgres application_name=" + standby_name_,
               "-D", data_.string(), "-R", "-X", "stream", "-c", "fast",
               "--no-sync"},
              "pg_basebackup");
  // The primary's log came along with its files.
  std::error_code ec;
  std::filesystem::remove(data_ / "server.log", ec);
  port_ = free_port();
  start();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{30};
  while (primary.replication_state(standby_name_).rfind("streaming", 0) != 0) {
    if (std::chrono::steady_clock::now() > deadline)
      throw std::runtime_error("standby " + standby_name_ +
                               " is not streaming from the primary after 30 "
                               "s; its log:\n" +
                               server_log());
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  }
}

std::unique_ptr<pg_cluster>
pg_cluster::make_standby(const std::string& name) const {
  return std::make_unique<pg_cluster>(standby_tag{}, *this, name);
}

std::string pg_cluster::replication_state(const std::string& name) const {
  auto out = psql("SELECT state || '|' || sync_state FROM pg_stat_replication "
                  "WHERE application_name = '" +
                      name + "'",
                  "postgres");
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r'))
    out.pop_back();
  return out;
}

void pg_cluster::make_synchronous(const std::string& name,
                                  std::chrono::milliseconds timeout) {
  psql("ALTER SYSTEM SET synchronous_standby_names = '" + name + "'",
       "postgres");
  psql("SELECT pg_reload_conf()", "postgres");
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string state;
  while ((state = replication_state(name)) != "streaming|sync") {
    if (std::chrono::steady_clock::now() > deadline)
      throw std::runtime_error("standby " + name +
                               " is not a streaming synchronous standby "
                               "after " +
                               std::to_string(timeout.count()) +
                               " ms; pg_stat_replication says \"" + state +
                               "\"");
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  }
}

bool pg_cluster::in_recovery() const {
  return psql("SELECT pg_is_in_recovery()", "postgres") == "t\n";
}

void pg_cluster::promote() {
  as_postgres({(bin / "pg_ctl").string(), "-D", data_.string(), "-w", "-t",
               "60", "promote"},
              "pg_ctl promote");
}

std::string pg_cluster::server_log() const {
  std::ifstream in{data_ / "server.log"};
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string read_write_url(const std::vector<const pg_cluster*>& servers,
                           const std::string& db) {
  std::string hosts;
  for (auto* s : servers)
    hosts += (hosts.empty() ? "" : ",") + std::string{"127.0.0.1:"} +
             std::to_string(s->port());
  return "postgresql://postgres@" + hosts + "/" + db +
         "?target_session_attrs=read-write";
}

pg_cluster::~pg_cluster() {
  try {
    if (running_)
      stop("immediate");
  } catch (...) {
    // The directory goes anyway; a stray server dies with its files.
  }
  if (std::getenv("TOCSIN_KEEP_TEST_DIRS") != nullptr)
    return;
  std::error_code ec;
  std::filesystem::remove_all(root_, ec);
}

std::string pg_cluster::url(const std::string& db) const {
  return "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/" + db;
}

void pg_cluster::start() {
  std::string server_opts = "-p " + std::to_string(port_) + " -k " +
                            sockets_.string() +
                            " -c listen_addresses=127.0.0.1";
  for (auto& s : opts_.settings)
    server_opts += " -c " + s;
  as_postgres({(bin / "pg_ctl").string(), "-D", data_.string(), "-w", "-t",
               "60", "-l", (data_ / "server.log").string(), "-o", server_opts,
               "start"},
              "pg_ctl start");
  running_ = true;
}

void pg_cluster::stop(const std::string& mode) {
  as_postgres({(bin / "pg_ctl").string(), "-D", data_.string(), "-w", "-m",
               mode, "stop"},
              "pg_ctl stop");
  running_ = false;
}

std::string pg_cluster::psql(const std::string& sql,
                             const std::string& db) const {
  return as_postgres({"/usr/bin/psql", "-X", "-q", "-A", "-t", "-v",
                      "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p",
                      std::to_string(port_), "-U", "postgres", "-d", db, "-c",
                      sql},
                     "psql")
      .out;
}

} // namespace tocsin::test
