#include "storage/postgres/log_table.hpp"

#include <pqxx/pqxx>

#include <stdexcept>

namespace tocsin::storage::postgres {

namespace {

// A record in a batch: its size (u32), kind (u16) and time (i64), big-endian,
// then its bytes.
constexpr std::size_t frame_header = 4 + 2 + 8;

void put_be(std::string& out, std::uint64_t v, int bytes) {
  for (int shift = 8 * (bytes - 1); shift >= 0; shift -= 8)
    out += static_cast<char>((v >> shift) & 0xff);
}

std::uint64_t get_be(std::string_view in, std::size_t at, int bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i)
    v = (v << 8) | static_cast<unsigned char>(in[at + i]);
  return v;
}

} // namespace

void prepare_log(pqxx::connection_base& c) {
  c.prepare("tocsin_reserve_log",
            "UPDATE tocsin_log_head SET seq = seq + $1 RETURNING seq");
  // Announced in the same statement (delivered when the transaction
  // commits; nothing if it does not).
  c.prepare("tocsin_insert_log",
            "INSERT INTO tocsin_log (first_seq, last_seq, at, records) "
            "VALUES ($1, $2, $3, $4) RETURNING pg_notify('tocsin_log', "
            "last_seq::text)");
}

std::uint64_t reserve_log(pqxx::transaction_base& t, std::size_t n) {
  // The row lock taken here is held to commit: see the header.
  auto last =
      t.exec_prepared1("tocsin_reserve_log", static_cast<long long>(n))[0]
          .as<long long>();
  return static_cast<std::uint64_t>(last) - n + 1;
}

void insert_log(pqxx::transaction_base& t, std::uint64_t first, unix_ms at,
                const std::vector<log_entry>& entries) {
  if (entries.empty())
    return;
  std::size_t bytes = 0;
  for (auto& e : entries)
    bytes += frame_header + e.fields.size();
  std::string batch;
  batch.reserve(bytes);
  for (auto& e : entries) {
    put_be(batch, e.fields.size(), 4);
    put_be(batch, static_cast<std::uint16_t>(e.kind), 2);
    put_be(batch, static_cast<std::uint64_t>(e.at), 8);
    batch += e.fields;
  }
  // The batch goes as a binary parameter: no encoding on either side.
  t.exec_prepared("tocsin_insert_log", static_cast<long long>(first),
                  static_cast<long long>(first + entries.size() - 1),
                  static_cast<long long>(at),
                  pqxx::binarystring{batch.data(), batch.size()});
}

std::uint64_t append_log(pqxx::transaction_base& t,
                         const std::vector<log_entry>& entries) {
  if (entries.empty())
    return 0;
  auto first = reserve_log(t, entries.size());
  insert_log(t, first, entries.front().at, entries);
  return first + entries.size() - 1;
}

bool unframe_log(std::string_view batch, std::uint64_t first,
                 std::vector<numbered_entry>& out) {
  for (std::size_t at = 0; at < batch.size(); ++first) {
    if (batch.size() - at < frame_header)
      return false;
    auto size = get_be(batch, at, 4);
    if (batch.size() - at - frame_header < size)
      return false;
    numbered_entry e;
    e.seq = first;
    e.entry.kind = static_cast<int>(get_be(batch, at + 4, 2));
    e.entry.at = static_cast<unix_ms>(get_be(batch, at + 6, 8));
    e.entry.fields.assign(batch.substr(at + frame_header, size));
    out.push_back(std::move(e));
    at += frame_header + size;
  }
  return true;
}

std::vector<numbered_entry> read_log(pqxx::transaction_base& t,
                                     std::uint64_t after, std::size_t limit) {
  std::vector<numbered_entry> out;
  // From the batch that holds `after + 1` on.
  auto r = t.exec_params(
      "SELECT first_seq, records FROM tocsin_log WHERE first_seq >= "
      "coalesce((SELECT max(first_seq) FROM tocsin_log WHERE first_seq <= "
      "$1), 0) ORDER BY first_seq LIMIT $2",
      static_cast<long long>(after + 1), static_cast<long long>(limit));
  for (auto row : r) {
    std::vector<numbered_entry> batch;
    pqxx::binarystring records{row[1]};
    if (!unframe_log({records.get(), records.size()},
                     row[0].as<std::uint64_t>(), batch))
      throw std::runtime_error{"unreadable log batch at " +
                               row[0].as<std::string>()};
    for (auto& e : batch) {
      if (e.seq <= after)
        continue;
      if (out.size() == limit)
        return out;
      out.push_back(std::move(e));
    }
  }
  return out;
}

} // namespace tocsin::storage::postgres
