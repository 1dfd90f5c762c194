// A receiver like a small application server, for https_receiver's
// responder: `workers` requests served at once, each taking `service`; up to
// `backlog` more wait their turn (first come, first served); beyond that a
// 503 at once. The model decides at each request's arrival when it will be
// answered (the receiver waits that long asynchronously), so the timing is
// exact whatever the receiver's threads do, and what it holds — served plus
// waiting — is known at every arrival.
#pragma once

#include "tests/support/https_receiver.hpp"

#include <chrono>
#include <cstddef>
#include <mutex>
#include <vector>

namespace tocsin::test {

struct app_server_options {
  std::size_t workers = 20;
  std::chrono::milliseconds service{20};
  std::size_t backlog = 20;
};

/// What the server went through, from `since` on (see app_server::stats).
struct app_server_stats {
  std::size_t served = 0;     ///< answered 200
  std::size_t overloaded = 0; ///< answered 503
  /// Requests held (served + waiting) as each request arrived, including it.
  std::vector<std::size_t> held;
  /// The p-th percentile (0..100) of `held`; 0 when empty.
  std::size_t held_percentile(double p) const;
};

class app_server {
public:
  using clock_type = std::chrono::steady_clock;

  explicit app_server(app_server_options o = {});

  /// The responder to give https_receiver. Thread-safe.
  responder respond();
  /// Answers 503 to everything while down (an outage), as it would behind
  /// a load balancer with no healthy backend.
  void set_down(bool down);

  /// What happened to requests that arrived at or after `since`.
  app_server_stats stats(clock_type::time_point since = {}) const;
  /// Requests (served or not) that arrived in [from, to).
  std::size_t arrivals(clock_type::time_point from,
                       clock_type::time_point to) const;

private:
  struct arrival {
    clock_type::time_point at;
    bool served = false;
    std::size_t held = 0;
  };
  canned_response on_request();

  app_server_options o_;
  mutable std::mutex mtx_;
  bool down_ = false;
  /// When each worker is next free.
  std::vector<clock_type::time_point> free_at_;
  /// When each request held (served or waiting) is answered.
  std::vector<clock_type::time_point> answering_at_;
  std::vector<arrival> log_;
};

} // namespace tocsin::test
