// The embedded store: RocksDB in a directory of its own, the default.
#pragma once

#include "storage/store.hpp"

namespace tocsin::storage {

/// Opens (or creates) the RocksDB store in `opts.dir`. Fails with code
/// "store_locked" when another process holds it.
result<std::unique_ptr<store>> open_rocksdb_store(const store_options& opts);

} // namespace tocsin::storage
