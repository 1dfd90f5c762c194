#include "plugins/plugin_loader.hpp"

#include "common/file_safety.hpp"
#include "common/json_parse.hpp"
#include "common/log.hpp"
#include "common/url.hpp"
#include "common/version.hpp"
#include "plugins/elf_symbols.hpp"
#include "plugins/tocsin_plugin.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>
#include <type_traits>

#include <dlfcn.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

// The host's side of one call into a plugin: what the plugin wrote through
// the tocsin_host_api callbacks, and the first thing it did wrong.
struct tocsin_call {
  enum class kind { open, build, classify };

  explicit tocsin_call(kind k) : what(k) {}

  kind what;
  tocsin::plugins::built_request request;
  std::optional<tocsin::error> error;   ///< set through set_error
  std::optional<std::string> violation; ///< host-detected misuse
  std::string reason;                   ///< set through set_reason
  std::string receipt;                  ///< set through set_receipt
  std::size_t header_bytes = 0;
};

namespace tocsin::plugins {

namespace {

std::string_view view(tocsin_str s) {
  return {s.ptr, s.len};
}

// Never NULL, even for an empty view: plugins may hand it to printf.
tocsin_str str(std::string_view s) {
  return s.empty() ? tocsin_str{"", 0} : tocsin_str{s.data(), s.size()};
}

bool is_tchar(char c) {
  // RFC 9110 token characters.
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
      (c >= '0' && c <= '9'))
    return true;
  return std::string_view{"!#$%&'*+-.^_`|~"}.find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), is_tchar);
}

bool is_plugin_name(std::string_view s) {
  return !s.empty() && s.size() <= 64 &&
         std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-';
         });
}

