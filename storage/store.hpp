// The store: an append-only log of every state change, and the current
// state of events, deliveries and endpoints folded from it, written together
// in atomic sets of changes. Spoken in the product's terms; two backends
// implement it: the embedded RocksDB (storage/rocksdb/, the default) and a
// PostgreSQL database several nodes can share (storage/postgres/).
#pragma once

#include "common/result.hpp"
#include "storage/cluster.hpp"
#include "storage/log_record.hpp"
#include "storage/record_kind.hpp"
#include "storage/records.hpp"

#include <compare>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tocsin::storage {

/// The ids an idempotency key was first answered with, when, and a digest of
/// what it covered (a reuse for other content is refused).
struct idempotency_record {
  std::vector<std::string> ids;
  unix_ms at = 0;
  std::string digest; ///< hex SHA-256; empty in records of older versions
};

/// An idempotency record as changes::idempotency_key_used keeps it (the
/// body of its change); nothing when it cannot be read.
std::optional<idempotency_record> decode_idempotency(std::string_view body);

/// Where a pending delivery stands in its endpoint's line. The line is the
/// order in which the endpoint's queue takes its pending deliveries: by
/// place, then by id. The queue decides the place (delivery/job.hpp:
/// severity band and when it is due, or, on an endpoint that delivers in
/// order, when it joined the line); the store keeps the line in that order.
using line_place = unix_ms;

/// A delivery's standing: its state and, while it is pending, its place in
/// its endpoint's line (0 otherwise).
struct standing {
  delivery_state state = delivery_state::pending;
  line_place place = 0;

  friend bool operator==(const standing&, const standing&) = default;
};

/// Where a delivery stands by default: pending, at when it is due.
inline standing standing_of(const delivery& d) {
  return {d.state, d.state == delivery_state::pending ? d.next_attempt_at : 0};
}

/// One change to the store, in the product's terms. Each appends one record
/// to the log (unless `logged` is false) and changes the state it
/// describes. Built by `changes`; read by the backends.
struct change {
  enum class type : std::uint8_t {
    event_accepted,    ///< an event and the ids of its deliveries
    event_changed,     ///< an event answered (acknowledged, resolved, ...)
    delivery_created,  ///< a new delivery, at its place in line
    delivery_changed,  ///< an attempt started or finished, settled, replayed
    idempotency_key,   ///< the ids an idempotency key was answered with
    endpoint_put,      ///< an endpoint created or changed
    endpoint_deleted,  ///< an endpoint deleted
    escalation_linked, ///< one event an escalation was derived from (old form)
    counted_in_group,  ///< an escalation rule counted an event in a group
    escalation_recorded, ///< an escalation and all the events it came from
    noted,               ///< a record that changes nothing stored
  } what;
  record_kind kind;
  /// The event, delivery, endpoint or escalation changed; the idempotency
  /// key. (escalation_linked and counted_in_group: the event.)
  std::string id;
  /// What is kept of it: a record's stored form (storage::encode), an
  /// endpoint's JSON definition, an idempotency record as JSON, an
  /// escalation's members (ids, each followed by '\n', oldest first).
  std::string body = {};
  /// Deliveries: their event and endpoint, where they stand now and where
  /// they stood before (nothing: a new delivery when `created`, else not
  /// known to the caller — the store looks it up). Escalations: `other` is
  /// the escalation linked (escalation_linked), `rule` and `group` the group.
  std::string event_id = {};
  std::string endpoint_id = {};
  standing now = {};
  std::optional<standing> was = {};
  bool created = false;
  std::string other = {};
  std::string rule = {};
  std::string group = {};
  /// Events: when accepted. Deliveries: when delivered or dead-lettered.
  /// Idempotency keys, escalations: when recorded. What retention and the
  /// listings go by.
  unix_ms at = 0;
  /// The log record's fields, kept as `form` says (storage/log_record.hpp).
  std::string log_fields = {};
  log_form form = log_form::json;
  bool logged = true;
};

/// Changes that become durable together (all or none), in order. A set
/// changes a delivery at most once.
class changes {
public:
  /// An event was accepted ("event.accepted").
  void event_accepted(const event_record& e);

  /// An event changed (an operator's answer; deliveries added for its
  /// notices): stored again and logged as `kind` with `json_fields`.
  void event_changed(const event_record& e, record_kind kind,
                     std::string json_fields);

  /// A new delivery ("delivery.created"), at `place` in its endpoint's line
  /// (default: when it is due).
  void delivery_created(const delivery& d,
                        std::optional<line_place> place = std::nullopt);

