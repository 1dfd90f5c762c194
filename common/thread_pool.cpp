#include "common/thread_pool.hpp"

#include <algorithm>

namespace tocsin {

thread_pool::thread_pool(std::size_t threads) {
  for (std::size_t i = 0; i < std::max<std::size_t>(1, threads); ++i)
    threads_.emplace_back([this] { run(); });
}

thread_pool::~thread_pool() {
  {
    std::lock_guard guard{mtx_};
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_)
    t.join();
}

void thread_pool::post(std::function<void()> work) {
  {
    std::lock_guard guard{mtx_};
    queue_.push_back(std::move(work));
  }
  cv_.notify_one();
}

void thread_pool::run() {
  for (;;) {
    std::function<void()> work;
    {
      std::unique_lock lock{mtx_};
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty())
        return; // stopping, and nothing left
      work = std::move(queue_.front());
      queue_.pop_front();
    }
    work();
  }
}

} // namespace tocsin
