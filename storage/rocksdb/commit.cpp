// Group commit: writers queue up and the first writes for all; syncing the
// write-ahead log once for all that wait; refusing writes after a failure
// and taking them again.
#include "storage/rocksdb/store_impl.hpp"

#include "common/log.hpp"

#include <algorithm>
#include <vector>

namespace tocsin::storage::rocksdb_backend {

// Writers queue up; the one at the front writes the whole queue as one
// batch (sequence numbers assigned there, in queue order) while the next
// ones gather behind it — RocksDB's own group commit, one level up, so that
// sequence numbers follow commit order and a failed write takes none.
// Writing does not wait for the disk: a commit that must be synced waits
// afterwards for a sync of the log that covers it, one sync for all that
// wait, while the commits behind it write on (a delivery's step does not
// wait for an ingest's fsync).
result<std::uint64_t> rocksdb_store::commit(const changes& set, durability d) {
  if (set.empty()) {
    // Nothing to write, but a synced commit still vouches for what it
    // answers from the store (an idempotency key's replay): not while the
    // store cannot say that is on disk.
    if (d == durability::synced)
      TOCSIN_TRY(writable());
    return last_sequence();
  }
  writer w{&set};
  auto last = write_in_turn(w);
  if (last && d == durability::synced)
    TOCSIN_TRY(sync_through(*last));
  return last;
}

/// Returns once the write-ahead log is synced at least through sequence
/// number `seq` (written already). One caller syncs for all that wait: a
/// sync covers every record written before it began. Writes go on while
/// the disk syncs.
status rocksdb_store::sync_through(std::uint64_t seq) {
  std::unique_lock lock{sync_mtx_};
  while (synced_through_ < seq) {
    // What a failed sync covered may not have reached the disk (nor will
    // a later sync say otherwise): each writer it covered fails.
    if (seq <= failed_through_)
      return error{"store_error", "syncing the log failed: " + sync_error_};
    if (syncing_) {
      sync_cv_.wait(lock);
      continue;
    }
    syncing_ = true;
    auto target = last_sequence(); // every record up to it is written
    lock.unlock();
    auto st = db_->SyncWAL();
    lock.lock();
    syncing_ = false;
    sync_cv_.notify_all();
    if (st.ok()) {
      synced_through_ = std::max(synced_through_, target);
    } else {
      refuse_writes(st);
      failed_through_ = std::max(failed_through_, target);
      sync_error_ = st.ToString();
      fail("syncing the write-ahead log failed (" + sync_error_ +
           "); RocksDB takes no write after that until it is opened again");
    }
  }
  return {};
}

status rocksdb_store::writable() {
  std::lock_guard guard{health_mtx_};
  if (!failed_.empty()) // no Resume: nothing more is written in this process
    return error{"store_error", "the store cannot go on: " + failed_};
  if (refused_.empty())
    return {};
  auto now = std::chrono::steady_clock::now();
  if (now < next_resume_)
    return error{"store_error", "the store refuses writes: " + refused_};
  next_resume_ = now + std::chrono::seconds{1};
  if (auto st = db_->Resume(); !st.ok())
    return error{"store_error", "the store refuses writes: " + st.ToString()};
  refused_.clear();
  log::warn("store takes writes again");
  return {};
}

/// Writes a batch, not synced (see sync_through). After a failed write (a
/// full disk, say) RocksDB refuses every write until it is resumed:
/// writable() tries that at most once a second, so that the store takes
/// writes again by itself once the cause is gone.
status rocksdb_store::write(rocksdb::WriteBatch& batch) {
  TOCSIN_TRY(writable());
  auto st = db_->Write(rocksdb::WriteOptions{}, &batch);
  if (st.ok())
    return {};
  if (st.IsIOError())
    refuse_writes(st);
  return store_error(st);
}

/// After a write or sync failed for want of space or I/O: every commit
/// fails until writable() finds the store recovered. RocksDB 7.8 never
/// resumes after a failed sync of its write-ahead log (the test
/// a_failed_sync_fails_what_it_covered_and_stops_writes holds it to that):
/// what such a sync covered sits in the memtables but is never answered
/// as durable in this process, and the store says it cannot go on
/// (fail()).
void rocksdb_store::refuse_writes(const rocksdb::Status& st) {
  std::lock_guard guard{health_mtx_};
  if (!refused_.empty())
    return;
  refused_ = st.ToString();
  next_resume_ = std::chrono::steady_clock::now() + std::chrono::seconds{1};
  log::error("store refuses writes; new events are refused with 503 "
             "until it takes them again",
             {{"error", refused_}});
}

/// The store cannot go on in this process (see store::failed): said once,
/// to the daemon's on_failure, from the thread that found it.
void rocksdb_store::fail(const std::string& reason) {
  {
    std::lock_guard guard{health_mtx_};
    if (!failed_.empty())
      return;
    failed_ = reason;
  }
  if (on_failure_)
    on_failure_(reason);
}

std::optional<std::string> rocksdb_store::failed() {
  std::lock_guard guard{health_mtx_};
  if (failed_.empty())
    return std::nullopt;
  return failed_;
}

std::uint64_t rocksdb_store::last_sequence() const {
  std::lock_guard guard{mtx_};
  return last_seq_;
}

/// Runs `fn` while no commit writes: it reads and writes knowing that
/// nothing changes under it (retention's check-then-delete). Commits queue
/// behind it as behind any leader.
void rocksdb_store::exclusively(const std::function<void()>& fn) {
  writer w{nullptr};
  std::unique_lock lock{mtx_};
  queue_.push_back(&w);
  w.cv.wait(lock, [&] { return queue_.front() == &w; });
  lock.unlock();
  fn();
  lock.lock();
  queue_.pop_front();
  if (!queue_.empty())
    queue_.front()->cv.notify_one();
}

/// Writes the changes of `w` to the store (to the operating system, not
/// synced) in commit order, with those of the writers queued behind it:
/// the first in the queue writes for all (group commit).
result<std::uint64_t> rocksdb_store::write_in_turn(writer& w) {
  std::unique_lock lock{mtx_};
  queue_.push_back(&w);
  w.cv.wait(lock, [&] { return w.done || queue_.front() == &w; });
  if (w.done)
    return w.result ? result<std::uint64_t>{w.last} : w.result.error();
  // Leader: take everyone queued so far, up to an exclusive turn.
  std::vector<writer*> group;
  for (auto* m : queue_) {
    if (!m->set)
      break;
    group.push_back(m);
  }
  auto first_seq = last_seq_ + 1;
  lock.unlock();
  auto seq = first_seq;
  // Sized up front: a batch of a thousand events would otherwise be copied
  // a dozen times over as it grows.
  std::size_t bytes = 0;
  for (auto* member : group)
    for (auto& c : member->set->list())
      bytes += 4 * c.id.size() + c.body.size() + c.log_fields.size() +
               c.endpoint_id.size() + 96;
  rocksdb::WriteBatch batch{bytes};
  status result;
  for (auto* member : group) {
    if (result.ok())
      if (auto st = add_to_batch(batch, *member->set, seq); !st)
        result = st;
    member->last = seq - 1;
  }
  // Not synced here: a commit that must be synced waits for that after
  // its write (sync_through), so that the writes behind it do not wait
  // for the disk as well.
  if (result.ok())
    result = write(batch);
  lock.lock();
  if (result.ok())
    last_seq_ = seq - 1;
  for (auto* member : group) {
    queue_.pop_front();
    member->result = result;
    member->done = true;
    if (member != &w)
      member->cv.notify_one();
  }
  if (!queue_.empty())
    queue_.front()->cv.notify_one(); // the next leader
  if (!result)
    return result.error();
  return w.last;
}

} // namespace tocsin::storage::rocksdb_backend
