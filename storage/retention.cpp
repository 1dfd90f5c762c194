#include "storage/retention.hpp"

#include "common/log.hpp"

#include <algorithm>
#include <string>

namespace tocsin::storage {

std::chrono::milliseconds retention_interval(std::chrono::milliseconds keep) {
  return std::clamp(keep / 10, std::chrono::milliseconds{10},
                    std::chrono::milliseconds{std::chrono::minutes{1}});
}

retention_runner::retention_runner(store& log, retention_options opts)
    : log_{log}, opts_{std::move(opts)}, thread_{[this] { run(); }} {}

retention_runner::~retention_runner() {
  {
    std::lock_guard guard{mtx_};
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

result<expiry> retention_runner::pass(store& log, const retention_options& opts,
                                      const std::function<bool()>& stopping) {
  auto now = opts.clock();
  auto cutoff = now - opts.keep.count();
  auto keys_cutoff = now - std::min(opts.keep, opts.keep_keys).count();
  expiry sum;
  for (;;) {
    auto x = log.expire(cutoff, keys_cutoff, opts.chunk);
    if (!x)
      return x.error();
    sum.events += x->events;
    sum.deliveries += x->deliveries;
    sum.idempotency_keys += x->idempotency_keys;
    sum.log_records += x->log_records;
    if (!x->more || (stopping && stopping()))
      return sum;
    std::this_thread::yield(); // let the commits queued behind in first
  }
}

void retention_runner::run() {
  auto stopping = [this] {
    std::lock_guard guard{mtx_};
    return stop_;
  };
  log::throttle errors;
  for (;;) {
    auto x = pass(log_, opts_, stopping);
    if (!x) {
      if (errors.admit())
        log::error("retention pass failed; trying again later",
                   {{"error", x.error().message}});
    } else if (!x->empty()) {
      log::info("retention removed finished records",
                {{"events", std::to_string(x->events)},
                 {"deliveries", std::to_string(x->deliveries)},
                 {"idempotency_keys", std::to_string(x->idempotency_keys)},
                 {"log_records", std::to_string(x->log_records)}});
    }
    std::unique_lock lock{mtx_};
    if (cv_.wait_for(lock, retention_interval(opts_.keep),
                     [this] { return stop_; }))
      return;
  }
}

} // namespace tocsin::storage