/// One printable line of at most `max` bytes: control characters become
/// spaces, so that a plugin's text cannot forge log records.
std::string printable(std::string_view s, std::size_t max) {
  std::string out{s.substr(0, max)};
  for (auto& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
      c = ' ';
  return out;
}

std::string quoted(std::string_view s) {
  return '"' + printable(s, 64) + '"';
}

/// Records the first misuse of the call; refuses the callback.
int misuse(tocsin_call* call, std::string what) {
  if (!call->violation)
    call->violation = std::move(what);
  return 1;
}

bool valid(tocsin_str s) {
  return s.ptr != nullptr || s.len == 0;
}

// The callbacks are entered from C: nothing may throw out of them.
extern "C" {

static int host_set_method(tocsin_call* call, tocsin_str method) noexcept try {
  if (call->what != tocsin_call::kind::build)
    return misuse(call, "set_method outside build_request");
  if (!valid(method) || !is_token(view(method)) || method.len > 16)
    return misuse(call, "method " + quoted(view(method)) + " is not a token");
  call->request.method.assign(view(method));
  return 0;
} catch (...) {
  return misuse(call, "out of memory");
}

static int host_add_header(tocsin_call* call, tocsin_str name,
                           tocsin_str value) noexcept try {
  if (call->what != tocsin_call::kind::build)
    return misuse(call, "add_header outside build_request");
  if (!valid(name) || !is_token(view(name)))
    return misuse(call,
                  "header name " + quoted(view(name)) + " is not a token");
  if (!valid(value) || view(value).find_first_of(std::string_view{
                           "\r\n\0", 3}) != std::string_view::npos)
    return misuse(call, "header " + printable(view(name), 64) +
                            " has CR, LF or NUL in its value");
  call->header_bytes += name.len + value.len;
  if (call->request.headers.size() >= max_headers ||
      call->header_bytes > max_header_bytes)
    return misuse(call, "too many headers");
  call->request.headers.emplace_back(view(name), view(value));
  return 0;
} catch (...) {
  return misuse(call, "out of memory");
}

static int host_append_body(tocsin_call* call, tocsin_str bytes) noexcept try {
  if (call->what != tocsin_call::kind::build)
    return misuse(call, "append_body outside build_request");
  if (!valid(bytes))
    return misuse(call, "append_body with a null pointer");
  if (call->request.body.size() + bytes.len > max_body_bytes)
    return misuse(call,
                  "body over " + std::to_string(max_body_bytes) + " bytes");
  call->request.body.append(view(bytes));
  return 0;
} catch (...) {
  return misuse(call, "out of memory");
}

static int host_set_url(tocsin_call* call, tocsin_str u) noexcept try {
  if (call->what != tocsin_call::kind::build)
    return misuse(call, "set_url outside build_request");
  if (!valid(u) || u.len > max_url_bytes)
    return misuse(call, "URL override too long");
  if (auto parsed = parse_url(view(u)); !parsed)
    return misuse(call, "URL override " + quoted(view(u)) +
                            " is invalid: " + parsed.error().message);
  call->request.url = std::string{view(u)};
  return 0;
} catch (...) {
  return misuse(call, "out of memory");
}

static int host_set_error(tocsin_call* call, tocsin_str code,
                          tocsin_str message) noexcept try {
  if (!valid(code) || !valid(message))
    return misuse(call, "set_error with a null pointer");
  auto c = view(code);
  call->error = tocsin::error{is_plugin_name(c) ? std::string{c}
                                                : std::string{"plugin_error"},
                              printable(view(message), 1024)};
  return 0;
} catch (...) {
  return misuse(call, "out of memory");
}

static int host_set_reason(tocsin_call* call, tocsin_str reason) noexcept try {
  if (call->what != tocsin_call::kind::classify)
    return misuse(call, "set_reason outside classify");
  if (!valid(reason))
    return misuse(call, "set_reason with a null pointer");
  call->reason = printable(view(reason), 256);
  return 0;
} catch (...) {
  return misuse(call, "out of memory");
}

static int host_set_receipt(tocsin_call* call, tocsin_str receipt) noexcept
    try {
  if (call->what != tocsin_call::kind::classify)
    return misuse(call, "set_receipt outside classify");
  if (!valid(receipt))
    return misuse(call, "set_receipt with a null pointer");
  auto text = view(receipt);
  nlohmann::json j;
  if (text.size() > max_receipt_bytes ||
      !parse_json(text, j, nullptr, stored_json_limits) || !j.is_object())
    return misuse(call, "set_receipt with something other than a JSON "
                        "object of at most 512 bytes");
  call->receipt = j.dump(); // compact, and only what was parsed
  return 0;
} catch (...) {
  return misuse(call, "out of memory");
}

} // extern "C"

constexpr tocsin_host_api host_api{
    sizeof(tocsin_host_api), host_set_method,  host_add_header,
    host_append_body,        host_set_url,     host_set_error,
    host_set_reason,         host_set_receipt,
};

template <class T>
T sized() {
  T t{};
  t.size = sizeof(T);
  return t;
}

tocsin_endpoint_view to_c(const endpoint_view& e) {
  auto v = sized<tocsin_endpoint_view>();
  v.id = str(e.id);
  v.url = str(e.url);
  v.options_json = str(e.options_json.empty() ? "{}" : e.options_json);
  return v;
}

} // namespace

std::string_view to_string(outcome o) {
  switch (o) {
  case outcome::success:
    return "success";
  case outcome::retry:
    return "retry";
  case outcome::permanent:
    return "permanent";
  case outcome::disable_endpoint:
    return "disable_endpoint";
  }
  return "permanent";
}

namespace detail {

/// A loaded plugin: its shared object, its table and the host it was given.
/// Destroyed when the last transport_plugin and transport_instance of it are
/// gone: calls unload, then dlclose.
struct library {
  /// What the plugin is given as its tocsin_host: `c` first, so that the
  /// pointer the plugin hands back to log() leads to the label.
  struct host {
    tocsin_host c;
    char label[96]; ///< the plugin's file name, for the log
  };
  static_assert(std::is_standard_layout_v<host>);

  explicit library(const std::filesystem::path& file);
  ~library();
  library(const library&) = delete;
  library& operator=(const library&) = delete;

  void* handle = nullptr;
  const tocsin_transport* table = nullptr; ///< once the entry point returned
  host self{};
  std::filesystem::path path;
  std::string name;
  std::string version;
  bool signs = false;
  bool follows_state = false;
  bool posts_messages = false;
  std::vector<std::string> secret_options;
  double rate = 0;
  std::uint32_t burst = 0;
};

} // namespace detail

