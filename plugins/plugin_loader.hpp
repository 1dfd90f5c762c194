// Loads transport plugins (shared objects speaking plugins/tocsin_plugin.h)
// from a directory and wraps each in a C++ object that checks what the
// plugin produces before the host uses it.
#pragma once

#include "common/result.hpp"

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

struct tocsin_transport;

namespace tocsin::plugins {

/// Limits on what a plugin may put into a request.
inline constexpr std::size_t max_body_bytes = 1024 * 1024;
inline constexpr std::size_t max_headers = 64;
inline constexpr std::size_t max_header_bytes = 16 * 1024; // names + values
inline constexpr std::size_t max_url_bytes = 8 * 1024;

/// The event as a plugin sees it (see tocsin_event_view).
struct event_view {
  std::string_view id;
  std::string_view type;
  std::string_view severity;
  std::string_view agent_id;
  std::string_view summary;
  std::string_view timestamp;
  std::string_view payload_json;
  std::string_view audit_url;
  bool acknowledged = false;
};

/// The endpoint as a plugin sees it (see tocsin_endpoint_view).
struct endpoint_view {
  std::string_view id;
  std::string_view url;
  std::string_view options_json = "{}";
};

/// A request as a plugin built it, checked: method and header names are
/// tokens, header values have no CR/LF/NUL, the body is within
/// max_body_bytes, the URL override (if any) parses.
struct built_request {
  std::string method = "POST";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::optional<std::string> url; ///< instead of the endpoint's URL
};

enum class outcome { success, retry, permanent, disable_endpoint };

std::string_view to_string(outcome o);

struct classification {
  outcome what = outcome::permanent;
  std::string reason; ///< one line, printable; may be empty
};

/// One loaded plugin. Copies share the loaded library, which stays loaded as
/// long as any copy lives.
class transport_plugin {
public:
  transport_plugin(std::shared_ptr<void> library, const tocsin_transport* table,
                   std::filesystem::path path);

  const std::string& name() const { return name_; }
  const std::string& version() const { return version_; }
  const std::filesystem::path& path() const { return path_; }
  /// The host signs its requests (Standard Webhooks).
  bool signs_requests() const { return signed_; }
  /// The rate limit the plugin suggests per endpoint; 0: none.
  double default_rate_per_second() const { return rate_; }
  std::uint32_t default_burst() const { return burst_; }

  /// Whether the plugin accepts the endpoint's configuration.
  status validate_options(const endpoint_view& endpoint) const;
  status validate_options(std::string_view options_json) const;

  /// The request for `event` to `endpoint`; an error if the plugin failed or
  /// produced something the host will not send.
  result<built_request> build_request(const event_view& event,
                                      const endpoint_view& endpoint) const;

  /// What a response means. An unknown outcome from the plugin is taken as
  /// permanent.
  classification classify(int status, std::string_view body_prefix,
                          std::string_view retry_after) const;

private:
  std::shared_ptr<void> library_;
  const tocsin_transport* table_;
  std::filesystem::path path_;
  std::string name_;
  std::string version_;
  bool signed_ = false;
  double rate_ = 0;
  std::uint32_t burst_ = 0;
};

/// A file in the plugins directory that was not loaded, and why.
struct refusal {
  std::filesystem::path path;
  std::string reason;

  /// "<file name>: <reason>", as it goes into the log.
  std::string message() const;
};

struct loaded_plugins {
  std::vector<transport_plugin> plugins; ///< in file-name order
  std::vector<refusal> refused;

  /// The plugin named `name`, or null.
  const transport_plugin* find(std::string_view name) const;
};

enum class if_missing {
  fail,        ///< a directory the operator named must exist
  load_nothing ///< the default directory may not
};

/// Loads every `*.so` in `dir` (not recursively) in file-name order with
/// RTLD_NOW | RTLD_LOCAL. A file that cannot be loaded, lacks the entry point,
/// speaks another ABI version, has an incomplete table or a name already
/// taken is refused, and loading goes on. An error only when `dir` cannot be
/// read (or is missing, unless `missing` says otherwise).
result<loaded_plugins> load_plugins(const std::filesystem::path& dir,
                                    if_missing missing = if_missing::fail);

} // namespace tocsin::plugins
