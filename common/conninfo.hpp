// PostgreSQL connection strings (libpq's: a postgresql:// URL or key=value
// pairs) made fit for logs and error messages: the passwords they may hold
// never leave the process.
#pragma once

#include <string>
#include <string_view>

namespace tocsin {

/// `conninfo` with every password in it replaced by "***": the URL's
/// ("postgresql://u:***@host/db"), a `password` or `sslpassword` query
/// parameter, and those keys' values in key=value form ("password=***").
/// Everything else is kept as written. A string it cannot read is masked
/// too far rather than not far enough.
std::string mask_password(std::string_view conninfo);

/// `text` (say, an error that quotes the connection string) with
/// `conninfo` replaced by its masked form and every password of it, as
/// written or percent-decoded, replaced by "***".
std::string hide_password(std::string_view text, std::string_view conninfo);

} // namespace tocsin
