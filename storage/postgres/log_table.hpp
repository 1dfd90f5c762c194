// The PostgreSQL store's log: records appended in the transaction that
// makes their changes durable, numbered in commit order. Every writing
// transaction takes its numbers from the one head row, whose lock it holds
// until it commits or aborts: the next writer gets its numbers only after
// that, so a reader tailing by sequence (the stream's `since`, escalation)
// never sees a number while a smaller one may still appear. An aborted
// transaction gives its numbers back (no gaps).
#pragma once

#include "common/time.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace pqxx {
class transaction_base;
} // namespace pqxx

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

/// Takes the next `n` numbers in `t` (the head row's lock held to its end)
/// and returns the first. Throws what libpqxx throws.
std::uint64_t reserve_log(pqxx::transaction_base& t, std::size_t n);

/// Inserts `entries` numbered from `first` in `t` (one statement).
void insert_log(pqxx::transaction_base& t, std::uint64_t first,
                const std::vector<log_entry>& entries);

/// reserve_log and insert_log: appends `entries` in `t` (nothing for none)
/// and returns the number of the last one (of none: 0).
std::uint64_t append_log(pqxx::transaction_base& t,
                         const std::vector<log_entry>& entries);

/// Up to `limit` records numbered after `after`, in order.
std::vector<numbered_entry> read_log(pqxx::transaction_base& t,
                                     std::uint64_t after, std::size_t limit);

} // namespace tocsin::storage::postgres