namespace {

extern "C" {

static void host_log(const tocsin_host* h, std::uint32_t level,
                     tocsin_str message) noexcept try {
  if (h == nullptr || !valid(message))
    return;
  auto* self = reinterpret_cast<const detail::library::host*>(h);
  auto lvl = level <= TOCSIN_LOG_DEBUG  ? log::level::debug
             : level == TOCSIN_LOG_INFO ? log::level::info
             : level == TOCSIN_LOG_WARN ? log::level::warn
                                        : log::level::error;
  if (log::enabled(lvl))
    log::write(lvl, printable(view(message), 1024),
               {{"plugin", std::string{self->label}}});
} catch (...) {
  // Nothing may leave a callback; a lost log line is the lesser harm.
}

} // extern "C"

} // namespace

detail::library::library(const std::filesystem::path& file) : path(file) {
  self.c.size = sizeof(tocsin_host);
  self.c.abi_version = TOCSIN_PLUGIN_ABI_VERSION;
  self.c.version = tocsin::version;
  self.c.log = host_log;
  auto label = file.filename().string().substr(0, sizeof self.label - 1);
  std::memcpy(self.label, label.data(), label.size());
}

detail::library::~library() {
  if (table != nullptr && TOCSIN_HAS_FIELD(tocsin_transport, table, unload) &&
      table->unload != nullptr) {
    try {
      table->unload();
    } catch (...) {
    }
  }
  if (handle != nullptr)
    ::dlclose(handle);
}

transport_plugin::transport_plugin(
    std::shared_ptr<const detail::library> library)
    : library_(std::move(library)) {}

const std::string& transport_plugin::name() const {
  return library_->name;
}
const std::string& transport_plugin::version() const {
  return library_->version;
}
const std::filesystem::path& transport_plugin::path() const {
  return library_->path;
}
bool transport_plugin::signs_requests() const {
  return library_->signs;
}
bool transport_plugin::follows_state() const {
  return library_->follows_state;
}

const std::vector<std::string>& transport_plugin::secret_options() const {
  return library_->secret_options;
}

bool transport_plugin::posts_messages() const {
  return library_->posts_messages;
}
double transport_plugin::default_rate_per_second() const {
  return library_->rate;
}
std::uint32_t transport_plugin::default_burst() const {
  return library_->burst;
}

result<std::shared_ptr<const transport_instance>>
transport_plugin::open(const endpoint_view& endpoint) const {
  auto& name = library_->name;
  tocsin_call call{tocsin_call::kind::open};
  auto ep = to_c(endpoint);
  tocsin_instance* opened = nullptr;
  int rc = 1;
  try {
    rc = library_->table->open_endpoint(&host_api, &call, &ep, &opened);
  } catch (...) {
    return error{"plugin_failed", name + ": open_endpoint threw"};
  }
  auto instance = std::make_shared<const transport_instance>(
      *this, endpoint, rc == 0 ? opened : nullptr);
  if (call.violation)
    return error{"plugin_misbehaved", name + ": " + *call.violation};
  if (rc == 0 && !call.error)
    return instance;
  auto e = call.error.value_or(
      error{"invalid_options", "refused the options (no reason given)"});
  if (e.code == "plugin_error")
    e.code = "invalid_options";
  e.message = name + ": " + e.message;
  e.field = "options";
  return e;
}

status transport_plugin::validate_options(const endpoint_view& endpoint) const {
  auto opened = open(endpoint);
  if (!opened)
    return opened.error();
  return {};
}

status transport_plugin::validate_options(std::string_view options_json) const {
  return validate_options(endpoint_view{{}, {}, options_json});
}

transport_instance::transport_instance(transport_plugin plugin,
                                       const endpoint_view& endpoint,
                                       tocsin_instance* opened)
    : plugin_(std::move(plugin)), instance_(opened), id_(endpoint.id),
      url_(endpoint.url),
      options_json_(endpoint.options_json.empty() ? "{}"
                                                  : endpoint.options_json) {}

