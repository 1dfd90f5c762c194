#include "storage/postgres/schema.hpp"

#include <pqxx/pqxx>

#include <string_view>

namespace tocsin::storage::postgres {

namespace {

// Version 1, whole. A later version adds a step from the one before; a
// database is brought forward one step at a time, each in its own
// transaction with its version.
constexpr std::string_view schema_v1 = R"sql(
-- Ids are ASCII and compared byte by byte ("C"), as the embedded store
-- orders them; what a client or an event brings (idempotency keys,
-- escalation groups) is kept as bytes, never as text the database checks.
CREATE TABLE tocsin_events (
  id          text COLLATE "C" PRIMARY KEY, -- evt_<ULID>: ordered by time
  record      bytea NOT NULL                -- storage::encode(event_record)
);
CREATE TABLE tocsin_deliveries (
  id          text COLLATE "C" PRIMARY KEY, -- dlv_<ULID>
  endpoint_id text COLLATE "C" NOT NULL,
  state       smallint NOT NULL,  -- 0 pending, 1 delivered, 2 dead-lettered
  place       bigint NOT NULL,    -- its place in its endpoint's line while pending
  finished_at bigint NOT NULL,    -- Unix ms; 0 while pending
  record      bytea NOT NULL      -- storage::encode(delivery)
) WITH (fillfactor = 80); -- room on the page for an attempt's update (HOT)
-- An endpoint's line of pending deliveries, in the order its queue takes
-- them; dead letters by endpoint and time, and by id; what retention reads.
CREATE INDEX tocsin_deliveries_line ON tocsin_deliveries (endpoint_id, place, id)
  WHERE state = 0;
CREATE INDEX tocsin_deliveries_dead ON tocsin_deliveries (endpoint_id, finished_at, id)
  WHERE state = 2;
CREATE INDEX tocsin_deliveries_dead_id ON tocsin_deliveries (id) WHERE state = 2;
CREATE INDEX tocsin_deliveries_finished ON tocsin_deliveries (finished_at, id)
  WHERE state <> 0;
-- The log: sequence numbers follow commit order (the head row is locked by
-- every writing transaction until it commits); a commit's records in one
-- row, framed one after the other (storage/postgres/log_table.hpp).
CREATE TABLE tocsin_log (
  first_seq bigint PRIMARY KEY,
  last_seq  bigint NOT NULL,
  at        bigint NOT NULL,     -- Unix ms: what retention goes by
  records   bytea COMPRESSION lz4 NOT NULL
);
CREATE TABLE tocsin_log_head (
  one  boolean PRIMARY KEY DEFAULT true CHECK (one),
  seq  bigint NOT NULL
);
INSERT INTO tocsin_log_head (seq) VALUES (0);
CREATE TABLE tocsin_idempotency_keys (
  key    bytea PRIMARY KEY,
  at     bigint NOT NULL,
  record bytea NOT NULL      -- JSON: ids, at, digest
);
CREATE INDEX tocsin_idempotency_keys_at ON tocsin_idempotency_keys (at);
CREATE TABLE tocsin_endpoints (
  id         text COLLATE "C" PRIMARY KEY,
  definition bytea NOT NULL  -- JSON
);
-- Escalations: which groups an event was counted in, each escalation with
-- its members, and the one-record-per-member links of older versions.
CREATE TABLE tocsin_escalation_counts (
  event_id text COLLATE "C" NOT NULL,
  rule     bytea NOT NULL,
  grp      bytea NOT NULL,
  PRIMARY KEY (event_id, rule, grp)
);
CREATE TABLE tocsin_escalations (
  id      text COLLATE "C" PRIMARY KEY,
  rule    bytea NOT NULL,
  grp     bytea NOT NULL,
  at      bigint NOT NULL,
  members text NOT NULL      -- event ids, each followed by a newline
);
CREATE INDEX tocsin_escalations_group ON tocsin_escalations (rule, grp, at, id);
CREATE TABLE tocsin_escalation_links (
  event_id      text COLLATE "C" NOT NULL,
  escalation_id text COLLATE "C" NOT NULL,
  PRIMARY KEY (event_id, escalation_id)
);
CREATE TABLE tocsin_settings (
  key   text PRIMARY KEY,
  value text NOT NULL
);
)sql";

// Version 2: the nodes sharing the store and their leases
// (storage/cluster.hpp). Every time in them is the database's (now()), never a
// node's clock.
constexpr std::string_view schema_v2 = R"sql(
CREATE TABLE tocsin_nodes (
  id           text COLLATE "C" PRIMARY KEY,
  listen       text NOT NULL,        -- the address its API listens on
  heartbeat_at timestamptz NOT NULL, -- alive while younger than the ttl
  started_at   timestamptz NOT NULL  -- its first heartbeat since it joined
);
-- A lease's holder drives what it names (an endpoint's id, "escalation").
-- Released or never held: node_id and expires_at null. The epoch grows by
-- one each time the lease is taken and is never reset: a holder's writes
-- carry it and are refused once it has moved on (fencing).
CREATE TABLE tocsin_leases (
  name       text COLLATE "C" PRIMARY KEY,
  node_id    text COLLATE "C",
  epoch      bigint NOT NULL,
  expires_at timestamptz
);
CREATE INDEX tocsin_leases_node ON tocsin_leases (node_id, name);
)sql";

