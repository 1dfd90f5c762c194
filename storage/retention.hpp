// Retention: a background thread that removes, through store::expire,
// what finished longer ago than `delivery.retention` (events whose
// deliveries all finished, their deliveries, log records) and idempotency
// keys past their window,
// a chunk at a time so that commits never wait long. Knows only the
// store interface, so every backend retains the same way.
#pragma once

#include "common/result.hpp"
#include "common/time.hpp"
#include "storage/store.hpp"

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>

namespace tocsin::storage {

struct retention_options {
  /// How long finished records are kept.
  std::chrono::milliseconds keep = std::chrono::hours{24 * 7};
  /// How long idempotency keys are kept (they answer for 24 h; kept no
  /// longer than `keep` either).
  std::chrono::milliseconds keep_keys = std::chrono::hours{24};
  /// Deliveries (and keys) looked at per chunk: what a commit may wait for.
  std::size_t chunk = 256;
  std::function<unix_ms()> clock = now_ms;
};

/// How often a pass starts for `keep`: a tenth of it, at most a minute.
std::chrono::milliseconds retention_interval(std::chrono::milliseconds keep);

class retention_runner {
public:
  /// Starts the thread; its first pass runs at once.
  retention_runner(store& log, retention_options opts);
  ~retention_runner(); ///< stops between chunks and joins

  retention_runner(const retention_runner&) = delete;
  retention_runner& operator=(const retention_runner&) = delete;

  /// One whole pass (every chunk) with the cutoff now - keep.
  static result<expiry> pass(store& log, const retention_options& opts,
                             const std::function<bool()>& stopping = {});

private:
  void run();

  store& log_;
  retention_options opts_;
  std::mutex mtx_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

} // namespace tocsin::storage
