#include "bench/sink_ceiling.hpp"

#include "common/url.hpp"
#include "net/address_policy.hpp"
#include "net/https_client.hpp"

#include <atomic>
#include <chrono>
#include <functional>
#include <thread>

namespace tocsin::bench {

double sink_ceiling(std::uint16_t port, const std::string& ca_file,
                    int in_flight, int seconds, bool http2) {
  using clock_type = std::chrono::steady_clock;
  net::https_client_options co;
  co.ca_file = ca_file;
  co.addresses = *net::address_policy::from_cidrs({"127.0.0.0/8"});
  auto made = net::make_https_client(co);
  if (!made)
    return 0;
  auto& client = **made;
  net::outbound_request req;
  req.target =
      *parse_url("https://127.0.0.1:" + std::to_string(port) + "/ceiling");
  req.headers = {{"content-type", "application/json"}};
  req.body = std::string(700, 'x'); // about a notification's size
  req.http2 = http2;
  std::atomic<bool> running{true};
  std::atomic<std::size_t> answered{0};
  std::atomic<int> outstanding{0};
  std::function<void()> send_one = [&] {
    ++outstanding;
    client.send(req, [&](net::inbound_response r) {
      if (r.status == 200)
        ++answered;
      if (running)
        send_one();
      --outstanding;
    });
  };
  auto start = clock_type::now();
  for (int i = 0; i < in_flight; ++i)
    send_one();
  std::this_thread::sleep_for(std::chrono::seconds{seconds});
  auto done = answered.load();
  auto secs = std::chrono::duration<double>(clock_type::now() - start).count();
  running = false;
  while (outstanding > 0)
    std::this_thread::sleep_for(std::chrono::milliseconds{5});
  client.stop();
  return static_cast<double>(done) / secs;
}

} // namespace tocsin::bench
