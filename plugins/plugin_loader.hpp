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

struct tocsin_instance;

namespace tocsin::plugins {

/// Limits on what a plugin may put into a request.
inline constexpr std::size_t max_body_bytes = 1024 * 1024;
inline constexpr std::size_t max_headers = 64;
inline constexpr std::size_t max_header_bytes = 16 * 1024; // names + values
inline constexpr std::size_t max_url_bytes = 8 * 1024;
/// tocsin_transport::secret_options lists at most this many names.
inline constexpr std::size_t max_secret_options = 32;

/// Where an event stands (see tocsin_event_state).
enum class event_state { open, acknowledged, resolved };

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
  event_state state = event_state::open;
  std::string_view state_by; ///< who acknowledged or resolved it
  std::string_view state_at; ///< when (RFC 3339)
  /// Where to send the news instead (a Slack response_url); may be empty.
  std::string_view reply_url;
  /// What the endpoint's transport said it made of the event's delivery
  /// (a JSON object; see tocsin_host_api::set_receipt); may be empty.
  std::string_view receipt;
  /// How many other events the answer this notice tells of changed.
  std::uint32_t answered_along = 0;
  /// The event on the dashboard; empty without server.public_url.
  std::string_view event_url;
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

/// Receipts are small: a message's channel and timestamp, an incident key.
inline constexpr std::size_t max_receipt_bytes = 512;

struct classification {
  outcome what = outcome::permanent;
  std::string reason; ///< one line, printable; may be empty
  /// For a success: a JSON object naming what the receiver made of it
  /// (set_receipt); empty when the transport gave none.
  std::string receipt = {};
};

namespace detail {
struct library; // a loaded plugin's shared object, table and host
} // namespace detail

class transport_instance;

/// One loaded plugin. Copies share the loaded library, which stays loaded as
/// long as any copy (or any endpoint it opened) lives.
class transport_plugin {
public:
  explicit transport_plugin(std::shared_ptr<const detail::library> library);

  const std::string& name() const;
  const std::string& version() const;
  const std::filesystem::path& path() const;
  /// The host signs its requests (Standard Webhooks).
  bool signs_requests() const;
  /// Endpoints of this transport are told when an event they were sent is
  /// acknowledged or resolved (TOCSIN_TRANSPORT_FOLLOWS_STATE).
  bool follows_state() const;
  /// Its endpoints post messages people read (TOCSIN_TRANSPORT_MESSAGES):
  /// an answer to several events is told once, not once per event.
  bool posts_messages() const;
  /// The names of the endpoint options that are credentials
  /// (tocsin_transport::secret_options): never shown whole.
  const std::vector<std::string>& secret_options() const;
  /// The rate limit the plugin suggests per endpoint; 0: none.
  double default_rate_per_second() const;
  std::uint32_t default_burst() const;

  /// Opens `endpoint`: the plugin checks its options and keeps what it needs
  /// for it (closed when the last copy of the pointer goes). An error
  /// (field "options") when the plugin refuses the endpoint.
  result<std::shared_ptr<const transport_instance>>
  open(const endpoint_view& endpoint) const;

  /// Whether the plugin accepts the endpoint's configuration: opens it and
  /// closes it again.
  status validate_options(const endpoint_view& endpoint) const;
  status validate_options(std::string_view options_json) const;

private:
  friend class transport_instance;
  std::shared_ptr<const detail::library> library_;
};

/// A plugin opened for one endpoint: builds the endpoint's requests and
/// classifies their answers. Calls must not overlap (one endpoint actor owns
/// it); different instances may be used from different threads.
class transport_instance {
public:
  transport_instance(transport_plugin plugin, const endpoint_view& endpoint,
                     tocsin_instance* opened);
  ~transport_instance();
  transport_instance(const transport_instance&) = delete;
  transport_instance& operator=(const transport_instance&) = delete;

  const transport_plugin& plugin() const { return plugin_; }
  bool signs_requests() const { return plugin_.signs_requests(); }
  bool follows_state() const { return plugin_.follows_state(); }

  /// The request for `event` to the endpoint; an error if the plugin failed
  /// or produced something the host will not send.
  result<built_request> build_request(const event_view& event) const;

  /// What a response means. An unknown outcome from the plugin is taken as
  /// permanent.
  classification classify(int status, std::string_view body_prefix,
                          std::string_view retry_after) const;

private:
  transport_plugin plugin_;
  tocsin_instance* instance_;
  // The endpoint it was opened for, handed to every build_request.
  std::string id_;
  std::string url_;
  std::string options_json_;
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
/// RTLD_NOW | RTLD_LOCAL. A file that cannot be loaded, lacks the entry point
/// (or has the entry point of ABI version 1), speaks another ABI version,
/// declines to load, has an incomplete table or a name already taken is
/// refused, and loading goes on. Whatever a plugin writes to the host's log
/// goes to tocsin's log, naming the plugin's file. An error only when `dir`
/// cannot be read (or is missing, unless `missing` says otherwise).
result<loaded_plugins> load_plugins(const std::filesystem::path& dir,
                                    if_missing missing = if_missing::fail);

} // namespace tocsin::plugins
