#include "tests/support/headless_browser.hpp"

#include "tests/support/http_client.hpp"

#include <fstream>
#include <thread>

#include <openssl/evp.h>

namespace tocsin::test {

using nlohmann::json;

namespace {

constexpr const char* chromium = "/usr/bin/chromium";

std::string base64_decode(const std::string& in) {
  std::string out(3 * (in.size() / 4) + 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  if (n < 0)
    return {};
  auto pad = in.size() >= 2 && in[in.size() - 1] == '='
                 ? (in[in.size() - 2] == '=' ? 2 : 1)
                 : 0;
  out.resize(static_cast<std::size_t>(n) - static_cast<std::size_t>(pad));
  return out;
}

} // namespace

headless_browser::headless_browser(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir / "profile");
  if (!std::filesystem::exists(chromium)) {
    error_ = std::string{chromium} + " is missing (apt-get install chromium)";
    return;
  }
  process_ = std::make_unique<daemon_process>(
      std::vector<std::string>{
          chromium, "--headless", "--no-sandbox", "--disable-gpu",
          "--no-first-run", "--disable-dev-shm-usage",
          "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
          "--user-data-dir=" + (dir / "profile").string(),
          "--window-size=1280,900", "about:blank"},
      dir / "chromium.log");
  // "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/ID"
  std::uint16_t port = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{30};
  while (port == 0 && std::chrono::steady_clock::now() < deadline) {
    auto log = process_->log();
    constexpr std::string_view mark = "DevTools listening on ws://127.0.0.1:";
    if (auto at = log.find(mark); at != std::string::npos)
      port =
          static_cast<std::uint16_t>(std::stoi(log.substr(at + mark.size())));
    else if (!process_->running())
      break;
    else
      std::this_thread::sleep_for(std::chrono::milliseconds{50});
  }
  if (port == 0) {
    error_ = "chromium did not start: " + process_->log();
    return;
  }
  // The page chromium opened, and its own websocket.
  http_client http{"127.0.0.1", port};
  std::string ws_path;
  for (int i = 0; i < 100 && ws_path.empty(); ++i) {
    auto list = http.request("GET", "/json/list");
    auto targets = json::parse(list.body, nullptr, false);
    if (targets.is_array())
      for (auto& t : targets)
        if (t.value("type", "") == "page") {
          auto url = t.value("webSocketDebuggerUrl", "");
          if (auto p = url.find("/devtools/"); p != std::string::npos)
            ws_path = url.substr(p);
          break;
        }
    if (ws_path.empty())
      std::this_thread::sleep_for(std::chrono::milliseconds{50});
  }
  if (ws_path.empty()) {
    error_ = "chromium shows no page";
    return;
  }
  page_ = std::make_unique<ws_client>(port, ws_path);
  if (!page_->ok()) {
    error_ = "DevTools: " + page_->error();
    return;
  }
  ok_ = true;
  call("Page.enable");
  call("Runtime.enable");
}

headless_browser::~headless_browser() {
  page_.reset();
  if (process_)
    process_->kill9();
}

json headless_browser::call(const std::string& method, const json& params) {
  if (!ok_)
    return nullptr;
  auto id = next_id_++;
  if (!page_->send(
          json{{"id", id}, {"method", method}, {"params", params}}.dump())) {
    ok_ = false;
    error_ = page_->error();
    return nullptr;
  }
  for (;;) {
    auto text = page_->read(std::chrono::seconds{30});
    if (!text) {
      ok_ = false;
      error_ = method + ": " + page_->error();
      return nullptr;
    }
    auto msg = json::parse(*text, nullptr, false);
    if (msg.value("id", 0) == id)
      return msg.value("result", json::object());
    // An event: keep what the page says on its console.
    if (msg.value("method", "") == "Runtime.consoleAPICalled") {
      for (auto& a : msg["params"]["args"])
        console_ += a.value("value", json{}).dump() + " ";
      console_ += "\n";
    } else if (msg.value("method", "") == "Runtime.exceptionThrown") {
      console_ += msg["params"]["exceptionDetails"].dump() + "\n";
    }
  }
}

void headless_browser::navigate(const std::string& url) {
  call("Page.navigate", {{"url", url}});
}

json headless_browser::eval(const std::string& expression) {
  auto r = call("Runtime.evaluate", {{"expression", expression},
                                     {"returnByValue", true},
                                     {"awaitPromise", true}});
  if (r.contains("exceptionDetails")) {
    error_ = r["exceptionDetails"].dump();
    return nullptr;
  }
  if (r.contains("result") && r["result"].contains("value"))
    return r["result"]["value"];
  return nullptr;
}

bool headless_browser::wait_for(const std::string& expression,
                                std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (ok_ && std::chrono::steady_clock::now() < deadline) {
    auto v = eval("!!(" + expression + ")");
    if (v.is_boolean() && v.get<bool>())
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds{100});
  }
  return false;
}

bool headless_browser::screenshot(const std::filesystem::path& png) {
  auto r = call("Page.captureScreenshot",
                {{"format", "png"}, {"captureBeyondViewport", true}});
  if (!r.contains("data"))
    return false;
  std::ofstream out{png, std::ios::binary};
  out << base64_decode(r["data"].get<std::string>());
  return static_cast<bool>(out);
}

} // namespace tocsin::test
