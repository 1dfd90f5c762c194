#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <sys/types.h>

namespace tocsin::test {

// Runs the real daemon binary as a child process so end-to-end tests cover
// startup, signals and crash recovery exactly as deployed.
// The child gets PR_SET_PDEATHSIG(SIGKILL): if the test process dies, the
// daemon does not linger. (The signal fires when the *thread* that created the
// daemon_process exits, so create it on the thread running the test.)
class daemon_process {
public:
  // argv[0] is the binary path. The child's stdout and stderr are appended to
  // log_file. It inherits this process's environment, with the "NAME=value"
  // entries of `environment` added (replacing variables of those names).
  // Starts immediately; throws std::system_error if fork fails.
  daemon_process(std::vector<std::string> argv, std::filesystem::path log_file,
                 std::vector<std::string> environment = {});
  ~daemon_process(); // SIGKILL + reap if still running

  daemon_process(const daemon_process&) = delete;
  daemon_process& operator=(const daemon_process&) = delete;

  pid_t pid() const { return pid_; }

  // Polls the log (only what this child wrote) until a line contains
  // "msg":"listening" and returns the port of its "address":"HOST:PORT".
  // Returns 0 on timeout or if the child exited first.
  std::uint16_t
  wait_listening(std::chrono::milliseconds timeout = std::chrono::seconds{30});

  void kill9(); // SIGKILL and reap

  // SIGTERM, then wait. Returns the exit code, 128+N if the child died of
  // signal N, or -1 if it had to be SIGKILLed after the timeout.
  int terminate(std::chrono::milliseconds timeout = std::chrono::seconds{30});

  // Waits for exit without signalling: exit code (128+N for signal N), or
  // nullopt on timeout.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout);

  bool running();

  // Sends `sig` (SIGHUP: reload the config file) if it still runs.
  void signal(int sig);

  // Polls the log until `part` occurs `count` times in it; false on timeout
  // or if the child exited first.
  bool wait_log(std::string_view part, std::size_t count = 1,
                std::chrono::milliseconds timeout = std::chrono::seconds{30});

  // The log text written by this child (the file may hold earlier runs).
  std::string log() const;

private:
  // Non-blocking reap; true once the child has exited (status_ set).
  bool reap();
  static int exit_code(int wait_status);

  std::filesystem::path log_file_;
  std::uintmax_t log_offset_ = 0;
  pid_t pid_ = -1;
  std::optional<int> status_; // raw waitpid status once reaped
};

} // namespace tocsin::test
