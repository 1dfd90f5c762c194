// Reads from PostgreSQL, each on a connection of the readers' pool; a page
// of an endpoint's line from one snapshot with the log position it
// reflects. Long reads go in chunks, so that no call holds a connection or
// builds a result of unbounded size.
#include "common/ids.hpp"
#include "storage/postgres/arrays.hpp"
#include "storage/postgres/log_table.hpp"
#include "storage/postgres/store_impl.hpp"

#include <pqxx/pqxx>

#include <algorithm>
#include <unordered_map>

namespace tocsin::storage::postgres {

namespace {

std::string bytes_of(const pqxx::field& f) {
  return pqxx::binarystring{f}.str();
}

std::string hex_of(std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * s.size());
  for (unsigned char c : s) {
    out += hex[c >> 4];
    out += hex[c & 15];
  }
  return out;
}

/// Calls `fn(id)` for each id of an escalation's members (each followed
/// by '\n', as changes::escalation_recorded keeps them) until it returns
/// false.
template <class F>
void for_each_member(std::string_view members, F&& fn) {
  for (std::size_t at = 0; at < members.size();) {
    auto end = members.find('\n', at);
    if (end == std::string_view::npos)
      end = members.size();
    auto member = members.substr(at, end - at);
    at = end + 1;
    if (!member.empty() && !fn(member))
      return;
  }
}

error unreadable(std::string_view what, std::string_view id) {
  return error{"store_corrupt",
               "unreadable " + std::string{what} + " " + std::string{id}};
}

result<delivery> delivery_of(const pqxx::field& record, std::string_view id) {
  auto d = decode_delivery(bytes_of(record));
  if (!d)
    return unreadable("delivery record", id);
  return std::move(*d);
}

/// A SQL read that returns something: `fn` runs on a reader connection.
template <class T, class F>
result<T> read(postgres_store& s, F&& fn) {
  TOCSIN_TRY(s.reachable_now());
  result<T> out = T{};
  auto st = s.readers().with([&](pqxx::connection& c) -> status {
    out = fn(c);
    if (!out)
      return out.error();
    return {};
  });
  if (!st)
    return st.error();
  return out;
}

} // namespace

result<std::optional<event_record>>
postgres_store::get_event(std::string_view id) {
  using out_t = std::optional<event_record>;
  return read<out_t>(*this, [&](pqxx::connection& c) -> result<out_t> {
    pqxx::read_transaction t{c};
    auto r = t.exec_params("SELECT record FROM tocsin_events WHERE id = $1",
                           std::string{id});
    if (r.empty())
      return out_t{};
    auto e = decode_event(bytes_of(r[0][0]));
    if (!e)
      return unreadable("event record", id);
    return out_t{std::move(*e)};
  });
}

result<std::vector<std::optional<event_record>>>
postgres_store::get_events(const std::vector<std::string>& ids) {
  using out_t = std::vector<std::optional<event_record>>;
  return read<out_t>(*this, [&](pqxx::connection& c) -> result<out_t> {
    array_literal wanted;
    for (auto& id : ids)
      wanted.add_text(id);
    pqxx::read_transaction t{c};
    auto r = t.exec_params(
        "SELECT id, record FROM tocsin_events WHERE id = ANY($1::text[])",
        wanted.take());
    std::unordered_map<std::string, std::size_t> index;
    for (std::size_t i = 0; i < ids.size(); ++i)
      index.emplace(ids[i], i);
    out_t out(ids.size());
    for (auto row : r) {
      auto id = row[0].as<std::string>();
      auto e = decode_event(bytes_of(row[1]));
      if (!e)
        return unreadable("event record", id);
      // Asked for twice: each place gets it.
      for (std::size_t i = 0; i < ids.size(); ++i)
        if (ids[i] == id)
          out[i] = *e;
    }
    return out;
  });
}

result<std::optional<delivery>>
postgres_store::get_delivery(std::string_view id) {
  using out_t = std::optional<delivery>;
  return read<out_t>(*this, [&](pqxx::connection& c) -> result<out_t> {
    pqxx::read_transaction t{c};
    auto r = t.exec_params("SELECT record FROM tocsin_deliveries WHERE id = $1",
                           std::string{id});
    if (r.empty())
      return out_t{};
    auto d = delivery_of(r[0][0], id);
    if (!d)
      return d.error();
    return out_t{std::move(*d)};
  });
}

