#include "tests/support/app_server.hpp"

#include <algorithm>
#include <cmath>

namespace tocsin::test {

std::size_t app_server_stats::held_percentile(double p) const {
  if (held.empty())
    return 0;
  auto sorted = held;
  std::sort(sorted.begin(), sorted.end());
  auto rank = static_cast<std::size_t>(
      std::ceil(p / 100 * static_cast<double>(sorted.size())));
  return sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1];
}

app_server::app_server(app_server_options o)
    : o_(o), free_at_(o.workers, clock_type::time_point{}) {}

responder app_server::respond() {
  return [this](const received_request&, std::size_t) { return on_request(); };
}

void app_server::set_down(bool down) {
  std::lock_guard lock{mtx_};
  down_ = down;
}

canned_response app_server::on_request() {
  std::lock_guard lock{mtx_};
  auto now = clock_type::now();
  canned_response r;
  if (down_) {
    log_.push_back({now, false, 0});
    r.status = 503;
    r.body = "down";
    return r;
  }
  // What it holds now: requests not yet answered.
  std::erase_if(answering_at_, [&](auto t) { return t <= now; });
  if (answering_at_.size() >= o_.workers + o_.backlog) {
    log_.push_back({now, false, answering_at_.size() + 1});
    r.status = 503;
    r.body = "busy";
    r.headers.emplace_back("Retry-After", "1");
    return r;
  }
  // The worker free first takes it, when it is free (first come, first
  // served: every earlier request already has its worker and time).
  auto worker = std::min_element(free_at_.begin(), free_at_.end());
  auto start = std::max(now, *worker);
  auto done = start + o_.service;
  *worker = done;
  answering_at_.push_back(done);
  log_.push_back({now, true, answering_at_.size()});
  r.status = 200;
  r.body = "ok";
  r.delay = std::chrono::ceil<std::chrono::milliseconds>(done - now);
  return r;
}

app_server_stats app_server::stats(clock_type::time_point since) const {
  std::lock_guard lock{mtx_};
  app_server_stats s;
  for (auto& a : log_) {
    if (a.at < since)
      continue;
    (a.served ? s.served : s.overloaded) += 1;
    if (a.held > 0)
      s.held.push_back(a.held);
  }
  return s;
}

std::size_t app_server::arrivals(clock_type::time_point from,
                                 clock_type::time_point to) const {
  std::lock_guard lock{mtx_};
  return static_cast<std::size_t>(
      std::count_if(log_.begin(), log_.end(),
                    [&](auto& a) { return a.at >= from && a.at < to; }));
}

} // namespace tocsin::test
