// Debian's chromium, headless, driven over the DevTools protocol (a
// websocket: tests/support/ws_client) for the dashboard's browser test: load
// a page, run script in it, wait for what it shows, take screenshots.
#pragma once

#include "tests/support/daemon_process.hpp"
#include "tests/support/ws_client.hpp"

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

namespace tocsin::test {

class headless_browser {
public:
  /// Starts /usr/bin/chromium (--headless --no-sandbox --disable-gpu) with a
  /// profile in `dir` and opens a page. ok() false (error() says why) if it
  /// could not.
  explicit headless_browser(const std::filesystem::path& dir);
  ~headless_browser();

  bool ok() const { return ok_; }
  const std::string& error() const { return error_; }

  void navigate(const std::string& url);
  /// The value of `expression` in the page (promises awaited); null on an
  /// exception (error() says which).
  nlohmann::json eval(const std::string& expression);
  /// Polls `expression` until it is truthy; false on timeout.
  bool wait_for(const std::string& expression,
                std::chrono::milliseconds timeout = std::chrono::seconds{20});
  /// The page as a PNG file.
  bool screenshot(const std::filesystem::path& png);
  /// What the page wrote to its console (errors included), so far.
  const std::string& console() const { return console_; }

private:
  nlohmann::json call(const std::string& method,
                      const nlohmann::json& params = nlohmann::json::object());

  std::unique_ptr<daemon_process> process_;
  std::unique_ptr<ws_client> page_;
  int next_id_ = 1;
  bool ok_ = false;
  std::string error_;
  std::string console_;
};

} // namespace tocsin::test
