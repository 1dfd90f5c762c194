#pragma once

#include <chrono>
#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

namespace tocsin::test {

struct command_result {
  int code = -1; ///< exit code, 128+N for signal N
  std::string out;
  std::string err;
  bool timed_out = false; ///< killed after command_options::timeout
};

/// Exit code, stdout and stderr, for a test's failure message.
std::ostream& operator<<(std::ostream& os, const command_result& r);

struct command_options {
  std::string input = {};            ///< written to stdin (then closed)
  std::vector<std::string> env = {}; ///< "NAME=value" added to the environment
  /// Names of the test's own environment variables not passed on.
  std::vector<std::string> unset = {};
  std::filesystem::path cwd = {}; ///< empty: the test's working directory
  std::chrono::milliseconds timeout = std::chrono::seconds{30};
};

/// Runs argv[0] (a path) with argv[1...] as a child process, stdin, stdout and
/// stderr on pipes, and waits for it to exit; one that is still running after
/// `timeout` is SIGKILLed (timed_out). Throws std::system_error when the pipes
/// or the child cannot be made.
command_result run_command(const std::vector<std::string>& argv,
                           const command_options& options = {});

} // namespace tocsin::test
