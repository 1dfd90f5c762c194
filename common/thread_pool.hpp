// A fixed set of threads that run posted work in order of arrival: where
// tocsin does blocking work (store reads for the API) away from threads that
// must not block (the HTTP I/O threads).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace tocsin {

class thread_pool {
public:
  explicit thread_pool(std::size_t threads);
  /// Runs what was posted, then joins.
  ~thread_pool();

  thread_pool(const thread_pool&) = delete;
  thread_pool& operator=(const thread_pool&) = delete;

  /// Runs `work` on one of the threads. Thread-safe.
  void post(std::function<void()> work);

private:
  void run();

  std::mutex mtx_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

} // namespace tocsin
