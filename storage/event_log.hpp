// The event log: an append-only record of every state change, and the current
// state of events and deliveries folded from it, written together in atomic
// batches. One implementation (RocksDB) behind an abstract interface.
#pragma once

#include "common/result.hpp"
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

/// Where a delivery sits in the store's indexes: its state and, while it is
/// pending, its place in its endpoint's pending index — when it is due, or,
/// on an endpoint that delivers in order, where it joined the line (a retry
/// keeps it there).
struct delivery_position {
  delivery_state state = delivery_state::pending;
  unix_ms due = 0; ///< the place in the pending index; 0 unless pending

  friend bool operator==(const delivery_position&,
                         const delivery_position&) = default;
};

/// The place a delivery takes by default: when it is due.
inline delivery_position position_of(const delivery& d) {
  return {d.state, d.state == delivery_state::pending ? d.next_attempt_at : 0};
}

/// Changes that become durable together (all or none). Each change appends one
/// record to the log and updates the state it describes. A set changes a
/// delivery at most once.
class write_set {
public:
  /// Records an accepted event ("event.accepted").
  void add_event(const event_record& e);

  /// Stores an event again, changed (an operator's answer; deliveries added
  /// for its notices), and logs `kind` with `json_fields`.
  void put_event(const event_record& e, record_kind kind,
                 std::string json_fields);

  /// Records a new delivery ("delivery.created"), at `place` in its
  /// endpoint's pending index (default: when it is due).
  void add_delivery(const delivery& d,
                    std::optional<unix_ms> place = std::nullopt);

  /// Stores the new state of a delivery and logs `kind` (e.g.
  /// attempt_started, attempt_finished). Keeps the indexes in step (pending
  /// per endpoint, dead letters). `was` is the position the store holds
  /// now, when the caller knows it (the hot paths do); when not, the store
  /// reads the delivery and takes its default position. A pending
  /// delivery goes to `place` in its endpoint's index (default: when it is
  /// due).
  void put_delivery(const delivery& d, record_kind kind,
                    std::optional<delivery_position> was = std::nullopt,
                    std::optional<unix_ms> place = std::nullopt);

  /// Remembers which event ids an idempotency key was answered with.
  void put_idempotency_key(std::string_view key, const idempotency_record& rec);

  /// Stores an endpoint's definition (JSON, opaque to the store) and logs
  /// `kind` (endpoint_created, endpoint_updated, ...) with it.
  void put_endpoint(std::string_view id, std::string definition,
                    record_kind kind);

  /// Removes an endpoint's definition ("endpoint.deleted").
  void delete_endpoint(std::string_view id);

  /// Records that an escalation was derived from an event
  /// ("event.escalated"): acknowledging the event reaches the escalation.
  /// What versions before record_escalation wrote, one per member; kept
  /// for tests and read by escalations_of.
  void link_escalation(std::string_view event_id,
                       std::string_view escalation_id);

  /// Records that escalation rule `rule` counted an event in `group` (no
  /// log record: the event's own says it was accepted). One small key per
  /// counted event, under the event's id: what escalations_of starts from.
  void count_in_group(std::string_view event_id, std::string_view rule,
                      std::string_view group);

  /// Records an escalation of `rule` for `group`, accepted at `at`, and
  /// every event it was derived from (`members`: ids, each followed by
  /// '\n', oldest first): one record for all of them, whatever their
  /// number ("event.escalated" with the escalation's id and the count).
  void record_escalation(std::string_view escalation_id, std::string_view rule,
                         std::string_view group, unix_ms at,
                         std::string_view members);

  /// Logs a record that changes no delivery (e.g. endpoint_flagged).
  void add_record(record_kind kind, std::string json_fields);

  /// Logs the outcome of a delivery's attempt (delivery_delivered,
  /// delivery_dead_lettered, delivery_retry_scheduled): its ids and reason.
  /// The state itself goes with put_delivery.
  void add_delivery_outcome(record_kind kind, const delivery& d);

  std::size_t size() const { return ops_.size(); }
  bool empty() const { return ops_.empty(); }
  void clear() { ops_.clear(); }

  /// Moves all changes of `other` to the end of this set.
  void append(write_set&& other);

  struct op {
    enum class type {
      event,
      delivery,
      idempotency,
      endpoint_put,
      endpoint_delete,
      escalation_link,
      escalation_group,
      escalation_members,
      record
    } what;
    record_kind kind;
    std::string key;
    std::string value;
    delivery_state state = delivery_state::pending;
    std::string log_fields; // the log record's fields, kept as `form` says
    // Deliveries only: where it is now and where it was (nothing: new; an
    // empty optional with `created` false: read it from the store).
    std::string endpoint_id = {};
    delivery_position now = {};
    std::optional<delivery_position> was = {};
    bool created = false;
    /// Deliveries: when delivered or dead-lettered. Idempotency keys: when
    /// recorded. (What retention goes by.)
    unix_ms finished_at = 0;
    log_form form = log_form::json;
    bool logged = true; ///< false: no log record (escalation_group)
  };
  const std::vector<op>& ops() const { return ops_; }

private:
  std::vector<op> ops_;
};

/// A place in an endpoint's pending index, which orders its pending
/// deliveries by their position's `due`, then by id.
struct pending_key {
  unix_ms due = 0;
  std::string id;

  friend auto operator<=>(const pending_key&, const pending_key&) = default;
};