  /// A delivery changed as `kind` says (attempt_started, attempt_finished,
  /// attempt_interrupted, delivery_dead_lettered, delivery_replayed, ...);
  /// `d` is its new state. `was` is where the queue had it (the hot paths
  /// know; nothing: the store looks); while pending it stands at `place`
  /// (default: when it is due).
  void delivery_changed(const delivery& d, record_kind kind,
                        std::optional<standing> was = std::nullopt,
                        std::optional<line_place> place = std::nullopt);

  /// The outcome of a delivery's attempt (delivery_delivered,
  /// delivery_dead_lettered, delivery_retry_scheduled): its ids and reason,
  /// logged. The state itself goes with delivery_changed.
  void delivery_outcome(record_kind kind, const delivery& d);

  /// Which event ids an idempotency key was answered with.
  void idempotency_key_used(std::string_view key,
                            const idempotency_record& rec);

  /// An endpoint's definition (JSON, opaque to the store), logged as `kind`
  /// (endpoint_created, endpoint_updated, ...).
  void endpoint_put(std::string_view id, std::string definition,
                    record_kind kind);

  /// An endpoint was deleted ("endpoint.deleted").
  void endpoint_deleted(std::string_view id);

  /// An escalation was derived from an event ("event.escalated"), one
  /// record per member: what versions before escalation_recorded wrote;
  /// kept for tests and read by escalations_of.
  void escalation_linked(std::string_view event_id,
                         std::string_view escalation_id);

  /// Escalation rule `rule` counted an event in `group` (no log record: the
  /// event's own says it was accepted). What escalations_of starts from.
  void counted_in_group(std::string_view event_id, std::string_view rule,
                        std::string_view group);

  /// An escalation of `rule` for `group`, accepted at `at`, and every event
  /// it was derived from (`members`: ids, each followed by '\n', oldest
  /// first): one record for all of them ("event.escalated" with the
  /// escalation's id and the count).
  void escalation_recorded(std::string_view escalation_id,
                           std::string_view rule, std::string_view group,
                           unix_ms at, std::string_view members);

  /// A record that changes nothing stored (e.g. endpoint_flagged).
  void noted(record_kind kind, std::string json_fields);

  std::size_t size() const { return list_.size(); }
  bool empty() const { return list_.empty(); }
  void clear() {
    list_.clear();
    fences_.clear();
  }

  /// Moves all changes of `other` to the end of this set (its fences too).
  void append(changes&& other);

  /// These changes are made by the holder of lease `name` at `epoch`: the
  /// commit is refused ("fenced") if the lease has been taken since (a
  /// newer epoch). A set may carry several fences; RocksDB ignores them
  /// (one node).
  void fence(std::string_view name, std::uint64_t epoch);
  const std::vector<lease_grant>& fences() const { return fences_; }

  const std::vector<change>& list() const { return list_; }

private:
  std::vector<change> list_;
  std::vector<lease_grant> fences_;
};

/// A position in an endpoint's line: a place, then a delivery id.
struct line_position {
  line_place place = 0;
  std::string id;

  friend auto operator<=>(const line_position&, const line_position&) = default;
};

struct line_page {
  std::vector<delivery> deliveries; ///< in the line's order
  std::vector<line_place> places;   ///< each one's place in the line
  /// Where the next page starts: the first pending delivery not returned
  /// (nothing: the page reached the end).
  std::optional<line_position> next;
  /// The sequence number of the newest log record the page reflects: every
  /// commit up to it is in the page, none after it.
  std::uint64_t as_of = 0;
};

/// What one call of store::expire removed.
struct expiry {
  std::size_t events = 0;
  std::size_t deliveries = 0;
  std::size_t idempotency_keys = 0;
  std::uint64_t log_records = 0;
  bool more = false; ///< it stopped at its limit: there is more to remove

  bool empty() const {
    return events == 0 && deliveries == 0 && idempotency_keys == 0 &&
           log_records == 0;
  }
};

/// One endpoint's backlog, as /metrics reports it.
struct endpoint_backlog {
  std::size_t pending = 0;
  /// When the oldest pending delivery was created; 0 with none.
  unix_ms oldest_pending = 0;
  std::size_t dead_letters = 0;
};

/// What a listing of events asks for (GET /v1/events): events accepted in
/// [since, until), newest first, that match every filter given. A filter
/// left empty matches everything.
struct event_query {
  std::optional<event_state> state = {};
  std::string type = {};
  std::string severity = {};
  std::string agent_id = {};
  unix_ms since = 0;                 ///< accepted at or after it
  std::optional<unix_ms> until = {}; ///< accepted before it; nothing: now on
  /// Continue below this event id (a page's `next`); empty: from `until`.
  std::string before = {};
  std::size_t limit = 50; ///< events to return at most
  /// Records to read at most, matching or not: what bounds the work of one
  /// call however rare the matches are (as a DynamoDB scan with a filter).
  std::size_t max_examined = 20000;
};

