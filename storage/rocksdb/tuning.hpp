// How the RocksDB backend tunes RocksDB (tuning.cpp): the options of the
// database and of its column families, and each one's memtable insert hints.
#pragma once

#include "storage/rocksdb/store_impl.hpp"

#include <memory>

#include <rocksdb/env.h>
#include <rocksdb/options.h>
#include <rocksdb/slice_transform.h>

namespace tocsin::storage::rocksdb_backend {

/// The database's options for `opts`. `env` receives the environment they
/// name, if not the default (it must outlive the database).
rocksdb::DBOptions db_options(const store_options& opts,
                              std::unique_ptr<rocksdb::Env>& env);

/// The options every column family starts from.
rocksdb::ColumnFamilyOptions cf_options();

/// For column families written (nearly) in key order — the log by sequence
/// number, events by their time-ordered ids: a flushed table's keys follow
/// those of the tables before it, so that universal compaction can move
/// tables down by their metadata instead of rewriting them, as leveled
/// compaction does from L0 to L1 (e2e_bench, batched: leveled compaction
/// rewrote each of their records once, about 2.5 us of CPU per delivered
/// event; alternated in one run, the daemon took 49.7 us per event with it
/// and 43.0 us with this). Retention's deletions still meet what they
/// delete: a table with tombstones overlaps older ones, is merged with them,
/// and one dense with them is compacted early (CompactOnDeletionCollector);
/// the log's tables of expired records are dropped besides
/// (drop_log_tables). A store of an older version, compacted by level, opens
/// as it is: each of its levels is one sorted run to universal compaction.
void compact_in_key_order(rocksdb::ColumnFamilyOptions& opts);

/// Memtable insert hints per column family (see endpoint_prefix). Keys made
/// in increasing order (time-ordered ids, time keys) share one hint: each
/// insert lands right after the previous one. Column families keyed by
/// arbitrary ids take none, and neither do the escalations, which retention
/// removes ranges from (see sequence_keys).
std::shared_ptr<const rocksdb::SliceTransform> insert_hint_of(cf c);

} // namespace tocsin::storage::rocksdb_backend