struct pending_page {
  std::vector<delivery> deliveries; ///< in the index's order
  std::vector<unix_ms> places;      ///< each one's place in the index (`due`)
  /// Where the next page starts: the first pending delivery not returned
  /// (nothing: the page reached the end).
  std::optional<pending_key> next;
  /// The sequence number of the newest log record the page reflects: every
  /// commit up to it is in the page, none after it.
  std::uint64_t as_of = 0;
};

/// What one call of event_log::expire removed.
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

/// Durability of a commit. `synced`: the write-ahead log is fsync'ed before the
/// call returns (survives power loss). `buffered`: written to the OS before the
/// call returns (survives a crash of the process, not of the machine).
enum class durability { synced, buffered };

class event_log {
public:
  virtual ~event_log() = default;

  /// Commits all changes atomically. Thread-safe. The log records of one
  /// commit get consecutive sequence numbers, and sequence numbers follow
  /// commit order with no gaps (a failed commit takes none): a reader that
  /// has seen every record up to last_sequence() has missed nothing. Returns
  /// the sequence number of the commit's last record (of an empty set:
  /// last_sequence()).
  virtual result<std::uint64_t> commit(const write_set& changes,
                                       durability d) = 0;

  /// Whether the store takes writes now. After a write failed for want of
  /// space or I/O, every commit fails until the store has recovered; this
  /// tries that (at most once a second), so the store takes writes again by
  /// itself once the cause is gone.
  virtual status writable() = 0;

  /// The sequence number of the newest committed record (0: none yet).
  virtual std::uint64_t last_sequence() const = 0;

  /// Retention: removes what finished before `cutoff` — each event whose
  /// deliveries are all delivered or dead-lettered, the last of them before
  /// `cutoff`, with those deliveries; log records written before `cutoff`;
  /// and idempotency keys recorded before `keys_cutoff`. Reads time indexes,
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
  virtual result<std::optional<idempotency_record>>
  get_idempotency_key(std::string_view key) = 0;

  /// A page of one endpoint's pending deliveries, read from one consistent
  /// view of the store: up to `limit` of them from `from` on (inclusive) in
  /// the index's order, leaving out those `skip` says yes to (the ones the
  /// caller holds already). Reads the index, never a whole backlog.
  virtual result<pending_page>
  pending_of(std::string_view endpoint_id, const pending_key& from,
             std::size_t limit,
             const std::function<bool(std::string_view id)>& skip) = 0;

  /// The endpoints that have pending deliveries, in id order (one index
  /// seek per endpoint, not per delivery).
  virtual result<std::vector<std::string>> endpoints_with_pending() = 0;

  /// Dead-lettered deliveries in id order, starting after `after` (exclusive).
  virtual result<std::vector<delivery>>
  list_dead_letters(std::string_view after, std::size_t limit) = 0;

  /// One endpoint's dead letters that were dead-lettered at or after
  /// `since`, oldest first (a per-endpoint index: the others are not read).
  virtual result<std::vector<delivery>>
  list_dead_letters_of(std::string_view endpoint_id, unix_ms since,
                       std::size_t limit) = 0;

  /// Every stored endpoint definition as (id, JSON), in id order.
  virtual result<std::vector<std::pair<std::string, std::string>>>
  list_endpoints() = 0;
  virtual result<std::optional<std::string>>
  get_endpoint(std::string_view id) = 0;

  /// Counts one endpoint's pending deliveries and dead letters (index keys
  /// only, not the records: for /metrics, at scrape time).
  virtual result<endpoint_backlog> backlog_of(std::string_view endpoint_id) = 0;

  /// Bytes the store takes on disk (table files and write-ahead log,
  /// approximately).
  virtual std::uint64_t approximate_bytes() = 0;

  /// The escalations derived from an event (link_escalation, or
  /// count_in_group and record_escalation: for each group it was counted
  /// in, the first escalation of that group after it that lists it among
  /// its members). A few reads per group, whatever the escalations' size.
  virtual result<std::vector<std::string>>
  escalations_of(std::string_view event_id) = 0;

  /// The events an escalation was derived from, oldest first, as
  /// record_escalation recorded them; none for any other event (and for
  /// escalations recorded before it: their bodies list their members).
  virtual result<std::vector<std::string>>
  members_of(std::string_view escalation_id) = 0;

  /// Calls `fn` for each stored event whose id was made at or after `since`
  /// (ids are time-ordered: an index seek, then the events in id order),
  /// until it returns false. What rebuilds the escalation rules' counts.
  virtual status
  for_each_event_since(unix_ms since,
                       const std::function<bool(const event_record&)>& fn) = 0;

  /// A page of events, newest first (see event_query): ids are
  /// time-ordered, so the events are read in reverse key order from `until`
  /// (or `before`) down to `since` and the filters applied to each record
  /// read; never more than `max_examined` records per call.
  virtual result<event_page> list_events(const event_query& q) = 0;

  /// Calls `fn(seq, record_json)` for each log record with seq >= `from`.
  virtual status for_each_record(
      std::uint64_t from,
      const std::function<bool(std::uint64_t, std::string_view)>& fn) = 0;
};

struct event_log_options {
  std::string dir;
  /// Create the database when absent (default). false: fail instead.
  bool create_if_missing = true;
  /// For tests: a sync of the write-ahead log fails (an I/O error) while
  /// this returns true. Unset in the daemon.
  std::function<bool()> fail_log_sync = {};
};

/// Opens (or creates) the RocksDB event log in `opts.dir`. Fails with code
/// "store_locked" when another process holds it.
result<std::unique_ptr<event_log>>
open_event_log(const event_log_options& opts);

} // namespace tocsin::storage
