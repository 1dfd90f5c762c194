// A websocket client for the stream's tests (Beast, synchronous, with
// deadlines). Boost-free header (pimpl), like http_client.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace tocsin::test {

class ws_client {
public:
  /// Connects to 127.0.0.1:`port` and upgrades `target` with extra
  /// `headers` (e.g. Authorization, Sec-WebSocket-Protocol). On failure
  /// ok() is false and error() says why (the HTTP status for a refusal).
  ws_client(
      std::uint16_t port, const std::string& target,
      const std::vector<std::pair<std::string, std::string>>& headers = {});
  ~ws_client();
  ws_client(const ws_client&) = delete;
  ws_client& operator=(const ws_client&) = delete;

  bool ok() const;
  const std::string& error() const;
  /// The refusal's HTTP status (0 if the upgrade succeeded or no answer).
  int status() const;
  /// The subprotocol the server chose (empty: none).
  std::string protocol() const;

  /// The next text frame, or nothing within `timeout` (or when closed).
  std::optional<std::string>
  read(std::chrono::milliseconds timeout = std::chrono::seconds{10});

  /// Sends a text frame; false (and error() says why) if it failed.
  bool send(const std::string& text);

  /// Closes with a close frame.
  void close();

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace tocsin::test
