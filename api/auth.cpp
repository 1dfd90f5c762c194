#include "api/auth.hpp"

#include "common/encoding.hpp"
#include "common/file_safety.hpp"

#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <unistd.h>

#include <openssl/rand.h>

namespace tocsin::api {

std::optional<role> role_from(std::string_view name) {
  if (name == "admin")
    return role::admin;
  if (name == "ingest")
    return role::ingest;
  if (name == "read")
    return role::read;
  return std::nullopt;
}

namespace {

std::optional<std::string> unhex(std::string_view hex) {
  if (hex.size() % 2)
    return std::nullopt;
  std::string out;
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    int hi = hex_digit(hex[i]), lo = hex_digit(hex[i + 1]);
    if (hi < 0 || lo < 0)
      return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
  }
  return out;
}

} // namespace

authenticator::authenticator(const std::vector<token_config>& tokens) {
  for (auto& t : tokens)
    if (auto d = unhex(t.sha256); d && role_from(t.role))
      entries_.push_back(entry{*d, *role_from(t.role), t.name});
}

std::optional<principal>
authenticator::authenticate(std::string_view header) const {
  constexpr std::string_view scheme = "Bearer ";
  if (header.size() <= scheme.size())
    return std::nullopt;
  if (!ascii_iequals(header.substr(0, scheme.size()), scheme))
    return std::nullopt;
  auto digest = sha256(header.substr(scheme.size()));
  // Compare against every entry so that timing does not reveal which matched.
  std::optional<principal> found;
  for (auto& e : entries_)
    if (constant_time_equal(digest, e.digest) && !found)
      found = principal{e.r, "tok_" + hex_encode(digest.substr(0, 8)), e.name};
  return found;
}

result<token_config> ensure_admin_token(const std::filesystem::path& data_dir,
                                        bool& created) {
  created = false;
  auto file = data_dir / "admin.token";
  std::string token;
  int fd = ::open(file.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd >= 0) {
    if (auto why = private_file_problem(fd, file)) {
      ::close(fd);
      return error{"token_unsafe", *why};
    }
    char buf[256];
    auto n = ::read(fd, buf, sizeof(buf));
    ::close(fd);
    if (n < 0)
      return error{"token_read", "cannot read " + file.string()};
    token.assign(buf, static_cast<std::size_t>(n));
    token = token.substr(0, token.find('\n'));
  } else if (errno == ELOOP) {
    return error{"token_unsafe",
                 file.string() + " is a symbolic link; refusing to use it"};
  } else if (errno != ENOENT) {
    return error{"token_read",
                 "cannot read " + file.string() + ": " + std::strerror(errno)};
  } else {
    unsigned char raw[32];
    if (RAND_bytes(raw, sizeof(raw)) != 1)
      return error{"token_generation", "no random bytes for the admin token"};
    token = "tsn_" + hex_encode({reinterpret_cast<char*>(raw), sizeof(raw)});
    fd = ::open(file.c_str(),
                O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
      return error{"token_write", "cannot create " + file.string()};
    auto line = token + "\n";
    bool ok = ::write(fd, line.data(), line.size()) ==
              static_cast<ssize_t>(line.size());
    ok = ::fsync(fd) == 0 && ok;
    ::close(fd);
    if (!ok)
      return error{"token_write", "cannot write " + file.string()};
    created = true;
  }
  if (token.empty())
    return error{"token_read", file.string() + " is empty"};
  return token_config{"admin.token", hex_encode(sha256(token)), "admin"};
}

} // namespace tocsin::api
