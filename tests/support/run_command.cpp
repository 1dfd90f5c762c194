#include "tests/support/run_command.hpp"

#include <cerrno>
#include <csignal>
#include <string_view>
#include <system_error>

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace tocsin::test {

std::ostream& operator<<(std::ostream& os, const command_result& r) {
  if (r.timed_out)
    os << "(killed: did not finish in time) ";
  return os << "exit " << r.code << "\nstdout:\n"
            << r.out << "\nstderr:\n"
            << r.err;
}

namespace {

/// `strings` as a null-terminated array of pointers into them.
std::vector<char*> c_strings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings)
    out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

/// The test's environment but the variables named in `unset`, then `add`.
std::vector<std::string> child_environment(const command_options& options) {
  std::vector<std::string> out;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view var{*e};
    bool keep = true;
    for (auto& name : options.unset)
      if (var.size() > name.size() && var.starts_with(name) &&
          var[name.size()] == '=')
        keep = false;
    if (keep)
      out.emplace_back(var);
  }
  out.insert(out.end(), options.env.begin(), options.env.end());
  return out;
}

} // namespace

command_result run_command(const std::vector<std::string>& argv,
                           const command_options& options) {
  std::signal(SIGPIPE, SIG_IGN); // a child that does not read its stdin
  auto argv_s = argv;
  auto env_s = child_environment(options);
  auto args = c_strings(argv_s);
  auto envp = c_strings(env_s);

  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0 ||
      ::pipe2(err, O_CLOEXEC) != 0)
    throw std::system_error(errno, std::generic_category(), "pipe2");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err[1], 2);
  if (!options.cwd.empty())
    posix_spawn_file_actions_addchdir_np(&fa, options.cwd.c_str());
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, args[0], &fa, nullptr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  if (rc != 0) {
    ::close(in[1]);
    ::close(out[0]);
    ::close(err[0]);
    throw std::system_error(rc, std::generic_category(),
                            "posix_spawn " + argv.at(0));
  }

  command_result r;
  std::size_t written = 0;
  int to_child = in[1];
  if (options.input.empty()) {
    ::close(to_child);
    to_child = -1;
  }
  auto deadline = std::chrono::steady_clock::now() + options.timeout;
  bool out_open = true, err_open = true;
  while (out_open || err_open) {
    std::vector<pollfd> fds;
    if (out_open)
      fds.push_back({out[0], POLLIN, 0});
    if (err_open)
      fds.push_back({err[0], POLLIN, 0});
    if (to_child >= 0)
      fds.push_back({to_child, POLLOUT, 0});
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 ||
        ::poll(fds.data(), fds.size(), static_cast<int>(left.count())) == 0) {
      ::kill(pid, SIGKILL);
      r.timed_out = true;
      break;
    }
    for (auto& p : fds) {
      if (p.revents == 0)
        continue;
      if (p.fd == to_child) {
        auto n = ::write(to_child, options.input.data() + written,
                         options.input.size() - written);
        if (n > 0)
          written += static_cast<std::size_t>(n);
        if (n < 0 || written == options.input.size()) {
          ::close(to_child);
          to_child = -1;
        }
        continue;
      }
      char buf[4096];
      auto n = ::read(p.fd, buf, sizeof(buf));
      if (n > 0) {
        (p.fd == out[0] ? r.out : r.err).append(buf, n);
      } else if (n == 0 || errno != EINTR) {
        (p.fd == out[0] ? out_open : err_open) = false;
      }
    }
  }
  if (to_child >= 0)
    ::close(to_child);
  ::close(out[0]);
  ::close(err[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

} // namespace tocsin::test
