#include "common/file_safety.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <unistd.h>

namespace tocsin {

namespace {

std::string octal(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

std::string owner_problem(const struct stat& st,
                          const std::filesystem::path& p) {
  return p.string() + " is owned by uid " + std::to_string(st.st_uid) +
         ", not by uid " + std::to_string(::geteuid()) +
         " that runs tocsin; chown it";
}

} // namespace

std::optional<std::string>
private_file_problem(int fd, const std::filesystem::path& p) {
  struct stat st {};
  if (::fstat(fd, &st) != 0)
    return "cannot stat " + p.string() + ": " + std::strerror(errno);
  if (!S_ISREG(st.st_mode))
    return p.string() + " is not a regular file";
  if (st.st_uid != ::geteuid())
    return owner_problem(st, p);
  if ((st.st_mode & 077) != 0)
    return "permissions " + octal(st.st_mode) + " for " + p.string() +
           " are too open (group or others may use it); chmod 600 " +
           p.string();
  return std::nullopt;
}

std::optional<std::string>
private_dir_problem(const std::filesystem::path& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0)
    return "cannot stat " + dir.string() + ": " + std::strerror(errno);
  if (!S_ISDIR(st.st_mode))
    return dir.string() + " is not a directory";
  if (st.st_uid != ::geteuid())
    return owner_problem(st, dir);
  if ((st.st_mode & 077) != 0)
    return "permissions " + octal(st.st_mode) + " for " + dir.string() +
           " are too open: it holds endpoint secrets; chmod 700 " +
           dir.string();
  return std::nullopt;
}

std::optional<std::string>
trusted_code_problem(const struct stat& st, const std::filesystem::path& p) {
  if (st.st_uid != 0 && st.st_uid != ::geteuid())
    return p.string() + " is owned by uid " + std::to_string(st.st_uid) +
           ", neither root nor the user running tocsin";
  if ((st.st_mode & 022) != 0)
    return p.string() + " is writable by " +
           ((st.st_mode & 002) != 0 ? "others" : "its group") + " (mode " +
           octal(st.st_mode) + "): anyone who can write it can run code " +
           "inside tocsin";
  return std::nullopt;
}

std::optional<std::string>
trusted_code_dir_problem(const std::filesystem::path& dir,
                         std::filesystem::path* real) {
  std::error_code ec;
  auto resolved = std::filesystem::canonical(dir, ec);
  if (ec)
    return "cannot resolve " + dir.string() + ": " + ec.message();
  struct stat st {};
  if (::stat(resolved.c_str(), &st) != 0)
    return "cannot stat " + resolved.string() + ": " + std::strerror(errno);
  if (!S_ISDIR(st.st_mode))
    return resolved.string() + " is not a directory";
  if (auto why = trusted_code_problem(st, resolved))
    return why;
  for (auto p = resolved.parent_path();; p = p.parent_path()) {
    if (::stat(p.c_str(), &st) != 0)
      return "cannot stat " + p.string() + ": " + std::strerror(errno);
    if (st.st_uid != 0 && st.st_uid != ::geteuid())
      return p.string() + ", above " + resolved.string() +
             ", is owned by uid " + std::to_string(st.st_uid) +
             ", neither root nor the user running tocsin: its owner can " +
             "replace what is below it";
    if ((st.st_mode & 022) != 0 && (st.st_mode & S_ISVTX) == 0)
      return p.string() + ", above " + resolved.string() + ", is writable by " +
             ((st.st_mode & 002) != 0 ? "others" : "its group") + " (mode " +
             octal(st.st_mode) +
             ", not sticky): anyone who can write it can replace what is "
             "below it and run code inside tocsin";
    if (p == p.parent_path())
      break;
  }
  if (real)
    *real = std::move(resolved);
  return std::nullopt;
}

} // namespace tocsin
