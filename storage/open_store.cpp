#include "storage/postgres/postgres_store.hpp"
#include "storage/rocksdb/rocksdb_store.hpp"

namespace tocsin::storage {

result<std::unique_ptr<store>> open_store(const store_options& opts) {
  switch (opts.kind) {
  case backend::rocksdb:
    return open_rocksdb_store(opts);
  case backend::postgres:
    return open_postgres_store(opts);
  }
  return error{"bad_config", "unknown storage backend"};
}

} // namespace tocsin::storage
