#include "bench/pg_ceiling.hpp"

#include "storage/postgres/arrays.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include <pqxx/pqxx>

namespace tocsin::bench {

namespace {

using clock_type = std::chrono::steady_clock;

constexpr const char* table = "tocsin_ceiling";
constexpr std::size_t record_bytes = 500;

/// A key unique to (client, n), 31 bytes like tocsin's ids ("evt_" + ULID).
std::string key(int client, long n) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "evt_%03d_%023ld", client, n);
  return buf;
}

/// 500 bytes that do not compress.
std::string record() {
  std::string r(record_bytes, '\0');
  std::uint32_t x = 2463534242u;
  for (auto& c : r) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    c = static_cast<char>(x);
  }
  return r;
}

/// Runs one statement on its own (one commit, with synchronous_commit as
/// the server has it), as one round trip.
template <class... Params>
void exec(pqxx::connection& c, const std::string& sql, Params&&... params) {
  pqxx::nontransaction t{c};
  t.exec_params0(sql, std::forward<Params>(params)...);
}

/// `threads` connections, each calling `step(conn, thread, n)` (one commit,
/// n counting from 0) until `seconds` have passed, all starting together
/// once every one is connected; the commits a second, all together.
template <class Step>
double commits_per_second(const std::string& url, int threads, int seconds,
                          std::string& error, Step step) {
  std::atomic<int> ready{0};
  std::atomic<bool> go{false}, stop{false};
  std::atomic<long> commits{0};
  std::mutex mtx;
  std::vector<std::thread> workers;
  for (int i = 0; i < threads; ++i)
    workers.emplace_back([&, i] {
      try {
        pqxx::connection conn{url};
        ++ready;
        while (!go)
          std::this_thread::yield();
        for (long n = 0; !stop; ++n) {
          step(conn, i, n);
          ++commits;
        }
      } catch (const std::exception& e) {
        std::lock_guard g{mtx};
        if (error.empty())
          error = e.what();
        ++ready; // not to be waited for
      }
    });
  while (ready < threads)
    std::this_thread::sleep_for(std::chrono::milliseconds{1});
  auto start = clock_type::now();
  go = true;
  std::this_thread::sleep_for(std::chrono::seconds{seconds});
  stop = true;
  for (auto& w : workers)
    w.join();
  // Those answered after `stop` took that long too.
  auto secs = std::chrono::duration<double>(clock_type::now() - start).count();
  return static_cast<double>(commits.load()) / secs;
}

} // namespace

pg_ceiling_figures measure_pg_ceiling(const std::string& url, int clients,
                                      int batch_rows, int seconds) {
  pg_ceiling_figures f;
  f.clients = clients;
  f.batch_rows = batch_rows;
  f.seconds = seconds;
  try {
    pqxx::connection c{url};
    exec(c, std::string{"CREATE TABLE "} + table +
                " (id text COLLATE \"C\" PRIMARY KEY, record bytea NOT "
                "NULL)");
  } catch (const std::exception& e) {
    f.error = e.what();
    return f;
  }
  auto rec = record();
  std::string rec_hex = "\\x"; // bytea's hex input
  for (unsigned char c : rec) {
    static constexpr char hex[] = "0123456789abcdef";
    rec_hex += hex[c >> 4];
    rec_hex += hex[c & 15];
  }

  auto insert_one = std::string{"INSERT INTO "} + table +
                    " (id, record) VALUES ($1, $2::bytea)";
  f.commits_per_s = commits_per_second(
      url, clients, seconds, f.error, [&](pqxx::connection& c, int i, long n) {
        exec(c, insert_one, key(i, n), rec_hex);
      });
  if (!f.error.empty())
    return f;

  auto insert_many = std::string{"INSERT INTO "} + table +
                     " (id, record) SELECT * FROM unnest($1::text[], "
                     "$2::bytea[])";
  // The records' array is the same each time: built once.
  storage::postgres::array_literal records;
  for (int r = 0; r < batch_rows; ++r)
    records.add_bytes(rec);
  auto records_text = records.take();
  // Keys after every one-row phase's (clients 0 .. clients-1).
  f.batch_rows_per_s =
      batch_rows *
      commits_per_second(url, 1, seconds, f.error,
                         [&](pqxx::connection& c, int, long n) {
                           storage::postgres::array_literal ids;
                           for (int r = 0; r < batch_rows; ++r)
                             ids.add_text(key(clients, n * batch_rows + r));
                           exec(c, insert_many, ids.take(), records_text);
                         });
  return f;
}

std::string describe(const pg_ceiling_figures& f) {
  char buf[400];
  std::snprintf(buf, sizeof buf,
                "%d connections committing one-row INSERTs: %.0f commits/s; "
                "1 connection committing %d-row INSERTs: %.0f rows/s (%.0f "
                "commits/s); %d s each",
                f.clients, f.commits_per_s, f.batch_rows, f.batch_rows_per_s,
                f.batch_rows > 0 ? f.batch_rows_per_s / f.batch_rows : 0.0,
                f.seconds);
  std::string s = buf;
  if (!f.error.empty())
    s += " (stopped short: " + f.error + ")";
  return s;
}

} // namespace tocsin::bench