result<std::vector<std::optional<delivery>>>
postgres_store::get_deliveries(const std::vector<std::string>& ids) {
  using out_t = std::vector<std::optional<delivery>>;
  return read<out_t>(*this, [&](pqxx::connection& c) -> result<out_t> {
    array_literal wanted;
    for (auto& id : ids)
      wanted.add_text(id);
    pqxx::read_transaction t{c};
    auto r = t.exec_params(
        "SELECT id, record FROM tocsin_deliveries WHERE id = ANY($1::text[])",
        wanted.take());
    // Asked for twice: each place gets it.
    std::unordered_multimap<std::string_view, std::size_t> places;
    for (std::size_t i = 0; i < ids.size(); ++i)
      places.emplace(ids[i], i);
    out_t out(ids.size());
    for (auto row : r) {
      auto id = row[0].as<std::string>();
      auto d = delivery_of(row[1], id);
      if (!d)
        return d.error();
      auto [from, to] = places.equal_range(id);
      for (auto it = from; it != to; ++it)
        out[it->second] = *d;
    }
    return out;
  });
}

result<std::optional<idempotency_record>>
postgres_store::get_idempotency_key(std::string_view key) {
  using out_t = std::optional<idempotency_record>;
  return read<out_t>(*this, [&](pqxx::connection& c) -> result<out_t> {
    pqxx::read_transaction t{c};
    auto r = t.exec_params("SELECT record FROM tocsin_idempotency_keys "
                           "WHERE key = decode($1, 'hex')",
                           hex_of(key));
    if (r.empty())
      return out_t{};
    auto rec = decode_idempotency(bytes_of(r[0][0]));
    if (!rec)
      return error{"store_corrupt", "unreadable idempotency record"};
    return out_t{std::move(*rec)};
  });
}

result<line_page>
postgres_store::line_of(std::string_view endpoint_id, const line_position& from,
                        std::size_t limit,
                        const std::function<bool(std::string_view id)>& held) {
  return read<line_page>(*this, [&](pqxx::connection& c) -> result<line_page> {
    // One snapshot for the log position and the page.
    pqxx::transaction<pqxx::repeatable_read, pqxx::read_only> t{c};
    line_page page;
    page.as_of = static_cast<std::uint64_t>(
        t.exec1("SELECT seq FROM tocsin_log_head")[0].as<long long>());
    line_position at = from;
    bool inclusive = true;
    // Held deliveries are skipped: read on in chunks until the page is
    // full (and one more, where the next page starts) or the line ends.
    auto chunk = std::max<std::size_t>(limit + 1, 64);
    for (;;) {
      auto r = t.exec_params(
          std::string{"SELECT id, place, record FROM tocsin_deliveries "
                      "WHERE state = 0 AND endpoint_id = $1 AND (place, id) "} +
              (inclusive ? ">=" : ">") +
              " ($2, $3) ORDER BY place, id LIMIT $4",
          std::string{endpoint_id}, static_cast<long long>(at.place), at.id,
          static_cast<long long>(chunk));
      for (auto row : r) {
        auto id = row[0].as<std::string>();
        auto place = static_cast<line_place>(row[1].as<long long>());
        at = {place, id};
        if (held && held(id))
          continue;
        if (page.deliveries.size() >= limit) {
          page.next = line_position{place, std::move(id)};
          return page;
        }
        auto d = delivery_of(row[2], id);
        if (!d)
          return d.error();
        page.deliveries.push_back(std::move(*d));
        page.places.push_back(place);
      }
      if (r.size() < chunk)
        return page;
      inclusive = false;
    }
  });
}

result<std::vector<std::string>> postgres_store::endpoints_with_pending() {
  using out_t = std::vector<std::string>;
  return read<out_t>(*this, [&](pqxx::connection& c) -> result<out_t> {
    pqxx::read_transaction t{c};
    // One index probe per endpoint, not a scan of every pending delivery.
    auto r = t.exec(
        "WITH RECURSIVE e(id) AS ("
        "  SELECT min(endpoint_id) FROM tocsin_deliveries WHERE state = 0"
        "  UNION ALL"
        "  SELECT (SELECT min(endpoint_id) FROM tocsin_deliveries"
        "          WHERE state = 0 AND endpoint_id > e.id)"
        "  FROM e WHERE e.id IS NOT NULL)"
        "SELECT id FROM e WHERE id IS NOT NULL");
    out_t out;
    for (auto row : r)
      out.push_back(row[0].as<std::string>());
    return out;
  });
}

result<std::vector<delivery>>
postgres_store::list_dead_letters(std::string_view after, std::size_t limit) {
  using out_t = std::vector<delivery>;
  return read<out_t>(*this, [&](pqxx::connection& c) -> result<out_t> {
    pqxx::read_transaction t{c};
    auto r = t.exec_params("SELECT id, record FROM tocsin_deliveries WHERE "
                           "state = 2 AND id > $1 ORDER BY id LIMIT $2",
                           std::string{after}, static_cast<long long>(limit));
    out_t out;
    for (auto row : r) {
      auto d = delivery_of(row[1], row[0].c_str());
      if (!d)
        return d.error();
      out.push_back(std::move(*d));
    }
    return out;
  });
}

