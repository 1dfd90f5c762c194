// What the benchmarks report about the machine and the daemon process:
// the CPU model, peak and current RSS, CPU time used by a process or by all
// the processes of a server (from /proc); and a free loopback port for the
// child processes that must be told theirs.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <unistd.h>

namespace tocsin::bench {

/// The admin token the daemon wrote into its data directory at first start.
inline std::string admin_token(const std::filesystem::path& data_dir) {
  std::string token;
  std::getline(std::ifstream{data_dir / "admin.token"}, token);
  return token;
}

inline std::string cpu_model() {
  std::ifstream in{"/proc/cpuinfo"};
  for (std::string line; std::getline(in, line);)
    if (line.rfind("model name", 0) == 0)
      return line.substr(line.find(':') + 2);
  return "unknown";
}

/// "AMD EPYC ..., 2 cores, Linux 6.1.0".
inline std::string machine() {
  struct utsname u {};
  uname(&u);
  return cpu_model() + ", " +
         std::to_string(std::thread::hardware_concurrency()) + " cores, " +
         u.sysname + " " + u.release;
}

/// A field of /proc/<pid>/status in KiB ("VmHWM": peak RSS, "VmRSS": now).
inline long status_kib(pid_t pid, const std::string& field) {
  std::ifstream in{"/proc/" + std::to_string(pid) + "/status"};
  for (std::string line; std::getline(in, line);)
    if (line.rfind(field + ":", 0) == 0)
      return std::stol(line.substr(field.size() + 1));
  return -1;
}

inline long peak_rss_kib(pid_t pid) {
  return status_kib(pid, "VmHWM");
}

/// What /proc/<pid>/stat says of a process: its parent and its CPU time.
struct proc_stat {
  pid_t ppid = -1;       ///< -1: the process is gone
  double cpu = 0;        ///< utime + stime, seconds
  double reaped_cpu = 0; ///< cutime + cstime: its children it waited for
};

inline proc_stat read_proc_stat(pid_t pid) {
  std::ifstream in{"/proc/" + std::to_string(pid) + "/stat"};
  std::string text((std::istreambuf_iterator<char>(in)), {});
  auto paren = text.rfind(')');
  if (paren == std::string::npos || paren + 2 > text.size())
    return {};
  // Fields after the command name (which may hold spaces) start after ')'.
  std::istringstream rest{text.substr(paren + 2)};
  std::string field;
  proc_stat s;
  double ticks = 0, reaped = 0;
  for (int i = 3; i <= 17 && rest >> field; ++i) {
    if (i == 4) // ppid
      s.ppid = static_cast<pid_t>(std::stol(field));
    else if (i == 14 || i == 15) // utime, stime
      ticks += std::stod(field);
    else if (i == 16 || i == 17) // cutime, cstime
      reaped += std::stod(field);
  }
  auto hz = static_cast<double>(sysconf(_SC_CLK_TCK));
  s.cpu = ticks / hz;
  s.reaped_cpu = reaped / hz;
  return s;
}

/// User + system CPU seconds the process has used so far.
inline double cpu_seconds(pid_t pid) {
  return read_proc_stat(pid).cpu;
}

/// The machine's busy CPU time so far (all CPUs, /proc/stat: everything but
/// idle and iowait), seconds: beside the processes measured, it shows what
/// else ran in a window (on a shared VM, other work).
inline double machine_busy_seconds() {
  std::ifstream in{"/proc/stat"};
  std::string cpu;
  in >> cpu;
  double v[8] = {};
  for (auto& x : v)
    in >> x;
  double busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
  return busy / static_cast<double>(sysconf(_SC_CLK_TCK));
}

/// The processes whose parent is `pid` now.
inline std::vector<pid_t> children_of(pid_t pid) {
  std::vector<pid_t> pids;
  std::error_code ec;
  for (auto& entry : std::filesystem::directory_iterator{"/proc", ec}) {
    auto name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos)
      continue;
    auto child = static_cast<pid_t>(std::stol(name));
    if (read_proc_stat(child).ppid == pid)
      pids.push_back(child);
  }
  return pids;
}

/// User + system CPU seconds used so far by a server of several processes
/// that a master forks (nginx's workers, PostgreSQL's backends and
/// background processes): the master, its children now, and those of its
/// children that have exited (which the master waited for, as both do).
/// Taken before and after a window, the difference is what the server used
/// in it, also in a child that came or went in between.
inline double server_cpu_seconds(pid_t master) {
  auto m = read_proc_stat(master);
  double total = m.cpu + m.reaped_cpu;
  for (pid_t child : children_of(master))
    total += cpu_seconds(child);
  return total;
}

/// User + system CPU seconds this process (all its threads) has used so far.
inline double self_cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  auto secs = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return secs(u.ru_utime) + secs(u.ru_stime);
}

/// A loopback port free right now, for a server that has to be told its port
/// (Alertmanager, nginx) because it cannot report one the kernel chose.
/// Another process may take it before the server binds it; on a benchmark
/// machine that is unlikely enough.
inline std::uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

/// Bytes of the regular files under `dir` (a store's size on disk).
inline std::uintmax_t dir_bytes(const std::filesystem::path& dir) {
  std::uintmax_t total = 0;
  std::error_code ec;
  for (auto& e : std::filesystem::recursive_directory_iterator{dir, ec})
    if (e.is_regular_file(ec))
      total += e.file_size(ec);
  return total;
}

/// Reads `--name value` pairs into the variables `flags` names (ints or
/// strings). Anything else — an unknown name, a name without its value,
/// `--help` — prints `usage` and exits (0 for `--help`, 2 otherwise).
using flag_target = std::variant<int*, std::string*>;
inline void parse_flags(
    int argc, char** argv, const char* usage,
    std::initializer_list<std::pair<std::string_view, flag_target>> flags) {
  for (int i = 1; i < argc; i += 2) {
    std::string_view name = argv[i];
    auto it = std::find_if(flags.begin(), flags.end(),
                           [&](auto& f) { return f.first == name; });
    if (it == flags.end() || i + 1 == argc) {
      if (name != "--help")
        std::cerr << "bad option " << name << "\n";
      std::cerr << usage << "\n";
      std::exit(name == "--help" ? 0 : 2);
    }
    if (auto* n = std::get_if<int*>(&it->second))
      **n = std::atoi(argv[i + 1]);
    else
      *std::get<std::string*>(it->second) = argv[i + 1];
  }
}

/// A benchmark's exit code: what `run()` returns, or 1 with the message when
/// it throws (a sink or PostgreSQL that did not start): unwinding stops what
/// did start and removes the temp dir.
template <class Run>
int exit_code_of(Run&& run) {
  try {
    return run();
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
}

inline double percentile(std::vector<double>& v, double p) {
  if (v.empty())
    return 0;
  auto idx = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(idx), v.end());
  return v[idx];
}

} // namespace tocsin::bench
