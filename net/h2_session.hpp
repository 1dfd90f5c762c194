// The client side of one HTTP/2 connection (RFC 9113, over libnghttp2),
// without I/O: https_client feeds it the bytes the server sends and writes
// the bytes it hands out; requests go in as streams and each comes out once,
// as a result. Answers are read within the same response_limits as HTTP/1.1
// (response_reader): headers bounded, the first KiB of a body kept, the rest
// counted and discarded, and a body past the drain bound ends its stream
// (RST_STREAM), not the connection. Testable and fuzzable on bytes alone.
#pragma once

#include "net/http_types.hpp"
#include "net/response_reader.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tocsin::net {

/// How one stream ended.
struct h2_result {
  enum class outcome {
    /// A final status came (the answer stands even if the body was cut
    /// short: then `error` says why).
    answered,
    /// Not processed by the server (RFC 9113 §8.7: RST_STREAM(REFUSED_STREAM),
    /// above a GOAWAY's last stream, or never sent): may be sent again.
    refused,
    /// No answer, and the server may have processed the request.
    failed,
  };
  outcome kind = outcome::failed;
  int status = 0;
  std::string body_prefix;
  std::string retry_after;
  std::string error;
};

class h2_session {
public:
  /// Streams at once on one connection, whatever the server allows: a
  /// server announcing "unlimited" gets this many.
  static constexpr std::size_t max_streams_cap = 256;

  explicit h2_session(const response_limits& limits = {});
  ~h2_session();
  h2_session(const h2_session&) = delete;
  h2_session& operator=(const h2_session&) = delete;

  /// Opens a stream for `req` (its frames go out with the next output()):
  /// its id, or 0 when this connection takes no new stream (accepting()).
  std::int32_t submit(const outbound_request& req, std::string_view user_agent);
  /// Ends a stream before its answer is complete (its deadline passed): it
  /// is reported at once with `why` (the status stands if it came) and reset
  /// with RST_STREAM(CANCEL); the connection stays for the other streams.
  void cancel(std::int32_t stream_id, std::string_view why);
  /// Asks the server for a PING acknowledgement (is the connection alive?).
  void ping();

  /// Takes bytes the server sent. False when the connection is broken (the
  /// server broke the protocol): every open stream has been reported.
  bool receive(std::string_view bytes);
  /// Appends what is to be written to the server to `out`, about `max`
  /// bytes at most (more is taken at the next call).
  void output(std::string& out, std::size_t max = 64 * 1024);
  /// The connection is gone (`why`): every stream not yet reported is now
  /// (refused if its request never went out, failed otherwise).
  void lost(std::string_view why);

  /// The streams that ended since the last call, each once in its life.
  std::vector<std::pair<std::int32_t, h2_result>> take_results();

  /// New streams may be opened (no GOAWAY, not broken, ids left).
  bool accepting() const;
  /// The connection has a use still (nghttp2 wants to read or write).
  bool alive() const;
  /// Streams submitted and not yet closed (they count against the server's
  /// limit until then, even once reported).
  std::size_t open_streams() const;
  /// The server's SETTINGS_MAX_CONCURRENT_STREAMS (capped), 1 until its
  /// SETTINGS came (only the first request goes out before them).
  std::size_t max_streams() const;
  /// The server's first SETTINGS came.
  bool settings_received() const;
  /// Why the connection broke (empty while it works).
  const std::string& error() const;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace tocsin::net
