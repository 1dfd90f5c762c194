#include "bench/nginx_sink.hpp"

#include "bench/bench_util.hpp"
#include "tests/support/run_command.hpp"

#include <charconv>
#include <csignal>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <thread>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace tocsin::bench {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

/// "1.22.1" from "nginx version: nginx/1.22.1" (which `nginx -v` writes to
/// stderr).
std::string nginx_version() {
  auto err = test::run_command({nginx_sink::binary, "-v"}).err;
  auto slash = err.find('/');
  if (slash == std::string::npos)
    return "unknown";
  auto version = err.substr(slash + 1);
  return version.substr(0, version.find_first_of(" \n"));
}

/// Writes the configuration into `prefix` (created) and returns its path.
/// Every path nginx would otherwise take from its build (pid, logs, temp
/// directories) points into `prefix`, so that it runs beside a system nginx
/// and leaves nothing behind.
fs::path write_config(const fs::path& prefix, const test::pem_files& cert,
                      int workers, std::uint16_t port, bool http2) {
  fs::create_directories(prefix);
  auto in = [&](const char* name) { return (prefix / name).string(); };
  auto config = prefix / "nginx.conf";
  std::ofstream out{config};
  // In the foreground, as a child of the bench, which stops it.
  out << "daemon off;\nmaster_process on;\n";
  // As root the workers would otherwise drop to nobody, who may not write
  // into the bench's private temp directory.
  if (::geteuid() == 0)
    out << "user root;\n";
  out << "worker_processes " << workers << ";\n"
      << "pid " << in("nginx.pid") << ";\n"
      << "lock_file " << in("nginx.lock") << ";\n"
      << "error_log " << in("error.log") << " warn;\n"
      << "events {\n  worker_connections 1024;\n}\n"
      << "http {\n";
  for (const char* temp : {"client_body", "proxy", "fastcgi", "uwsgi", "scgi"})
    out << "  " << temp << "_temp_path " << in(temp) << ";\n";
  // What the bench reads back: arrival time (wall clock, ms), the
  // connection's serial number (for a look at connection churn), the
  // event's id and the endpoint's path (fan-out). Buffered, so that logging
  // costs nginx little; flushed at least every second.
  out << "  log_format sink '$msec $connection $http_webhook_id $uri';\n"
      << "  access_log " << in("access.log")
      << " sink buffer=256k flush=1s;\n"
      // tocsin keeps its connections open: they must not be closed under it
      // after a number of requests (HTTP/1.1 and, in nginx 1.22, HTTP/2
      // streams alike) or a short idle time.
      << "  keepalive_requests 1000000;\n"
      << "  keepalive_timeout 60s;\n"
      << "  server {\n"
      << "    listen 127.0.0.1:" << port
      << (http2 ? " ssl http2;\n" : " ssl;\n") << "    ssl_certificate "
      << cert.cert_file << ";\n"
      << "    ssl_certificate_key " << cert.key_file
      << ";\n"
      // 200, empty body; nginx reads and discards the request body, and
      // the connection stays open.
      << "    location / {\n      return 200;\n    }\n"
      << "  }\n}\n";
  return config;
}

bool accepts_tcp(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

std::vector<std::string_view> split(std::string_view line, char sep) {
  std::vector<std::string_view> fields;
  for (std::size_t at; (at = line.find(sep)) != std::string_view::npos;
       line.remove_prefix(at + 1))
    fields.push_back(line.substr(0, at));
  fields.push_back(line);
  return fields;
}

} // namespace

nginx_sink::nginx_sink(const fs::path& dir, const test::pem_files& cert,
                       int workers, bool http2)
    : access_log_(dir / "nginx" / "access.log"), port_(free_port()),
      workers_(workers), version_(nginx_version()),
      process_(
          {binary, "-p", (dir / "nginx").string() + "/", "-c",
           write_config(dir / "nginx", cert, workers, port_, http2).string()},
          dir / "nginx" / "error.log"),
      wall_at_start_(std::chrono::system_clock::now()),
      steady_at_start_(std::chrono::steady_clock::now()) {
  if (!wait_accepting(5s)) {
    stop();
    throw std::runtime_error("nginx did not start on port " +
                             std::to_string(port_) + ":\n" + log());
  }
}

nginx_sink::~nginx_sink() {
  stop();
}

void nginx_sink::stop() {
  if (!process_.running())
    return;
  // Listed before the master goes: then they are no longer its children.
  auto workers = worker_pids();
  ::kill(process_.pid(), SIGQUIT);
  if (process_.wait_exit(5s))
    return;
  for (pid_t worker : workers)
    ::kill(worker, SIGKILL);
  process_.kill9();
}

bool nginx_sink::wait_accepting(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline && process_.running()) {
    if (accepts_tcp(port_))
      return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

std::vector<pid_t> nginx_sink::worker_pids() const {
  return children_of(process_.pid());
}

double nginx_sink::cpu_seconds() const {
  return server_cpu_seconds(process_.pid());
}

std::chrono::steady_clock::time_point
nginx_sink::steady_time(std::string_view msec) const {
  // Whole numbers on both sides of the '.': a double would round the
  // milliseconds.
  auto dot = msec.find('.');
  auto whole = msec.substr(0, dot);
  auto fraction =
      dot == std::string_view::npos ? std::string_view{} : msec.substr(dot + 1);
  long long secs = 0, millis = 0;
  std::from_chars(whole.data(), whole.data() + whole.size(), secs);
  std::from_chars(fraction.data(), fraction.data() + fraction.size(), millis);
  // nginx truncates to the millisecond: the arrival was somewhere in the
  // millisecond that follows, so it counts from that millisecond's middle
  // (an unbiased guess; a whole millisecond early would show deliveries
  // that arrive before they were sent).
  std::chrono::system_clock::time_point wall{
      std::chrono::microseconds{(secs * 1000 + millis) * 1000 + 500}};
  return steady_at_start_ +
         std::chrono::duration_cast<std::chrono::steady_clock::duration>(
             wall - wall_at_start_);
}

std::vector<sink_arrival> nginx_sink::take_arrivals() {
  std::ifstream in{access_log_, std::ios::binary};
  in.seekg(static_cast<std::streamoff>(log_read_));
  std::string text((std::istreambuf_iterator<char>(in)), {});
  log_read_ += text.size();
  text.insert(0, partial_line_);
  auto complete = text.rfind('\n') + 1; // 0 when there is no '\n'
  partial_line_ = text.substr(complete);

  std::vector<sink_arrival> arrivals;
  std::string_view lines{text.data(), complete};
  for (auto line : split(lines, '\n')) {
    // "$msec $connection $http_webhook_id $uri"; "-" for no webhook-id.
    auto fields = split(line, ' ');
    if (fields.size() != 4 || fields[2] == "-")
      continue;
    arrivals.push_back({std::string{fields[2]}, std::string{fields[3]},
                        steady_time(fields[0])});
  }
  return arrivals;
}

} // namespace tocsin::bench
