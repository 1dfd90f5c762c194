// Waiting on a condition with a deadline: for what a test can only observe
// by looking again (another process's answers, a file it writes).
#pragma once

#include <chrono>
#include <thread>

namespace tocsin::test {

inline constexpr auto eventually_time = std::chrono::seconds{15};

/// Polls `done` every 20 ms until it is true or `timeout` has passed.
template <class F>
bool eventually(F done, std::chrono::milliseconds timeout = eventually_time) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (done())
      return true;
    if (std::chrono::steady_clock::now() > deadline)
      return false;
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  }
}

} // namespace tocsin::test
