// Checks that files tocsin trusts are what they should be, with ssh's
// rules for private keys: secrets (the store, admin.token) private to the
// daemon's user, code (plugins) writable only by root or that user. Each
// check returns why it fails in one line that says how to fix it, or nothing.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include <sys/stat.h>

namespace tocsin {

/// A file opened at `fd`: a regular file owned by this process's effective
/// user, neither readable nor writable by group or others.
std::optional<std::string> private_file_problem(int fd,
                                                const std::filesystem::path& p);

/// `dir` (followed if a symlink): a directory owned by this user with no
/// permissions for group or others.
std::optional<std::string>
private_dir_problem(const std::filesystem::path& dir);

/// Code to be loaded (a plugin, or its directory) as `st` describes it: owned
/// by root or this user, not writable by group or others.
std::optional<std::string> trusted_code_problem(const struct stat& st,
                                                const std::filesystem::path& p);

/// A directory code is loaded from, checked as sshd's StrictModes checks
/// a key's path: symbolic links resolved first (the real path is what is
/// checked, and what `real` is set to), then the directory itself as
/// trusted_code_problem says, then every directory above it up to "/":
/// each owned by root or this user and not writable by group or others,
/// unless its sticky bit is set (as /tmp's is: there others cannot
/// rename or remove what is ours).
std::optional<std::string>
trusted_code_dir_problem(const std::filesystem::path& dir,
                         std::filesystem::path* real = nullptr);

} // namespace tocsin
