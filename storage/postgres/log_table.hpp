// The PostgreSQL store's log: records appended in the transaction that
// makes their changes durable, numbered in commit order. Every writing
// transaction takes its numbers from the one head row, whose lock it holds
// until it commits or aborts: the next writer gets its numbers only after
// that, so a reader tailing by sequence (the stream's `since`, escalation)
// never sees a number while a smaller one may still appear. An aborted
// transaction gives its numbers back (no gaps).
//
// A commit's records are kept together in one row (a batch: its first and
// last numbers, when, and the records framed one after the other, lz4
// compressed by the server): a row and an index entry per commit instead of
// per record, which is most of what the log would otherwise cost the
// database (five records per delivered event).
//
// Every batch is announced: NOTIFY tocsin_log with its last number, which
// every node listening hears once the transaction has committed (news.hpp).
#pragma once

#include "common/time.hpp"

#include <cstdint>
#include <string>
#include <vector>

#include <pqxx/connection_base>
#include <pqxx/transaction_base>

namespace tocsin::storage::postgres {

struct log_entry {
  unix_ms at = 0;
  int kind = 0; ///< storage::record_kind
  std::string fields;
};

struct numbered_entry {
  std::uint64_t seq = 0;
  log_entry entry;
};

/// Prepares the statements below on `c` (once per connection, before
/// they are used on it).
void prepare_log(pqxx::connection_base& c);

/// Takes the next `n` numbers in `t` (the head row's lock held to its end)
/// and returns the first. Throws what libpqxx throws.
std::uint64_t reserve_log(pqxx::transaction_base& t, std::size_t n);

/// Inserts `entries` numbered from `first` in `t`, as one batch written at
/// `at` (nothing for none), and announces its last number on channel
/// tocsin_log.
void insert_log(pqxx::transaction_base& t, std::uint64_t first, unix_ms at,
                const std::vector<log_entry>& entries);

/// reserve_log and insert_log: appends `entries` in `t` (nothing for none)
/// and returns the number of the last one (of none: 0).
std::uint64_t append_log(pqxx::transaction_base& t,
                         const std::vector<log_entry>& entries);

/// Up to `limit` records numbered after `after`, in order.
std::vector<numbered_entry> read_log(pqxx::transaction_base& t,
                                     std::uint64_t after, std::size_t limit);

/// The records of one batch as insert_log framed them; false when it cannot
/// be read.
bool unframe_log(std::string_view batch, std::uint64_t first,
                 std::vector<numbered_entry>& out);

} // namespace tocsin::storage::postgres
