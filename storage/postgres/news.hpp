// News from the database: a connection of its own that listens (LISTEN)
// for what every node's commits and heartbeats announce (NOTIFY), on a
// thread of its own. Channel tocsin_log carries the last number of each
// commit's log batch (log_table.hpp), tocsin_cluster a node giving up
// leases or leaving (cluster.cpp). Private to storage/postgres/.
#pragma once

#include "storage/cluster.hpp"

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace tocsin::storage::postgres {

class news_listener {
public:
  using handler = std::function<void(cluster_news, std::uint64_t)>;

  /// Starts listening on `url` as application `name`; returns once the
  /// first connection listens (news of commits after that is heard), or
  /// could not be made (then it is tried again, at most once a second, and
  /// `fn` hears `reconnected` once it is). `fn` runs on the listener's
  /// thread.
  news_listener(std::string url, std::string name, handler fn);
  /// Stops the thread (at once: it waits on the socket and a pipe of its
  /// own) and joins it.
  ~news_listener();

  news_listener(const news_listener&) = delete;
  news_listener& operator=(const news_listener&) = delete;

private:
  void run();
  /// One connection, listening until it breaks (throws) or the listener
  /// stops (returns). `missed`: news may have gone by unheard before it;
  /// `listening` set once it listens.
  void listen_once(bool missed, bool& listening);
  /// Waits until `fd` is readable (or failed); false when the listener
  /// stops first.
  bool wait_readable(int fd);
  void first_attempt_done();

  std::string url_;
  std::string name_;
  handler fn_;
  int wake_[2] = {-1, -1}; ///< a pipe: a byte written stops the wait
  std::mutex mtx_;
  std::condition_variable cv_;
  bool stopping_ = false; ///< guarded by mtx_
  bool started_ = false;  ///< the first attempt is over; guarded by mtx_
  std::thread thread_;
};

} // namespace tocsin::storage::postgres