struct event_page {
  std::vector<event_record> events; ///< newest first
  /// The last event id read when the page stopped (at `limit` matches or at
  /// `max_examined` records) with more in range: the next page's `before`.
  /// Nothing: the range is exhausted. A page may be short, even empty, and
  /// still have a `next` (the budget ran out before `limit` matched).
  std::optional<std::string> next;
  std::size_t examined = 0; ///< records read
};

/// The ids a listing of `q` reads, [lower, upper): event ids are "evt_"
/// and a ULID, so bounds made of ids at the range's times leave everything
/// outside it unread, and reading down from `upper` gives the newest first.
/// Empty (lower >= upper) when nothing can match.
struct event_id_range {
  std::string lower, upper;
  bool empty() const { return upper <= lower; }
};
event_id_range id_range_of(const event_query& q);

/// Whether an event read for `q` is one it lists (its filters).
bool matches(const event_query& q, const event_record& e);

/// Durability of a commit. `synced`: durable before the call returns, as
/// the store's own durability goes (survives power loss: RocksDB syncs its
/// write-ahead log; PostgreSQL commits as its `synchronous_commit` says).
/// `buffered`: survives a crash of the process, not of the machine.
enum class durability { synced, buffered };

class store {
public:
  virtual ~store() = default;

  /// Commits all changes atomically. Thread-safe. The log records of one
  /// commit get consecutive sequence numbers, and sequence numbers follow
  /// commit order with no gaps (a failed commit takes none): a reader that
  /// has seen every record up to last_sequence() has missed nothing. Returns
  /// the sequence number of the commit's last record (of an empty set:
  /// last_sequence()).
  virtual result<std::uint64_t> commit(const changes& set, durability d) = 0;

  /// Whether the store takes writes now. After a write failed for want of
  /// space or I/O, or with the database out of reach, every commit fails
  /// until the store has recovered; this tries that (at most once a
  /// second), so the store takes writes again by itself once the cause is
  /// gone. Its error's code is "store_unavailable" for a cause expected to
  /// pass by itself (a database restarting or failing over).
  virtual status writable() = 0;

  /// Why the store cannot go on in this process (nothing while it can).
  /// Some failures last until the store is opened again: RocksDB takes no
  /// write after a failed sync of its write-ahead log. From then on every
  /// commit fails, writable() says why without trying to recover, and the
  /// daemon exits for its supervisor to start it again. Failures that pass
  /// by themselves (a full disk freed, a PostgreSQL connection lost and
  /// made again) never set it.
  virtual std::optional<std::string> failed() { return std::nullopt; }

  /// The sequence number of the newest committed record (0: none yet).
  virtual std::uint64_t last_sequence() const = 0;

  /// Retention: removes what finished before `cutoff` — each event whose
  /// deliveries are all delivered or dead-lettered, the last of them before
  /// `cutoff`, with those deliveries; log records written before `cutoff`;
  /// and idempotency keys recorded before `keys_cutoff`. Reads by time,
  /// not the whole store. Looks at most at `limit` deliveries (and keys) per
  /// call, so that commits wait for one chunk at most: call again while `more`.
  /// A call that finishes remembers `cutoff` (expired_before()). Pending
  /// deliveries and their events stay, however old.
  virtual result<expiry> expire(unix_ms cutoff, unix_ms keys_cutoff,
                                std::size_t limit) = 0;

  /// The newest cutoff expire() finished with (0: none): an event accepted
  /// before it that is not found was removed by retention.
  virtual unix_ms expired_before() = 0;

  virtual result<std::optional<event_record>>
  get_event(std::string_view id) = 0;
  /// Several events at once (one batched lookup), in the order asked for.
  virtual result<std::vector<std::optional<event_record>>>
  get_events(const std::vector<std::string>& ids) {
    std::vector<std::optional<event_record>> out;
    out.reserve(ids.size());
    for (auto& id : ids) {
      auto e = get_event(id);
      if (!e)
        return e.error();
      out.push_back(std::move(*e));
    }
    return out;
  }
  virtual result<std::optional<delivery>> get_delivery(std::string_view id) = 0;
  /// Several deliveries at once (one batched lookup), in the order asked
  /// for.
  virtual result<std::vector<std::optional<delivery>>>
  get_deliveries(const std::vector<std::string>& ids) {
    std::vector<std::optional<delivery>> out;
    out.reserve(ids.size());
    for (auto& id : ids) {
      auto d = get_delivery(id);
      if (!d)
        return d.error();
      out.push_back(std::move(*d));
    }
    return out;
  }
  virtual result<std::optional<idempotency_record>>
  get_idempotency_key(std::string_view key) = 0;

