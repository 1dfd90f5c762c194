#include "storage/postgres/log_table.hpp"

#include <pqxx/pqxx>

namespace tocsin::storage::postgres {

std::uint64_t append_log(pqxx::transaction_base& t,
                         const std::vector<log_entry>& entries) {
  if (entries.empty())
    return 0;
  // The row lock taken here is held to commit: see the header.
  auto last =
      t.exec_params1("UPDATE tocsin_log_head SET seq = seq + $1 RETURNING seq",
                     static_cast<long long>(entries.size()))[0]
          .as<long long>();
  auto first = static_cast<std::uint64_t>(last) - entries.size() + 1;
  // One statement for the whole commit: arrays unnested server-side. The
  // arrays go as text (libpqxx 6.4 has no array parameters): numbers, and
  // the fields hex-encoded in quotes, need no escaping in an array literal.
  std::string seqs = "{", ats = "{", kinds = "{", fields = "{";
  static constexpr char hex[] = "0123456789abcdef";
  for (std::size_t i = 0; i < entries.size(); ++i) {
    auto sep = i == 0 ? "" : ",";
    seqs += sep + std::to_string(first + i);
    ats += sep + std::to_string(entries[i].at);
    kinds += sep + std::to_string(entries[i].kind);
    fields += sep;
    fields += '"'; // an empty element must be quoted
    for (unsigned char c : entries[i].fields) {
      fields += hex[c >> 4];
      fields += hex[c & 15];
    }
    fields += '"';
  }
  for (auto* a : {&seqs, &ats, &kinds, &fields})
    *a += "}";
  t.exec_params0("INSERT INTO tocsin_log (seq, at, kind, fields) "
                 "SELECT s, a, k, decode(f, 'hex') FROM unnest($1::bigint[], "
                 "$2::bigint[], $3::smallint[], $4::text[]) AS x(s, a, k, f)",
                 seqs, ats, kinds, fields);
  return static_cast<std::uint64_t>(last);
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
