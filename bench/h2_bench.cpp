// HTTP/1.1 against HTTP/2 for tocsin's HTTPS client (issue 27): requests/s
// of the client (bench/sink_ceiling.hpp: keep-alive, a fixed number of
// requests outstanding, a webhook-sized POST) at one sink that offers both
// by ALPN, once offering only http/1.1 (a connection per request
// outstanding), once offering h2 (one connection, a stream per request).
//
//   h2_bench [--seconds S] [--in-flight M] [--sink builtin|nginx|both]
//            [--nginx-workers N]
//
// builtin: the test receiver (one I/O thread, requests counted, not kept),
// in this process; nginx: Debian's nginx 1.22 (`listen ... ssl http2`), a
// child process. Build in Release; on a shared machine compare the two
// protocols of one run, not runs.
#include "bench/nginx_sink.hpp"
#include "bench/sink_ceiling.hpp"
#include "tests/support/https_receiver.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/test_ca.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>

using namespace tocsin;

namespace {

struct options {
  int seconds = 5;
  int in_flight = 64;
  std::string sink = "both";
  int nginx_workers = 1;
};

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    std::string value = argv[i + 1];
    if (flag == "--seconds")
      o.seconds = std::stoi(value);
    else if (flag == "--in-flight")
      o.in_flight = std::stoi(value);
    else if (flag == "--sink")
      o.sink = value;
    else if (flag == "--nginx-workers")
      o.nginx_workers = std::stoi(value);
    else {
      std::fprintf(stderr, "unknown option %s\n", flag.c_str());
      std::exit(2);
    }
  }
  return o;
}

void row(const std::string& sink, const options& o,
         const std::function<double(bool)>& measure) {
  double h1 = measure(false);
  double h2 = measure(true);
  std::printf("%-8s in-flight %4d  http/1.1 %8.0f req/s  h2 %8.0f req/s  "
              "h2/h1 %.2f\n",
              sink.c_str(), o.in_flight, h1, h2, h1 > 0 ? h2 / h1 : 0.0);
  std::fflush(stdout);
}

} // namespace

int main(int argc, char** argv) {
  auto o = parse(argc, argv);
  test::temp_dir dir;
  test::test_ca ca{dir.path()};
  auto cert = ca.issue("sink", {"localhost"}, {"127.0.0.1"});
  std::printf("h2_bench: %d s per protocol, %d requests outstanding\n",
              o.seconds, o.in_flight);
  if (o.sink == "builtin" || o.sink == "both") {
    test::receiver_options ro{cert.cert_file, cert.key_file};
    ro.keep_requests = false;
    ro.http2 = true;
    test::https_receiver sink{ro};
    row("builtin", o, [&](bool http2) {
      return bench::sink_ceiling(sink.port(), ca.ca_file(), o.in_flight,
                                 o.seconds, http2);
    });
  }
  if (o.sink == "nginx" || o.sink == "both") {
    bench::nginx_sink sink{dir.path(), cert, o.nginx_workers, true};
    row("nginx", o, [&](bool http2) {
      return bench::sink_ceiling(sink.port(), ca.ca_file(), o.in_flight,
                                 o.seconds, http2);
    });
  }
  return 0;
}