  /// A page of one endpoint's line, read from one consistent view of the
  /// store: up to `limit` pending deliveries from `from` on (inclusive) in
  /// line order, leaving out those `held` says yes to (the ones the
  /// endpoint's queue holds already). Reads a page, never a whole backlog.
  virtual result<line_page>
  line_of(std::string_view endpoint_id, const line_position& from,
          std::size_t limit,
          const std::function<bool(std::string_view id)>& held) = 0;

  /// The endpoints that have pending deliveries, in id order (one look per
  /// endpoint, not per delivery).
  virtual result<std::vector<std::string>> endpoints_with_pending() = 0;

  /// Dead-lettered deliveries in id order, starting after `after` (exclusive).
  virtual result<std::vector<delivery>>
  list_dead_letters(std::string_view after, std::size_t limit) = 0;

  /// One endpoint's dead letters that were dead-lettered at or after
  /// `since`, oldest first (the others are not read).
  virtual result<std::vector<delivery>>
  list_dead_letters_of(std::string_view endpoint_id, unix_ms since,
                       std::size_t limit) = 0;

  /// Every stored endpoint definition as (id, JSON), in id order.
  virtual result<std::vector<std::pair<std::string, std::string>>>
  list_endpoints() = 0;
  virtual result<std::optional<std::string>>
  get_endpoint(std::string_view id) = 0;

  /// Counts one endpoint's pending deliveries and dead letters (not reading
  /// their records: for /metrics, at scrape time).
  virtual result<endpoint_backlog> backlog_of(std::string_view endpoint_id) = 0;

  /// Bytes the store takes (approximately; for /metrics).
  virtual std::uint64_t approximate_bytes() = 0;

  /// The escalations derived from an event (escalation_linked, or
  /// counted_in_group and escalation_recorded: for each group it was counted
  /// in, the first escalation of that group after it that lists it among
  /// its members). A few reads per group, whatever the escalations' size.
  virtual result<std::vector<std::string>>
  escalations_of(std::string_view event_id) = 0;

  /// The events an escalation was derived from, oldest first, as
  /// escalation_recorded recorded them; none for any other event (and for
  /// escalations recorded before it: their bodies list their members).
  virtual result<std::vector<std::string>>
  members_of(std::string_view escalation_id) = 0;

  /// Calls `fn` for each stored event whose id was made at or after `since`
  /// (ids are time-ordered), in id order,
  /// until it returns false. What rebuilds the escalation rules' counts.
  virtual status
  for_each_event_since(unix_ms since,
                       const std::function<bool(const event_record&)>& fn) = 0;

  /// A page of events, newest first (see event_query): ids are
  /// time-ordered, so the events are read in reverse id order from `until`
  /// (or `before`) down to `since` and the filters applied to each one
  /// read; never more than `max_examined` per call.
  virtual result<event_page> list_events(const event_query& q) = 0;

  /// Calls `fn(seq, record_json)` for each log record with seq >= `from`,
  /// in order, until it returns false.
  virtual status
  read_log(std::uint64_t from,
           const std::function<bool(std::uint64_t, std::string_view)>& fn) = 0;

  /// What nodes sharing this store coordinate through; null when the store
  /// is one node's own (RocksDB).
  virtual cluster_store* cluster() { return nullptr; }
};

enum class backend { rocksdb, postgres };

struct store_options {
  /// RocksDB: the directory of the database.
  std::string dir = {};
  /// Create the database (RocksDB) or the schema (PostgreSQL) when absent
  /// (default). false: fail instead.
  bool create_if_missing = true;
  /// For tests (RocksDB): a sync of the write-ahead log fails (an I/O
  /// error) while this returns true. Unset in the daemon.
  std::function<bool()> fail_log_sync = {};
  /// Called once, on the thread that found it, when the store finds it
  /// cannot go on in this process (see store::failed). It must neither
  /// block nor call the store.
  std::function<void(const std::string& reason)> on_failure = {};
  backend kind = backend::rocksdb;
  /// PostgreSQL: a libpq connection string or URL (several hosts with
  /// target_session_attrs=read-write: the one that takes writes).
  std::string postgres_url = {};
};

/// Opens (or creates) the store `opts` names. Fails with code
/// "store_locked" when another process holds a RocksDB store,
/// "schema_too_new" for a PostgreSQL schema newer than this build knows,
/// "store_unavailable" when the database cannot be reached.
result<std::unique_ptr<store>> open_store(const store_options& opts);

} // namespace tocsin::storage
