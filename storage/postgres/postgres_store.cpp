#include "storage/postgres/postgres_store.hpp"

namespace tocsin::storage {

result<std::unique_ptr<store>> open_postgres_store(const store_options&) {
  return error{"bad_config", "the PostgreSQL store is not built yet"};
}

} // namespace tocsin::storage