result<std::vector<delivery>>
postgres_store::list_dead_letters_of(std::string_view endpoint_id,
                                     unix_ms since, std::size_t limit) {
  using out_t = std::vector<delivery>;
  return read<out_t>(*this, [&](pqxx::connection& c) -> result<out_t> {
    pqxx::read_transaction t{c};
    auto r = t.exec_params(
        "SELECT id, record FROM tocsin_deliveries WHERE state = 2 AND "
        "endpoint_id = $1 AND finished_at >= $2 ORDER BY finished_at, id "
        "LIMIT $3",
        std::string{endpoint_id}, static_cast<long long>(since),
        static_cast<long long>(limit));
    out_t out;
    for (auto row : r) {
      auto d = delivery_of(row[1], row[0].c_str());
      if (!d)
        return d.error();
      out.push_back(std::move(*d));
    }
    return out;
  });
}

result<std::vector<std::pair<std::string, std::string>>>
postgres_store::list_endpoints() {
  using out_t = std::vector<std::pair<std::string, std::string>>;
  return read<out_t>(*this, [&](pqxx::connection& c) -> result<out_t> {
    pqxx::read_transaction t{c};
    auto r = t.exec("SELECT id, definition FROM tocsin_endpoints ORDER BY id");
    out_t out;
    for (auto row : r)
      out.emplace_back(row[0].as<std::string>(), bytes_of(row[1]));
    return out;
  });
}

result<std::optional<std::string>>
postgres_store::get_endpoint(std::string_view id) {
  using out_t = std::optional<std::string>;
  return read<out_t>(*this, [&](pqxx::connection& c) -> result<out_t> {
    pqxx::read_transaction t{c};
    auto r =
        t.exec_params("SELECT definition FROM tocsin_endpoints WHERE id = $1",
                      std::string{id});
    if (r.empty())
      return out_t{};
    return out_t{bytes_of(r[0][0])};
  });
}

result<endpoint_backlog>
postgres_store::backlog_of(std::string_view endpoint_id) {
  return read<endpoint_backlog>(
      *this, [&](pqxx::connection& c) -> result<endpoint_backlog> {
        pqxx::read_transaction t{c};
        auto r = t.exec_params(
            "SELECT count(*) FILTER (WHERE state = 0), min(id) FILTER (WHERE "
            "state = 0), count(*) FILTER (WHERE state = 2) FROM "
            "tocsin_deliveries WHERE endpoint_id = $1 AND state IN (0, 2)",
            std::string{endpoint_id});
        endpoint_backlog out;
        out.pending = r[0][0].as<std::size_t>();
        // Delivery ids are time-ordered: the smallest is the oldest.
        if (!r[0][1].is_null())
          out.oldest_pending =
              time_of_id(r[0][1].as<std::string>(), "dlv").value_or(0);
        out.dead_letters = r[0][2].as<std::size_t>();
        return out;
      });
}

std::uint64_t postgres_store::approximate_bytes() {
  auto bytes = read<std::uint64_t>(
      *this, [&](pqxx::connection& c) -> result<std::uint64_t> {
        pqxx::read_transaction t{c};
        auto r = t.exec("SELECT coalesce(sum(pg_total_relation_size(oid)), 0) "
                        "FROM pg_class WHERE relkind = 'r' AND relname LIKE "
                        "'tocsin\\_%'");
        return r[0][0].as<std::uint64_t>();
      });
  return bytes ? *bytes : 0;
}

result<std::vector<std::string>>
postgres_store::escalations_of(std::string_view event_id) {
  using out_t = std::vector<std::string>;
  return read<out_t>(*this, [&](pqxx::connection& c) -> result<out_t> {
    pqxx::read_transaction t{c};
    out_t out;
    std::string id{event_id};
    for (auto row : t.exec_params("SELECT escalation_id FROM "
                                  "tocsin_escalation_links WHERE event_id = "
                                  "$1 ORDER BY escalation_id",
                                  id))
      out.push_back(row[0].as<std::string>());
    // Counted in a group: the first escalation of the group accepted after
    // the event was (ids are time-ordered) that lists it. Events counted by
    // an escalation are never counted again, and one that lists none of
    // the events after the event's own was raised after the event's
    // episode: no later one holds it either.
    auto since = time_of_id(event_id, "evt").value_or(0);
    auto groups = t.exec_params("SELECT encode(rule, 'hex'), encode(grp, "
                                "'hex') FROM tocsin_escalation_counts WHERE "
                                "event_id = $1 ORDER BY rule, grp",
                                id);
    for (auto g : groups) {
      auto r = t.exec_params(
          "SELECT id, members FROM tocsin_escalations WHERE rule = "
          "decode($1, 'hex') AND grp = decode($2, 'hex') AND at >= $3 "
          "ORDER BY at, id LIMIT 64",
          g[0].as<std::string>(), g[1].as<std::string>(),
          static_cast<long long>(since));
      for (auto row : r) {
        auto escalation = row[0].as<std::string>();
        std::string_view members{row[1].c_str(), row[1].size()};
        bool listed = false, any = false, all_after = true;
        for_each_member(members, [&](std::string_view member) {
          any = true;
          listed = member == event_id;
          all_after = all_after && member > event_id;
          return !listed;
        });
        if (listed) {
          if (std::find(out.begin(), out.end(), escalation) == out.end())
            out.push_back(std::move(escalation));
          break;
        }
        if (any && all_after)
          break;
      }
    }
    return out;
  });
}

