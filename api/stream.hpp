// The live stream (GET /v1/stream): what happens, as one JSON object per
// websocket frame, each with the sequence number of the log record it comes
// from. One hub tails the event log on its own thread (every record read and
// turned into a frame once, however many clients), and hands frames to each
// subscription's bounded queue. A client that does not keep up loses frames
// (counted, then announced in a "stream.lagged" frame); nothing waits for it:
// not the hub, not the other clients, never a delivery. A client that
// resumes (`since`) first reads the log from there, at its own pace, then
// joins the live feed. No Beast here (see server.cpp for the websocket).
#pragma once

#include "common/result.hpp"
#include "storage/store.hpp"

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace tocsin::api {

/// The kinds of frames: event.accepted, delivery.attempted,
/// delivery.delivered, delivery.dead_lettered, event.acknowledged,
/// event.resolved, endpoint.health (and stream.lagged, unfiltered).
bool is_stream_type(std::string_view type);

/// What a client asked for: `types` (comma-separated; empty: all),
/// `min_severity` (frames about events below it are left out; frames that
/// carry no severity pass), `endpoint` (frames about other endpoints are
/// left out; frames about no endpoint pass), and `since` (resume after
/// this sequence number).
struct stream_filter {
  std::vector<std::string> types;
  int min_severity = 0; ///< severity_rank
  std::string endpoint;
  std::optional<std::uint64_t> since;
};

/// Reads the query string of GET /v1/stream. Errors name the parameter.
result<stream_filter> parse_stream_query(std::string_view query);

/// One frame and what filters look at.
struct stream_frame {
  std::uint64_t seq = 0;
  std::string type;
  int severity = -1;       ///< -1: not about one event's severity
  std::string endpoint_id; ///< empty: not about one endpoint
  std::string json;

  bool matches(const stream_filter& f) const;
};

/// Turns a log record (its JSON) into a frame, or nothing for records the
/// stream does not show. `log` is read for an accepted event's fields.
std::optional<stream_frame> frame_of(std::uint64_t seq, std::string_view record,
                                     storage::store& log);

/// One client's queue. The hub pushes, the client's session takes.
class stream_subscription {
public:
  /// `notify` is called (from the hub's thread) when frames become
  /// available after take() found none: the session schedules its next
  /// write.
  stream_subscription(stream_filter filter, std::size_t capacity,
                      std::function<void()> notify)
      : filter_(std::move(filter)), capacity_(capacity),
        notify_(std::move(notify)) {}

  const stream_filter& filter() const { return filter_; }

  /// Up to `max` frames (JSON texts) to send, oldest first, then (once
  /// the queue is empty) a "stream.lagged" frame when frames were dropped.
  /// Empty: none now (`notify` is called when there are).
  std::vector<std::shared_ptr<const std::string>> take(std::size_t max = 64);

  /// The client went away: the hub forgets it.
  void close() { closed_.store(true); }
  bool closed() const { return closed_.load(); }

  /// Frames dropped since the stream started (for tests).
  std::uint64_t dropped_total() const;

private:
  friend class stream_hub;
  /// A live frame; dropped (and counted) when the queue is full.
  void push(std::shared_ptr<const std::string> frame);
  /// Room left (for catching up from the log without dropping).
  std::size_t room() const;

  stream_filter filter_;
  std::size_t capacity_;
  std::function<void()> notify_;
  std::atomic<bool> closed_{false};

  mutable std::mutex mtx_;
  std::deque<std::shared_ptr<const std::string>> queue_;
  std::uint64_t dropped_ = 0; ///< since the last lagged frame
  std::uint64_t dropped_total_ = 0;
  bool waiting_ = true; ///< the session found nothing: notify on the next
  /// Catching up: the next sequence number to read from the log (the hub's
  /// thread only). Nothing: live.
  std::optional<std::uint64_t> cursor_;
};

struct stream_options {
  /// How often the hub looks for new records when nothing wakes it.
  std::chrono::milliseconds poll{50};
  /// Frames a client may have waiting before newer ones are dropped.
  std::size_t queue_capacity = 1024;
  /// Clients at once; more are refused (503).
  std::size_t max_clients = 1000;
};

class stream_hub {
public:
  /// Starts tailing `log` (which must outlive the hub) from its end.
  stream_hub(storage::store& log, stream_options opts = {});
  ~stream_hub();
  stream_hub(const stream_hub&) = delete;
  stream_hub& operator=(const stream_hub&) = delete;

  /// A new client (see stream_subscription for `notify`); error
  /// "too_many_clients".
  result<std::shared_ptr<stream_subscription>>
  subscribe(stream_filter filter, std::function<void()> notify);

  std::size_t clients() const;

private:
  void run();
  /// Reads and dispatches what the log has after `next_`; false when
  /// stopping.
  void step();
  void catch_up(stream_subscription& s);

  storage::store& log_;
  stream_options opts_;
  std::uint64_t next_ = 0; ///< the hub's thread only: next record to read
  mutable std::mutex mtx_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::vector<std::shared_ptr<stream_subscription>> subs_;
  std::thread thread_;
};

} // namespace tocsin::api
