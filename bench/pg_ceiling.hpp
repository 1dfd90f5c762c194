// PostgreSQL's own commit ceiling, measured on the cluster the daemon then
// stores in, in the same run (as sink_ceiling.hpp is for the sink): how many
// small synchronous commits a second the server does on this machine, with
// none of tocsin's work. Each commit waits for its WAL to reach the disk
// (synchronous_commit as the server has it), so on a real disk this is
// mostly the disk's flush rate, shared by the commits of concurrent
// connections that the server flushes together.
#pragma once

#include <string>

namespace tocsin::bench {

struct pg_ceiling_figures {
  int clients = 0;             ///< connections of the one-row phase
  double commits_per_s = 0;    ///< one-row commits a second, all of them
  int batch_rows = 0;          ///< rows a commit in the batched phase
  double batch_rows_per_s = 0; ///< rows a second, one connection
  int seconds = 0;             ///< the length of each phase
  std::string error;           ///< why it stopped short; empty if it did not
};

/// On the database of libpq URL `url`, in a table of its own that it
/// creates (a 31-byte text key, the primary key, and 500 bytes of bytea):
/// `clients` connections, each committing one-row INSERTs as fast as they
/// are answered, for `seconds`; then one connection committing INSERTs of
/// `batch_rows` rows for `seconds`, one statement with array parameters
/// (INSERT ... SELECT * FROM unnest($1::text[], $2::bytea[])), as tocsin's
/// group commit writes a table's rows.
pg_ceiling_figures measure_pg_ceiling(const std::string& url, int clients,
                                      int batch_rows, int seconds);

/// The figures in one line for a report: "8 connections committing one-row
/// INSERTs: 1234 commits/s; 1 connection committing 100-row INSERTs: 56700
/// rows/s (567 commits/s); 3 s each", and why it stopped short if it did.
std::string describe(const pg_ceiling_figures& f);

} // namespace tocsin::bench
