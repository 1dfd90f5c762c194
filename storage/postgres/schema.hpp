// The PostgreSQL store's tables: created, or migrated from an older
// version, when tocsin starts, under an advisory lock (several nodes may
// start at once), with the version kept in a table of its own. A schema
// newer than this build knows is refused, never touched.
#pragma once

#include "common/result.hpp"

#include <string>

namespace pqxx {
class connection_base;
} // namespace pqxx

namespace tocsin::storage::postgres {

/// The schema this build writes. Version 1: events, deliveries (with the
/// per-endpoint pending line and the dead letters as partial indexes), the
/// log with its sequence head, idempotency keys, endpoints, escalation
/// links and the store's own settings. Version 2: the nodes sharing the
/// store and their leases (tocsin_nodes, tocsin_leases).
inline constexpr int schema_version = 2;

/// The key of the advisory lock taken while the schema is created or
/// migrated (pg_advisory_lock): "tocsin" in ASCII.
inline constexpr long long schema_lock_key = 0x746f6373696eLL;

/// Creates the schema in an empty database, migrates an older one, or
/// checks the current one. Errors: "schema_too_new" (a newer tocsin wrote
/// it: this one refuses to run on it), "store_unavailable" (the database
/// refused or went away; the message says what it said).
status migrate(pqxx::connection_base& c);

/// The version the database holds (0: no tocsin schema).
result<int> stored_schema_version(pqxx::connection_base& c);

} // namespace tocsin::storage::postgres
