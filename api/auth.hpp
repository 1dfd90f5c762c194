// Bearer-token authentication: tokens are known only by their SHA-256, compared
// in constant time; each has a role.
#pragma once

#include "common/result.hpp"

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tocsin::api {

enum class role { admin, ingest, read };

std::optional<role> role_from(std::string_view name);

/// A token as the config file declares it (known only by its SHA-256).
struct token_config {
  std::string name;
  std::string sha256; ///< lower-case hex of the token's SHA-256
  std::string role;   ///< admin | ingest | read
};

/// Who made a request: the role of its token, and a stable name for the
/// token that reveals nothing of it (idempotency keys are scoped by it).
struct principal {
  role r = role::read;
  std::string scope; ///< "tok_" + 16 hex digits of the token's SHA-256
  std::string name;  ///< the token's name in the config
};

class authenticator {
public:
  explicit authenticator(const std::vector<token_config>& tokens);

  /// Whose token is in an "Authorization: Bearer <token>" header, or nullopt
  /// when it is missing, malformed or unknown.
  std::optional<principal> authenticate(std::string_view authorization) const;

private:
  struct entry {
    std::string digest; ///< raw 32 bytes
    role r;
    std::string name;
  };
  std::vector<entry> entries_;
};

/// With no tokens configured: reads `<data_dir>/admin.token`, creating it (mode
/// 0600, a fresh random token) on first start. Returns the token's config
/// entry. An existing file that is not a regular file owned by this user and
/// private to it (a symlink, mode 0644, ...) is refused, as ssh refuses keys.
result<token_config> ensure_admin_token(const std::filesystem::path& data_dir,
                                        bool& created);

} // namespace tocsin::api