result<std::vector<std::string>>
postgres_store::members_of(std::string_view escalation_id) {
  using out_t = std::vector<std::string>;
  return read<out_t>(*this, [&](pqxx::connection& c) -> result<out_t> {
    pqxx::read_transaction t{c};
    auto r =
        t.exec_params("SELECT members FROM tocsin_escalations WHERE id = $1",
                      std::string{escalation_id});
    out_t out;
    if (r.empty())
      return out;
    for_each_member({r[0][0].c_str(), r[0][0].size()},
                    [&](std::string_view member) {
                      out.emplace_back(member);
                      return true;
                    });
    return out;
  });
}

status postgres_store::for_each_event_since(
    unix_ms since, const std::function<bool(const event_record&)>& fn) {
  // In chunks, each read on its own and handed over before the next: `fn`
  // runs with no connection held.
  auto after = id_floor("evt", since);
  bool inclusive = true;
  for (;;) {
    auto chunk = read<std::vector<event_record>>(
        *this, [&](pqxx::connection& c) -> result<std::vector<event_record>> {
          pqxx::read_transaction t{c};
          auto r = t.exec_params(
              std::string{"SELECT id, record FROM tocsin_events WHERE id "} +
                  (inclusive ? ">=" : ">") +
                  " $1 AND id < 'evt`' ORDER BY id LIMIT 1000",
              after);
          std::vector<event_record> out;
          for (auto row : r) {
            auto e = decode_event(bytes_of(row[1]));
            if (!e)
              return unreadable("event record", row[0].c_str());
            out.push_back(std::move(*e));
          }
          return out;
        });
    if (!chunk)
      return chunk.error();
    for (auto& e : *chunk)
      if (!fn(e))
        return {};
    if (chunk->size() < 1000)
      return {};
    after = chunk->back().id;
    inclusive = false;
  }
}

result<event_page> postgres_store::list_events(const event_query& q) {
  // Reading down from the upper bound of ids gives the newest first.
  auto range = id_range_of(q);
  const auto& lower = range.lower;
  const auto& upper = range.upper;
  event_page page;
  if (range.empty())
    return page;
  return read<event_page>(
      *this, [&](pqxx::connection& c) -> result<event_page> {
        pqxx::read_transaction t{c};
        std::string below = upper;
        std::string last; // the last id read
        for (;;) {
          auto want =
              std::min<std::size_t>(q.max_examined - page.examined + 1, 500);
          auto r = t.exec_params(
              "SELECT id, record FROM tocsin_events WHERE id >= $1 AND id < $2 "
              "ORDER BY id DESC LIMIT $3",
              lower, below, static_cast<long long>(want));
          for (auto row : r) {
            // Another event in range that this call may not take: the next
            // page starts below the last one read.
            if (page.events.size() >= q.limit ||
                page.examined >= q.max_examined) {
              page.next = std::move(last);
              return page;
            }
            ++page.examined;
            last = row[0].as<std::string>();
            auto e = decode_event(bytes_of(row[1]));
            if (!e)
              return unreadable("event record", last);
            if (!matches(q, *e))
              continue;
            page.events.push_back(std::move(*e));
          }
          if (r.size() < want)
            return page;
          below = last;
        }
      });
}

status postgres_store::read_log(
    std::uint64_t from,
    const std::function<bool(std::uint64_t, std::string_view)>& fn) {
  // In chunks: `fn` runs with no connection held.
  for (;;) {
    using rows_t = std::vector<numbered_entry>;
    auto chunk =
        read<rows_t>(*this, [&](pqxx::connection& c) -> result<rows_t> {
          pqxx::read_transaction t{c};
          return postgres::read_log(t, from == 0 ? 0 : from - 1, 1000);
        });
    if (!chunk)
      return chunk.error();
    std::string scratch;
    for (auto& e : *chunk) {
      auto text = render_log_record(e.seq, e.entry.fields, scratch);
      if (!text)
        return error{"store_corrupt",
                     "unreadable log record " + std::to_string(e.seq)};
      if (!fn(e.seq, *text))
        return {};
    }
    if (chunk->size() < 1000)
      return {};
    from = chunk->back().seq + 1;
  }
}

} // namespace tocsin::storage::postgres