transport_instance::~transport_instance() {
  auto* table = plugin_.library_->table;
  if (instance_ != nullptr && table->close_endpoint != nullptr) {
    try {
      table->close_endpoint(instance_);
    } catch (...) {
    }
  }
}

result<built_request>
transport_instance::build_request(const event_view& event) const {
  auto& name = plugin_.name();
  tocsin_call call{tocsin_call::kind::build};
  auto ev = sized<tocsin_event_view>();
  ev.state = event.state == event_state::acknowledged
                 ? TOCSIN_EVENT_ACKNOWLEDGED
             : event.state == event_state::resolved ? TOCSIN_EVENT_RESOLVED
                                                    : TOCSIN_EVENT_OPEN;
  ev.id = str(event.id);
  ev.type = str(event.type);
  ev.severity = str(event.severity);
  ev.agent_id = str(event.agent_id);
  ev.summary = str(event.summary);
  ev.timestamp = str(event.timestamp);
  ev.payload_json = str(event.payload_json);
  ev.audit_url = str(event.audit_url);
  ev.state_by = str(event.state_by);
  ev.state_at = str(event.state_at);
  ev.reply_url = str(event.reply_url);
  ev.receipt = str(event.receipt);
  ev.answered_along = event.answered_along;
  ev.event_url = str(event.event_url);
  auto ep = to_c(endpoint_view{id_, url_, options_json_});
  int rc = 1;
  try {
    rc = plugin_.library_->table->build_request(&host_api, &call, instance_,
                                                &ev, &ep);
  } catch (...) {
    return error{"plugin_failed", name + ": build_request threw"};
  }
  if (call.violation)
    return error{"plugin_misbehaved", name + ": " + *call.violation};
  if (rc != 0 || call.error) {
    auto e = call.error.value_or(
        error{"plugin_failed", "build_request failed (no reason given)"});
    e.message = name + ": " + e.message;
    return e;
  }
  return std::move(call.request);
}

classification
transport_instance::classify(int status, std::string_view body_prefix,
                             std::string_view retry_after) const {
  auto& name = plugin_.name();
  tocsin_call call{tocsin_call::kind::classify};
  auto resp = sized<tocsin_response_view>();
  resp.status = status;
  resp.body_prefix = str(body_prefix);
  resp.retry_after = str(retry_after);
  int rc = TOCSIN_OUTCOME_PERMANENT;
  try {
    rc = plugin_.library_->table->classify(&host_api, &call, instance_, &resp);
  } catch (...) {
    return {outcome::permanent, name + ": classify threw"};
  }
  if (call.violation)
    return {outcome::permanent, name + ": " + *call.violation};
  switch (rc) {
  case TOCSIN_OUTCOME_SUCCESS:
    return {outcome::success, std::move(call.reason), std::move(call.receipt)};
  case TOCSIN_OUTCOME_RETRY:
    return {outcome::retry, std::move(call.reason)};
  case TOCSIN_OUTCOME_PERMANENT:
    return {outcome::permanent, std::move(call.reason)};
  case TOCSIN_OUTCOME_DISABLE_ENDPOINT:
    return {outcome::disable_endpoint, std::move(call.reason)};
  default:
    return {outcome::permanent,
            name + ": unknown outcome " + std::to_string(rc)};
  }
}

std::string refusal::message() const {
  return path.filename().string() + ": " + reason;
}

const transport_plugin* loaded_plugins::find(std::string_view name) const {
  for (auto& p : plugins)
    if (p.name() == name)
      return &p;
  return nullptr;
}

