#include "tests/support/daemon_process.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

namespace tocsin::test {

namespace {

constexpr std::chrono::milliseconds poll_interval{10};

std::uintmax_t file_size_or_zero(const std::filesystem::path& p) {
  std::error_code ec;
  auto size = std::filesystem::file_size(p, ec);
  return ec ? 0 : size;
}

// Everything below runs in the forked child of a possibly multi-threaded
// parent, so only async-signal-safe calls are allowed until execv.
[[noreturn]] void exec_child(char* const* argv, char* const* envp,
                             const char* log_path, pid_t parent) {
  // Die with the test rather than outliving it as an orphan daemon.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent)
    ::_exit(127);

  // Boost.Test installs handlers and may block or ignore signals; ignored
  // dispositions and the mask survive exec, so reset them.
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int sig : {SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGCHLD})
    ::signal(sig, SIG_DFL);

  int devnull = ::open("/dev/null", O_RDONLY);
  if (devnull >= 0) {
    ::dup2(devnull, 0);
    if (devnull > 2)
      ::close(devnull);
  }
  int log = ::open(log_path, O_WRONLY | O_APPEND | O_CREAT, 0644);
  if (log < 0)
    ::_exit(127);
  ::dup2(log, 1);
  ::dup2(log, 2);
  if (log > 2)
    ::close(log);

    // The test process holds listening sockets (receivers) that the daemon must
    // not inherit, or stopping a receiver would not free its port.
#ifdef SYS_close_range
  if (::syscall(SYS_close_range, 3U, ~0U, 0U) != 0)
#endif
  {
    long max_fd = ::sysconf(_SC_OPEN_MAX);
    if (max_fd < 0 || max_fd > 65536)
      max_fd = 65536;
    for (int fd = 3; fd < max_fd; ++fd)
      ::close(fd);
  }

  ::execve(argv[0], argv, envp);
  const char msg[] = "daemon_process: execv failed\n";
  [[maybe_unused]] auto ignored = ::write(2, msg, sizeof(msg) - 1);
  ::_exit(127);
}

} // namespace

daemon_process::daemon_process(std::vector<std::string> argv,
                               std::filesystem::path log_file,
                               std::vector<std::string> environment)
    : log_file_(std::move(log_file)) {
  if (argv.empty())
    throw std::invalid_argument("daemon_process: empty argv");
  // Only lines appended after this point belong to this child.
  log_offset_ = file_size_or_zero(log_file_);

  // Built before fork: the child must not allocate.
  std::vector<char*> c_argv;
  for (auto& arg : argv)
    c_argv.push_back(arg.data());
  c_argv.push_back(nullptr);
  auto name_of = [](std::string_view entry) {
    return entry.substr(0, entry.find('='));
  };
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string_view entry{*e};
    if (std::none_of(environment.begin(), environment.end(),
                     [&](const std::string& added) {
                       return name_of(added) == name_of(entry);
                     }))
      env.emplace_back(entry);
  }
  env.insert(env.end(), environment.begin(), environment.end());
  std::vector<char*> c_env;
  for (auto& entry : env)
    c_env.push_back(entry.data());
  c_env.push_back(nullptr);
  const std::string log_path = log_file_.string();
  const pid_t parent = ::getpid();

  pid_ = ::fork();
  if (pid_ < 0)
    throw std::system_error(errno, std::generic_category(), "fork");
  if (pid_ == 0)
    exec_child(c_argv.data(), c_env.data(), log_path.c_str(), parent);
}

daemon_process::~daemon_process() {
  kill9();
}

bool daemon_process::reap() {
  if (status_)
    return true;
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    status_ = status;
    return true;
  }
  // ECHILD: someone else reaped it (should not happen); treat as gone.
  if (r < 0 && errno == ECHILD) {
    status_ = 0;
    return true;
  }
  return false;
}

int daemon_process::exit_code(int wait_status) {
  if (WIFEXITED(wait_status))
    return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status))
    return 128 + WTERMSIG(wait_status);
  return -1;
}

bool daemon_process::running() {
  return !reap();
}

void daemon_process::signal(int sig) {
  if (!reap())
    ::kill(pid_, sig);
}

bool daemon_process::wait_log(std::string_view part, std::size_t count,
                              std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const bool exited = reap();
    auto text = log();
    std::size_t n = 0;
    for (auto at = text.find(part); at != std::string::npos && n < count;
         at = text.find(part, at + part.size()))
      ++n;
    if (n >= count)
      return true;
    if (exited || std::chrono::steady_clock::now() >= deadline)
      return false;
    std::this_thread::sleep_for(poll_interval);
  }
}

void daemon_process::kill9() {
  if (reap())
    return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  status_ = status;
}

std::optional<int>
daemon_process::wait_exit(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!reap()) {
    if (std::chrono::steady_clock::now() >= deadline)
      return std::nullopt;
    std::this_thread::sleep_for(poll_interval);
  }
  return exit_code(*status_);
}

int daemon_process::terminate(std::chrono::milliseconds timeout) {
  if (!reap())
    ::kill(pid_, SIGTERM);
  if (auto code = wait_exit(timeout))
    return *code;
  kill9();
  return -1;
}

std::string daemon_process::log() const {
  std::ifstream in(log_file_, std::ios::binary);
  if (!in)
    return {};
  in.seekg(static_cast<std::streamoff>(log_offset_));
  return std::string(std::istreambuf_iterator<char>(in),
                     std::istreambuf_iterator<char>());
}

std::uint16_t
daemon_process::wait_listening(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::size_t scanned = 0; // bytes of complete lines already examined
  for (;;) {
    // Reap status is sampled before reading the log so a child that logged
    // "listening" and then exited is still reported as listening.
    const bool exited = reap();
    const std::string text = log();
    std::size_t line_start = scanned;
    for (std::size_t nl;
         (nl = text.find('\n', line_start)) != std::string::npos;
         line_start = nl + 1) {
      std::string_view line(text.data() + line_start, nl - line_start);
      if (line.find("\"msg\":\"listening\"") == std::string_view::npos)
        continue;
      constexpr std::string_view key = "\"address\":\"";
      auto at = line.find(key);
      if (at == std::string_view::npos)
        continue;
      auto value = line.substr(at + key.size());
      value = value.substr(0, value.find('"'));
      // Last ':' so "[::1]:PORT" works as well as "127.0.0.1:PORT".
      auto colon = value.rfind(':');
      if (colon == std::string_view::npos)
        continue;
      unsigned long port = 0;
      try {
        port = std::stoul(std::string(value.substr(colon + 1)));
      } catch (const std::exception&) {
        continue;
      }
      if (port > 0 && port <= 65535)
        return static_cast<std::uint16_t>(port);
    }
    scanned = line_start;
    if (exited || std::chrono::steady_clock::now() >= deadline)
      return 0;
    std::this_thread::sleep_for(poll_interval);
  }
}

} // namespace tocsin::test