/// The steps from each version to the next: steps[v - 1] makes version v.
constexpr std::string_view steps[] = {schema_v1, schema_v2};
static_assert(std::size(steps) == schema_version);

error unavailable(const std::exception& e) {
  return error{"store_unavailable", std::string{"PostgreSQL: "} + e.what()};
}

result<int> read_version(pqxx::transaction_base& t) {
  auto exists = t.exec1("SELECT to_regclass('tocsin_schema') IS NOT NULL");
  if (!exists[0].as<bool>())
    return 0;
  auto r = t.exec("SELECT version FROM tocsin_schema");
  return r.empty() ? 0 : r[0][0].as<int>();
}

/// Brings the schema in `t` from `version` to the next.
void step_up(pqxx::transaction_base& t, int version) {
  t.exec0(std::string{steps[version]});
  if (version == 0) {
    t.exec0("CREATE TABLE tocsin_schema (version integer NOT NULL)");
    t.exec0("INSERT INTO tocsin_schema VALUES (1)");
  } else {
    t.exec0("UPDATE tocsin_schema SET version = " +
            std::to_string(version + 1));
  }
}

} // namespace

result<int> stored_schema_version(pqxx::connection_base& c) {
  try {
    pqxx::read_transaction t{c};
    return read_version(t);
  } catch (const std::exception& e) {
    return unavailable(e);
  }
}

status migrate(pqxx::connection_base& c) {
  try {
    // Session-level: held across the transactions below, released on every
    // path (also when the connection drops).
    pqxx::nontransaction lock{c};
    lock.exec1("SELECT pg_advisory_lock(" + std::to_string(schema_lock_key) +
               ")");
    lock.commit();
    auto unlock = [&] {
      pqxx::nontransaction u{c};
      u.exec1("SELECT pg_advisory_unlock(" + std::to_string(schema_lock_key) +
              ")");
      u.commit();
    };
    // Each step is a transaction of its own, with its version: one that
    // fails leaves the store at the version before it. The transaction
    // ends (committed, or aborted on its way out) before the lock is let go.
    // The version reached, or the error.
    auto step = [&]() -> result<int> {
      pqxx::work t{c};
      auto version = read_version(t);
      if (!version)
        return version.error();
      if (*version > schema_version)
        return error{"schema_too_new",
                     "the PostgreSQL store has schema version " +
                         std::to_string(*version) + "; this tocsin knows " +
                         std::to_string(schema_version) +
                         " at most: run the newer tocsin (stores are never "
                         "migrated backwards)"};
      if (*version == schema_version)
        return *version;
      step_up(t, *version);
      t.commit();
      return *version + 1;
    };
    status outcome;
    try {
      for (;;) {
        auto reached = step();
        if (!reached) {
          outcome = reached.error();
          break;
        }
        if (*reached == schema_version)
          break;
      }
    } catch (...) {
      try {
        unlock();
      } catch (...) {
        // The connection is gone, and the lock with it.
      }
      throw;
    }
    unlock();
    return outcome;
  } catch (const std::exception& e) {
    return unavailable(e);
  }
}

} // namespace tocsin::storage::postgres