namespace {

std::string dl_error() {
  const char* e = ::dlerror();
  return e != nullptr ? e : "unknown error";
}

/// Why `table` cannot be used by this host, or nothing.
std::optional<std::string> check_table(const tocsin_transport* t,
                                       const char* reason) {
  if (t == nullptr)
    return reason != nullptr && *reason != '\0'
               ? "plugin declined to load: " +
                     printable(std::string_view{reason}.substr(0, 256), 256)
               : std::string{"plugin declined to load (no reason given)"};
  if (t->abi_version != TOCSIN_PLUGIN_ABI_VERSION)
    return "plugin ABI version " + std::to_string(t->abi_version) +
           ", this tocsin speaks " + std::to_string(TOCSIN_PLUGIN_ABI_VERSION);
  // Up to `classify` is required; later members are read when present.
  constexpr auto required =
      offsetof(tocsin_transport, classify) + sizeof(t->classify);
  if (t->size < required)
    return "plugin table of " + std::to_string(t->size) +
           " bytes, ABI version " + std::to_string(TOCSIN_PLUGIN_ABI_VERSION) +
           " needs at least " + std::to_string(required);
  if (t->name == nullptr || !is_plugin_name(t->name))
    return t->name == nullptr ? std::string{"plugin has no name"}
                              : "plugin name " + quoted(t->name) +
                                    " is not 1..64 of [a-z0-9_-]";
  if (t->version == nullptr)
    return "plugin " + std::string{t->name} + " has no version";
  if (t->open_endpoint == nullptr)
    return "plugin " + std::string{t->name} + " has no open_endpoint";
  if (t->build_request == nullptr)
    return "plugin " + std::string{t->name} + " has no build_request";
  if (t->classify == nullptr)
    return "plugin " + std::string{t->name} + " has no classify";
  if (TOCSIN_HAS_FIELD(tocsin_transport, t, secret_options) &&
      t->secret_options != nullptr) {
    std::size_t n = 0;
    for (auto* p = t->secret_options; *p != nullptr; ++p, ++n) {
      auto len = ::strnlen(*p, 65);
      if (n == max_secret_options || len == 0 || len > 64)
        return "plugin " + std::string{t->name} +
               ": secret_options must list at most " +
               std::to_string(max_secret_options) +
               " names of 1..64 bytes, NULL-terminated";
    }
  }
  return std::nullopt;
}

/// The candidate plugin at `file` if it may be loaded: not a symlink, owned
/// by root or this user, not writable by others, an ELF shared object that
/// exports the entry point (read from the file, so that a file that is not
/// a plugin never gets its constructors run). Otherwise why not.
std::optional<std::string> vet_plugin_file(const std::filesystem::path& file) {
  constexpr std::size_t max_plugin_bytes = 256 << 20;
  int fd = ::open(file.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return errno == ELOOP ? std::string{"a symbolic link: plugins are loaded "
                                        "only from regular files"}
                          : std::string{"cannot open: "} + std::strerror(errno);
  struct stat st {};
  std::string image;
  std::optional<std::string> problem;
  if (::fstat(fd, &st) != 0) {
    problem = std::string{"cannot stat: "} + std::strerror(errno);
  } else if (!S_ISREG(st.st_mode)) {
    problem = "not a regular file";
  } else if (auto why = trusted_code_problem(st, file)) {
    problem = std::move(why);
  } else if (static_cast<std::size_t>(st.st_size) > max_plugin_bytes) {
    problem = "larger than " + std::to_string(max_plugin_bytes >> 20) + " MiB";
  } else {
    image.resize(static_cast<std::size_t>(st.st_size));
    std::size_t got = 0;
    while (got < image.size()) {
      auto n = ::read(fd, image.data() + got, image.size() - got);
      if (n <= 0)
        break;
      got += static_cast<std::size_t>(n);
    }
    if (got != image.size())
      problem = "cannot read the whole file";
  }
  ::close(fd);
  if (problem)
    return problem;
  auto check = elf_exports_function(image, TOCSIN_PLUGIN_ENTRY_SYMBOL);
  switch (check.what) {
  case elf_symbol_check::verdict::defined:
  case elf_symbol_check::verdict::unreadable: // dlopen will tell
    return std::nullopt;
  case elf_symbol_check::verdict::absent:
    if (elf_exports_function(image, TOCSIN_PLUGIN_ENTRY_SYMBOL_V1).what ==
        elf_symbol_check::verdict::defined)
      return "built for plugin ABI version 1 "
             "(exports " TOCSIN_PLUGIN_ENTRY_SYMBOL_V1
             "): rebuild it against this tocsin's tocsin_plugin.h (ABI "
             "version " +
             std::to_string(TOCSIN_PLUGIN_ABI_VERSION) + "); not loaded";
    return std::string{"no symbol "} + TOCSIN_PLUGIN_ENTRY_SYMBOL +
           " (not a tocsin plugin; not loaded)";
  case elf_symbol_check::verdict::refused:
    break;
  }
  return "not loadable: " + check.why;
}

} // namespace

result<loaded_plugins> load_plugins(const std::filesystem::path& dir,
                                    if_missing missing) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(dir, ec)) {
    if (missing == if_missing::load_nothing && !ec)
      return loaded_plugins{};
    return error{"plugins_dir",
                 "plugins directory " + dir.string() + " does not exist"};
  }
  // Whoever can write the directory, or any directory above it (and so
  // replace it), can put code into tocsin. Links are resolved first: the
  // real path is checked, and loaded from.
  fs::path real;
  if (auto why = trusted_code_dir_problem(dir, &real))
    return error{"plugins_dir_unsafe", "refusing plugins directory: " + *why};
  std::vector<fs::path> files;
  for (fs::directory_iterator it{real, ec}, end; !ec && it != end;
       it.increment(ec))
    if (std::error_code file_ec;
        it->path().extension() == ".so" &&
        (it->is_symlink(file_ec) || it->is_regular_file(file_ec)))
      files.push_back(it->path());
  if (ec)
    return error{"plugins_dir", "cannot read plugins directory " +
                                    dir.string() + ": " + ec.message()};
  std::sort(files.begin(), files.end());

  loaded_plugins out;
  for (auto& file : files) {
    if (auto why = vet_plugin_file(file)) {
      out.refused.push_back({file, std::move(*why)});
      continue;
    }
    auto lib = std::make_shared<detail::library>(file);
    ::dlerror(); // clear any stale error
    lib->handle = ::dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (lib->handle == nullptr) {
      out.refused.push_back({file, "cannot load: " + dl_error()});
      continue;
    }
    ::dlerror();
    void* sym = ::dlsym(lib->handle, TOCSIN_PLUGIN_ENTRY_SYMBOL);
    if (sym == nullptr) {
      out.refused.push_back({file, std::string{"no symbol "} +
                                       TOCSIN_PLUGIN_ENTRY_SYMBOL + ": " +
                                       dl_error()});
      continue;
    }
    auto entry = reinterpret_cast<tocsin_plugin_entry_fn>(sym);
    const tocsin_transport* table = nullptr;
    const char* reason = nullptr;
    try {
      table = entry(&lib->self.c, &reason);
    } catch (...) {
      out.refused.push_back({file, "entry point threw"});
      continue;
    }
    if (auto why = check_table(table, reason)) {
      out.refused.push_back({file, std::move(*why)});
      continue;
    }
    if (auto* other = out.find(table->name)) {
      out.refused.push_back({file, "a plugin named " +
                                       std::string{table->name} +
                                       " is already loaded from " +
                                       other->path().filename().string()});
      continue;
    }
    lib->table = table;
    lib->name = table->name;
    lib->version = table->version;
    if (TOCSIN_HAS_FIELD(tocsin_transport, table, flags)) {
      lib->signs = (table->flags & TOCSIN_TRANSPORT_SIGNED) != 0;
      lib->follows_state = (table->flags & TOCSIN_TRANSPORT_FOLLOWS_STATE) != 0;
      lib->posts_messages = (table->flags & TOCSIN_TRANSPORT_MESSAGES) != 0;
    }
    if (TOCSIN_HAS_FIELD(tocsin_transport, table, secret_options) &&
        table->secret_options != nullptr) // checked by check_table
      for (auto* p = table->secret_options; *p != nullptr; ++p)
        lib->secret_options.emplace_back(*p);
    if (TOCSIN_HAS_FIELD(tocsin_transport, table, default_burst) &&
        table->default_rate_per_second > 0 &&
        table->default_rate_per_second < 1e6) {
      lib->rate = table->default_rate_per_second;
      lib->burst = std::max<std::uint32_t>(1, table->default_burst);
    }
    out.plugins.emplace_back(std::move(lib));
  }
  return out;
}

} // namespace tocsin::plugins
