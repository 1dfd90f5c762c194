// The shared store: a PostgreSQL database (schema.hpp), which its own
// streaming replication makes highly available.
#pragma once

#include "storage/store.hpp"

namespace tocsin::storage {

/// Connects to `opts.postgres_url`, creates or migrates the schema, and
/// opens the store. Fails with "store_unavailable" when the database cannot
/// be reached, "schema_too_new" for a schema newer than this build knows.
result<std::unique_ptr<store>> open_postgres_store(const store_options& opts);

} // namespace tocsin::storage
