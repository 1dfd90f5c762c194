// Opening the PostgreSQL store, its connections, and whether it takes
// writes. Commits: commit.cpp; reads: reads.cpp; retention: retention.cpp.
#include "storage/postgres/postgres_store.hpp"

#include "common/conninfo.hpp"
#include "common/ids.hpp"
#include "common/log.hpp"
#include "storage/postgres/news.hpp"
#include "storage/postgres/schema.hpp"
#include "storage/postgres/store_impl.hpp"

#include <pqxx/pqxx>

#include <cstdlib>
#include <unistd.h>

namespace tocsin::storage {

namespace postgres {

error store_failure(const std::exception& e) {
  std::string what = e.what();
  while (!what.empty() && (what.back() == '\n' || what.back() == ' '))
    what.pop_back();
  if (dynamic_cast<const pqxx::broken_connection*>(&e) ||
      dynamic_cast<const pqxx::in_doubt_error*>(&e))
    return error{"store_unavailable", "PostgreSQL is out of reach: " + what};
  if (auto* sql = dynamic_cast<const pqxx::sql_error*>(&e)) {
    // Class 08 (connection exception), 57P01-57P03 (the server shutting
    // down or starting), 25006 (read-only: a standby, before promotion):
    // all pass by themselves.
    auto state = sql->sqlstate();
    if (state.starts_with("08") || state.starts_with("57P") || state == "25006")
      return error{"store_unavailable", "PostgreSQL: " + what};
  }
  return error{"store_error", "PostgreSQL: " + what};
}

reader_pool::~reader_pool() = default;

std::unique_ptr<pqxx::connection> reader_pool::take(bool& open_new) {
  std::unique_lock lock{mtx_};
  cv_.wait(lock, [&] { return !idle_.empty() || open_ < max_open_; });
  open_new = false;
  if (!idle_.empty()) {
    auto c = std::move(idle_.back());
    idle_.pop_back();
    return c;
  }
  ++open_;
  open_new = true;
  return nullptr;
}

void reader_pool::give_back(std::unique_ptr<pqxx::connection> c) {
  {
    std::lock_guard lock{mtx_};
    idle_.push_back(std::move(c));
  }
  cv_.notify_one();
}

void reader_pool::forget() {
  {
    std::lock_guard lock{mtx_};
    --open_;
  }
  cv_.notify_one();
}

status reader_pool::with(const std::function<status(pqxx::connection&)>& fn) {
  for (int round = 0;; ++round) {
    bool open_new = false;
    auto c = take(open_new);
    bool pooled = !open_new;
    try {
      if (open_new)
        c = std::make_unique<pqxx::connection>(url_);
      auto st = fn(*c);
      give_back(std::move(c));
      return st;
    } catch (const std::exception& e) {
      auto failure = store_failure(e);
      bool broken = !c || !c->is_open() || failure.code == "store_unavailable";
      if (broken)
        forget();
      else
        give_back(std::move(c));
      // A pooled connection that broke may predate a restart of the
      // database: one more try on a new one.
      if (broken && pooled && round == 0)
        continue;
      return failure;
    }
  }
}

postgres_store::postgres_store(std::string url, std::uint64_t last_seq)
    : url_(std::move(url)), readers_(url_, 4), last_seq_(last_seq) {
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  session_name_ = "tocsin " + std::string{host} + " " +
                  std::to_string(::getpid()) + " " + new_ulid().substr(16);
}

postgres_store::~postgres_store() {
  // Its thread calls into this store: stopped first.
  listener_.reset();
}

void postgres_store::lost_writer(const std::exception& e) {
  conn_.reset();
  std::lock_guard lock{health_mtx_};
  if (down_.empty())
    log::error("PostgreSQL out of reach; new events are refused with 503 "
               "until it is back",
               {{"error", store_failure(e).message}});
  down_ = store_failure(e).message;
  next_connect_ = std::chrono::steady_clock::now() + std::chrono::seconds{1};
}

status postgres_store::connect_writer() {
  if (conn_ && conn_->is_open())
    return {};
  conn_.reset();
  {
    std::lock_guard lock{health_mtx_};
    if (!down_.empty() && std::chrono::steady_clock::now() < next_connect_)
      return error{"store_unavailable", down_};
  }
  try {
    auto c = std::make_unique<pqxx::connection>(url_);
    // Session settings go through libpqxx (outside a transaction), which
    // sets them again on a connection it reopens by itself (it does when a
    // BEGIN finds the connection gone).
    //
    // Named, with a token of this store's own, so that a session of ours
    // the server still holds after the connection broke (it notices late:
    // TCP keepalive) can be told apart from every other session (another
    // node's, another store's) and ended below: a transaction it was in
    // would hold the log head's lock, which every node's commits wait for.
    c->set_variable("application_name", c->quote(session_name_));
    // For a session cut off in a transaction that the server still holds
    // when we are gone for good (a partition, a crash of this machine): the
    // server ends it. Between the statements of a commit the writer only
    // builds the next one.
    c->set_variable("idle_in_transaction_session_timeout", "'10s'");
    // A multi-host URL may land on a standby when no host takes writes.
    pqxx::nontransaction t{*c};
    if (t.exec1("SELECT pg_is_in_recovery()")[0].as<bool>())
      throw pqxx::broken_connection{"the server is a standby (read-only)"};
    t.exec_params("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                  "WHERE application_name = $1 AND pid <> pg_backend_pid()",
                  session_name_);
    prepare_writes(*c);
    conn_ = std::move(c);
  } catch (const std::exception& e) {
    lost_writer(e);
    return error{"store_unavailable", store_failure(e).message};
  }
  std::lock_guard lock{health_mtx_};
  if (!down_.empty())
    log::warn("PostgreSQL reachable again; taking writes");
  down_.clear();
  return {};
}

status postgres_store::start() {
  std::unique_lock lock{mtx_}; // nobody else yet; for form's sake
  return connect_writer();
}

status postgres_store::reachable_now() {
  std::lock_guard lock{health_mtx_};
  if (!down_.empty() && std::chrono::steady_clock::now() < next_connect_)
    return error{"store_unavailable", down_};
  return {};
}

status postgres_store::writable() {
  {
    std::lock_guard lock{health_mtx_};
    if (down_.empty())
      return {};
    if (std::chrono::steady_clock::now() < next_connect_)
      return error{"store_unavailable", down_};
    next_connect_ = std::chrono::steady_clock::now() + std::chrono::seconds{1};
  }
  // A connection of its own: the writer's belongs to the committer in turn.
  try {
    pqxx::connection c{url_};
    pqxx::nontransaction t{c};
    if (t.exec1("SELECT pg_is_in_recovery()")[0].as<bool>())
      return error{"store_unavailable",
                   "PostgreSQL: the server is a standby (read-only)"};
  } catch (const std::exception& e) {
    std::lock_guard lock{health_mtx_};
    down_ = store_failure(e).message;
    return error{"store_unavailable", down_};
  }
  std::lock_guard lock{health_mtx_};
  // Reachable: the next commit opens its connection without waiting.
  next_connect_ = {};
  return {};
}

} // namespace postgres

result<std::unique_ptr<store>> open_postgres_store(const store_options& opts) {
  if (opts.postgres_url.empty())
    return error{"bad_config", "storage.postgres_url is empty"};
  // A host that does not answer must not hold a connection attempt for
  // ever (libpq's default): the environment's setting wins when given.
  ::setenv("PGCONNECT_TIMEOUT", "5", 0);
  try {
    pqxx::connection c{opts.postgres_url};
    if (!opts.create_if_missing) {
      auto version = postgres::stored_schema_version(c);
      if (!version)
        return version.error();
      if (*version == 0)
        return error{"store_missing", "no tocsin schema in the database at " +
                                          mask_password(opts.postgres_url)};
    }
    TOCSIN_TRY(postgres::migrate(c));
    pqxx::read_transaction t{c};
    auto seq = t.exec1("SELECT seq FROM tocsin_log_head")[0].as<long long>();
    auto s = std::make_unique<postgres::postgres_store>(
        opts.postgres_url, static_cast<std::uint64_t>(seq));
    TOCSIN_TRY(s->start());
    return std::unique_ptr<store>{std::move(s)};
  } catch (const std::exception& e) {
    auto failure = postgres::store_failure(e);
    failure.message = "cannot open the PostgreSQL store at " +
                      mask_password(opts.postgres_url) + ": " + failure.message;
    return failure;
  }
}

} // namespace tocsin::storage
