#include "storage/postgres/log_table.hpp"

#include "storage/postgres/arrays.hpp"

#include <pqxx/pqxx>

namespace tocsin::storage::postgres {

std::uint64_t reserve_log(pqxx::transaction_base& t, std::size_t n) {
  // The row lock taken here is held to commit: see the header.
  auto last =
      t.exec_params1("UPDATE tocsin_log_head SET seq = seq + $1 RETURNING seq",
                     static_cast<long long>(n))[0]
          .as<long long>();
  return static_cast<std::uint64_t>(last) - n + 1;
}

void insert_log(pqxx::transaction_base& t, std::uint64_t first,
                const std::vector<log_entry>& entries) {
  if (entries.empty())
    return;
  // One statement for the whole commit: arrays unnested server-side.
  array_literal seqs, ats, kinds, fields;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    seqs.add(first + i);
    ats.add(entries[i].at);
    kinds.add(entries[i].kind);
    fields.add_bytes(entries[i].fields);
  }
  t.exec_params0("INSERT INTO tocsin_log (seq, at, kind, fields) "
                 "SELECT * FROM unnest($1::bigint[], $2::bigint[], "
                 "$3::smallint[], $4::bytea[])",
                 seqs.take(), ats.take(), kinds.take(), fields.take());
}

std::uint64_t append_log(pqxx::transaction_base& t,
                         const std::vector<log_entry>& entries) {
  if (entries.empty())
    return 0;
  auto first = reserve_log(t, entries.size());
  insert_log(t, first, entries);
  return first + entries.size() - 1;
}

std::vector<numbered_entry> read_log(pqxx::transaction_base& t,
                                     std::uint64_t after, std::size_t limit) {
  std::vector<numbered_entry> out;
  auto r = t.exec_params(
      "SELECT seq, at, kind, fields FROM tocsin_log WHERE seq > $1 "
      "ORDER BY seq LIMIT $2",
      static_cast<long long>(after), static_cast<long long>(limit));
  out.reserve(r.size());
  for (auto row : r)
    out.push_back({row[0].as<std::uint64_t>(),
                   {row[1].as<long long>(), row[2].as<int>(),
                    pqxx::binarystring{row[3]}.str()}});
  return out;
}

} // namespace tocsin::storage::postgres
