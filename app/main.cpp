// tocsin: delivers AI-safety events to webhooks, reliably.
//   tocsin serve [--config FILE]
//   tocsin plugins [--config FILE]
//   tocsin endpoints|send|dead-letters ...  (API clients, see app/cli.hpp)
#include "actors/engine.hpp"
#include "api/auth.hpp"
#include "api/handler.hpp"
#include "api/server.hpp"
#include "app/config.hpp"
#include "app/reload.hpp"
#include "app/reloader.hpp"
#include "app/service_manager.hpp"
#include "app/store_metrics.hpp"
#include "cli/commands.hpp"
#include "common/conninfo.hpp"
#include "common/defaults.hpp"
#include "common/file_safety.hpp"
#include "common/log.hpp"
#include "common/metric_families.hpp"
#include "common/thread_pool.hpp"
#include "common/url.hpp"
#include "common/version.hpp"
#include "endpoints/definition.hpp"
#include "endpoints/reconcile.hpp"
#include "net/https_client.hpp"
#include "plugins/plugin_loader.hpp"
#include "plugins/tocsin_plugin.h"
#include "storage/retention.hpp"
#include "storage/store.hpp"

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>

#include <pthread.h>
#include <sys/stat.h>

#include <CLI/CLI.hpp>

namespace {

using namespace tocsin;

/// Exit with a one-line reason; nothing has been started half-way.
int refuse(const std::string& what, const error& e) {
  std::fprintf(stderr, "tocsin: %s: %s\n", what.c_str(), e.message.c_str());
  return 2;
}

/// server.plugins_dir, or where the shipped transports are next to this
/// binary: installed, <dir of tocsin>/../lib/tocsin/plugins (/usr/bin/tocsin:
/// /usr/lib/tocsin/plugins; cmake/packaging.cmake), else as built,
/// <dir of tocsin>/../plugins/transports (transports/CMakeLists.txt).
std::pair<std::filesystem::path, plugins::if_missing>
plugins_dir_of(const app::config& cfg) {
  if (!cfg.server.plugins_dir.empty())
    return {cfg.server.plugins_dir, plugins::if_missing::fail};
  std::error_code ec;
  auto bin = std::filesystem::read_symlink("/proc/self/exe", ec).parent_path();
  auto installed =
      (bin / ".." / "lib" / "tocsin" / "plugins").lexically_normal();
  auto built = (bin / ".." / "plugins" / "transports").lexically_normal();
  bool use_built = !std::filesystem::is_directory(installed, ec) &&
                   std::filesystem::is_directory(built, ec);
  return {use_built ? built : installed, plugins::if_missing::load_nothing};
}

/// Loads the transports; refused files are reported and skipped.
result<plugins::loaded_plugins> load_transports(const app::config& cfg) {
  auto [dir, missing] = plugins_dir_of(cfg);
  auto loaded = plugins::load_plugins(dir, missing);
  if (!loaded)
    return loaded.error();
  for (auto& p : loaded->plugins)
    log::info("transport loaded", {{"name", p.name()},
                                   {"version", p.version()},
                                   {"path", p.path().string()}});
  for (auto& r : loaded->refused)
    log::error("plugin refused",
               {{"path", r.path.string()}, {"reason", r.reason}});
  return loaded;
}

/// `tocsin plugins`: what `serve` would load, and what it would refuse.
int list_plugins(const std::string& config_file) {
  auto cfg = config_file.empty() ? app::parse_config("", "defaults")
                                 : app::load_config(config_file);
  if (!cfg)
    return refuse("config", cfg.error());
  auto [dir, missing] = plugins_dir_of(*cfg);
  auto loaded = plugins::load_plugins(dir, missing);
  if (!loaded)
    return refuse("plugins", loaded.error());
  std::printf("tocsin %s, plugin ABI version %u, plugins in %s\n",
              std::string{tocsin::version}.c_str(), TOCSIN_PLUGIN_ABI_VERSION,
              dir.string().c_str());
  std::printf("%-16s %-10s %s\n", "NAME", "VERSION", "PATH");
  for (auto& p : loaded->plugins)
    std::printf("%-16s %-10s %s\n", p.name().c_str(), p.version().c_str(),
                p.path().string().c_str());
  for (auto& r : loaded->refused)
    std::fprintf(stderr, "refused: %s\n", r.message().c_str());
  if (loaded->plugins.empty())
    std::fprintf(stderr, "no transports in %s\n", dir.string().c_str());
  return loaded->refused.empty() ? 0 : 1;
}

/// The store storage.backend names: RocksDB in data_dir, or the PostgreSQL
/// database of storage.postgres_url (data_dir then holds admin.token alone).
/// Says which, and where, with the URL's password masked, also in a refusal.
/// `on_failure`: see storage::store_options.
result<std::unique_ptr<storage::store>>
open_store(const app::config& cfg,
           std::function<void(const std::string&)> on_failure) {
  storage::store_options opts;
  opts.dir = cfg.server.data_dir;
  opts.on_failure = std::move(on_failure);
  opts.kind = cfg.storage.backend;
  opts.postgres_url = cfg.storage.postgres_url;
  bool postgres = opts.kind == storage::backend::postgres;
  log::info("opening the store",
            {{"backend", std::string{app::backend_name(opts.kind)}},
             {"at", postgres ? mask_password(opts.postgres_url) : opts.dir}});
  auto store = storage::open_store(opts);
  if (!store && postgres)
    return error{store.error().code,
                 hide_password(store.error().message, opts.postgres_url),
                 store.error().field};
  return store;
}

/// The address the API listens on: the configured one until the server
/// has bound its port (port 0: the one the system picked).
class bound_address {
public:
  explicit bound_address(std::string configured)
      : address_(std::move(configured)) {}
  std::string get() const {
    std::lock_guard g{mtx_};
    return address_;
  }
  void set(std::string address) {
    std::lock_guard g{mtx_};
    address_ = std::move(address);
  }

private:
  mutable std::mutex mtx_;
  std::string address_;
};

/// What the SSRF guard makes of the config file's endpoints, as warnings
/// (the file is the operator's, delivery.allow_networks with it: the guard
/// still refuses each delivery, as forbidden_address). Without
/// `resolve`, hosts given by IP only: serve does not wait on DNS to start.
std::vector<std::string>
destination_warnings(const std::vector<endpoints::endpoint_entry>& entries,
                     const net::address_policy& policy, bool resolve) {
  std::vector<std::string> out;
  for (auto& e : entries) {
    auto u = parse_url(e.definition.url);
    if (!u || (!u->host_is_ip && !resolve))
      continue;
    auto v = policy.check_host(u->host);
    using kind = net::destination_verdict::kind;
    if (v.what == kind::refused)
      out.push_back("endpoint " + e.definition.id +
                    ": deliveries to its URL will be refused: " + v.reason);
    else if (v.what == kind::unresolved)
      out.push_back("endpoint " + e.definition.id + ": " + u->host +
                    " does not resolve now (" + v.reason + ")");
  }
  return out;
}

/// `tocsin serve --check-config FILE`: what serve would refuse at start
/// without opening the store, listening or sending anything — the config's
/// keys and tokens, the plugins, every endpoint of the file as its transport
/// takes it, the escalation rules — with serve's one-line reasons. 0 when
/// serve would start (as far as the file goes), 1 when not.
int check_config(const std::string& config_file) {
  auto failed = [](const std::string& what, const error& e) {
    refuse(what, e);
    return 1;
  };
  auto cfg = config_file.empty() ? app::parse_config("", "defaults")
                                 : app::load_config(config_file);
  if (!cfg)
    return failed("config", cfg.error());
  auto [dir, missing] = plugins_dir_of(*cfg);
  auto transports = plugins::load_plugins(dir, missing);
  if (!transports)
    return failed("plugins", transports.error());
  for (auto& r : transports->refused)
    std::fprintf(stderr, "tocsin: plugin refused (serve skips it): %s\n",
                 r.message().c_str());
  if (auto st = app::check_endpoints(
          *cfg, app::endpoint_defaults_of(cfg->delivery), *transports);
      !st)
    return failed("endpoints", st.error());
  // Validated with the config; cannot fail here.
  auto policy = *net::address_policy::from_cidrs(cfg->delivery.allow_networks);
  for (auto& w : destination_warnings(cfg->endpoints, policy, true))
    std::fprintf(stderr, "tocsin: warning: %s\n", w.c_str());
  std::printf("tocsin: %s is valid: %zu endpoints, %zu escalation rules, "
              "%zu transports\n",
              config_file.empty() ? "the default config" : config_file.c_str(),
              cfg->endpoints.size(), cfg->escalation.size(),
              transports->plugins.size());
  return 0;
}

/// What `serve` exits with when the store cannot go on in this process
/// (storage::store::failed): for a supervisor to start it again (systemd's
/// Restart=on-failure). 2: refused at start.
constexpr int exit_store_failed = 3;

/// Sent to the main thread when the store finds it cannot go on (from the
/// thread that found it): sigwait wakes, and the daemon exits.
constexpr int store_failed_signal = SIGUSR2;

int serve(const std::string& config_file) {
  // Signals are taken synchronously by this thread (sigwait below); block
  // them before any other thread starts so that none inherits them unblocked.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  sigaddset(&signals, store_failed_signal);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  const pthread_t main_thread = pthread_self();

  auto cfg = config_file.empty() ? app::parse_config("", "defaults")
                                 : app::load_config(config_file);
  if (!cfg)
    return refuse("config", cfg.error());
  log::set_min_level(*log::level_from(cfg->log_level)); // checked with it

  // Everything tocsin creates is private to its user: the store holds the
  // endpoints' signing secrets in clear.
  ::umask(077);
  std::error_code ec;
  std::filesystem::create_directories(cfg->server.data_dir, ec);
  if (ec)
    return refuse("data_dir",
                  {"data_dir", "cannot create " + cfg->server.data_dir + ": " +
                                   ec.message()});
  if (auto why = private_dir_problem(cfg->server.data_dir))
    return refuse("data_dir", {"data_dir_unsafe", *why});
  auto log = open_store(*cfg, [main_thread](const std::string&) {
    pthread_kill(main_thread, store_failed_signal);
  });
  if (!log)
    return refuse("store", log.error());

  auto tokens = cfg->tokens;
  if (tokens.empty()) {
    bool created = false;
    auto admin = api::ensure_admin_token(cfg->server.data_dir, created);
    if (!admin)
      return refuse("auth", admin.error());
    tokens.push_back(*admin);
    auto path =
        (std::filesystem::path{cfg->server.data_dir} / "admin.token").string();
    log::info(created ? "no tokens configured; wrote a new admin token"
                      : "no tokens configured; using the admin token",
              {{"path", path}});
  }

  net::https_client_options client_opts;
  client_opts.ca_file = cfg->delivery.ca_file;
  client_opts.io_threads = cfg->server.io_threads;
  client_opts.max_open_per_origin =
      static_cast<std::size_t>(cfg->delivery.max_connections_per_origin);
  // Validated with the config; cannot fail here.
  client_opts.addresses =
      *net::address_policy::from_cidrs(cfg->delivery.allow_networks);
  auto client = net::make_https_client(client_opts);
  if (!client)
    return refuse("delivery", client.error());

  auto transports = load_transports(*cfg);
  if (!transports)
    return refuse("plugins", transports.error());
  auto defaults = app::endpoint_defaults_of(cfg->delivery);
  // In a cluster, what other nodes do from here on reaches this one
  // through the log.
  auto endpoints_as_of = (*log)->last_sequence();
  auto endpoints = endpoints::load_endpoints(**log, cfg->endpoints, defaults,
                                             *transports, now_ms());
  if (!endpoints)
    return refuse("endpoints", endpoints.error());
  if (endpoints->created + endpoints->updated + endpoints->removed > 0)
    log::info("endpoints from the config file applied",
              {{"created", std::to_string(endpoints->created)},
               {"updated", std::to_string(endpoints->updated)},
               {"removed", std::to_string(endpoints->removed)}});
  auto endpoint_count = endpoints->runtime.size();
  for (auto& w :
       destination_warnings(cfg->endpoints, client_opts.addresses, false))
    log::warn("a config endpoint's deliveries will be refused "
              "(forbidden_address)",
              {{"reason", w}});

  actors::engine_options engine_opts;
  engine_opts.scheduler_threads = cfg->server.actor_threads;
  engine_opts.max_payload_bytes = cfg->delivery.max_payload_bytes;
  engine_opts.queue_window = cfg->delivery.queue_window;
  engine_opts.escalation = cfg->escalation;
  engine_opts.public_url = cfg->server.public_url;
  engine_opts.endpoints = std::move(endpoints->runtime);
  auto board = std::make_shared<endpoint_board>();
  engine_opts.board = board;
  auto node = app::node_id_of(*cfg);
  if ((*log)->cluster()) {
    actors::cluster_options c;
    c.node = node;
    c.listen = cfg->server.listen;
    c.lease_ttl =
        std::chrono::milliseconds{std::llround(cfg->cluster.lease_ttl * 1000)};
    c.follow_from = endpoints_as_of + 1;
    c.endpoint_loader =
        [defaults, &transports](
            std::string_view stored) -> result<delivery::endpoint_config> {
      auto def = endpoints::from_stored_json(stored);
      if (!def)
        return def.error();
      return endpoints::runtime_config(*def, defaults, &*transports);
    };
    engine_opts.cluster = std::move(c);
    log::info("joining the cluster",
              {{"node", node},
               {"lease_ttl_s", std::to_string(cfg->cluster.lease_ttl)}});
  }
  auto engine = actors::engine::start(engine_opts, **log, **client);
  if (!engine)
    return refuse("recovery", engine.error());

  storage::retention_options retention_opts;
  retention_opts.keep =
      std::chrono::milliseconds{std::llround(cfg->delivery.retention * 1000)};
  retention_opts.keep_keys =
      std::chrono::milliseconds{defaults::idempotency_window_ms};
  std::optional<storage::retention_runner> retention{std::in_place, **log,
                                                     retention_opts};

  api::handler_options api_opts;
  api_opts.audit_url_template = cfg->server.audit_url_template;
  api_opts.allow_producer_links = cfg->server.allow_producer_links;
  api_opts.max_payload_bytes = cfg->delivery.max_payload_bytes;
  api_opts.max_queued_requests = cfg->server.max_queued_requests;
  api_opts.max_queued_bytes = cfg->server.max_queued_bytes;
  api_opts.max_body_bytes = cfg->server.max_body_bytes;
  api_opts.defaults = defaults;
  api_opts.public_metrics = cfg->server.public_metrics;
  api_opts.board = board;
  api_opts.addresses = client_opts.addresses;
  metrics::families::register_all();
  app::add_store_metrics(metrics::global(), **log);
  api_opts.slack_signing_secret = cfg->slack_signing_secret;
  api_opts.slack_response_url_hosts = cfg->slack_response_url_hosts;
  api_opts.pagerduty_webhook_secret = cfg->pagerduty_webhook_secret;
  api_opts.rules.transports = &*transports;
  // GET /v1/cluster: this node, and (once the server is bound) its address.
  api_opts.node_id = app::node_id_of(*cfg);
  api_opts.backend = cfg->storage.backend;
  api_opts.lease_ttl =
      std::chrono::milliseconds{std::llround(cfg->cluster.lease_ttl * 1000)};
  auto listen_address = std::make_shared<bound_address>(cfg->server.listen);
  api_opts.listen = [listen_address] { return listen_address->get(); };
  // GET /v1/stream: one thread tails the log for every client.
  std::optional<api::stream_hub> stream_hub{std::in_place, **log};
  api_opts.stream = &*stream_hub;
  // Store reads for the API run here, never on the HTTP I/O threads.
  std::optional<thread_pool> readers{std::in_place, cfg->server.read_threads};
  api_opts.offload = [&readers](std::function<void()> work) {
    readers->post(std::move(work));
  };
  api::request_handler handler{**engine, **log, api::authenticator{tokens},
                               std::move(api_opts)};
  // SIGHUP: the config file again, applied while the daemon runs.
  app::reloader reloader(config_file, *cfg, tokens, **log, **engine, handler,
                         *transports);
  api::server_options server_opts;
  server_opts.listen = cfg->server.listen;
  server_opts.max_body_bytes = cfg->server.max_body_bytes;
  server_opts.max_connections = cfg->server.max_connections;
  server_opts.max_connections_per_address =
      cfg->server.max_connections_per_address;
  server_opts.max_reading_bytes = cfg->server.max_reading_bytes;
  auto ms = [](double seconds) {
    return std::chrono::milliseconds{std::llround(seconds * 1000)};
  };
  server_opts.request_timeout = ms(cfg->server.request_timeout);
  server_opts.header_timeout = ms(cfg->server.header_timeout);
  server_opts.idle_timeout = ms(cfg->server.idle_timeout);
  server_opts.threads = cfg->server.io_threads;
  auto server = api::start_server(server_opts, handler);
  if (!server)
    return refuse("server", server.error());
  listen_address->set((*server)->address());
  log::info("listening", {{"address", (*server)->address()},
                          {"version", version},
                          {"endpoints", std::to_string(endpoint_count)},
                          {"data_dir", cfg->server.data_dir}});
  // Under systemd (Type=notify): started, and alive while both the engine
  // and the API's I/O threads answer.
  app::notify_ready("listening on " + (*server)->address());
  std::optional<app::watchdog> watchdog;
  if (auto interval = app::watchdog_interval())
    watchdog.emplace(*interval, [&](std::chrono::milliseconds timeout) {
      return (*engine)->responsive(timeout / 2) &&
             (*server)->responsive(timeout / 2);
    });

  // The store cannot go on: nothing more is written in this process. What
  // was answered 202 is on disk; what was not is not counted on. No
  // draining (outcomes could not be recorded), no closing of the store
  // (that writes).
  auto exit_if_failed = [&log] {
    if (auto why = (*log)->failed()) {
      std::fprintf(stderr,
                   "tocsin: store cannot go on: %s; exiting for the "
                   "supervisor to restart\n",
                   why->c_str());
      std::fflush(stderr);
      std::_Exit(exit_store_failed);
    }
  };
  int sig = 0;
  for (;;) {
    sigwait(&signals, &sig);
    exit_if_failed();
    if (sig == SIGTERM || sig == SIGINT)
      break;
    if (sig == SIGHUP && !config_file.empty())
      reloader.reload();
    else if (sig == SIGHUP)
      log::warn("SIGHUP ignored: serve runs without a config file");
  }
  log::info("shutting down",
            {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
  watchdog.reset();
  app::notify_stopping("draining deliveries in flight");
  // Order matters: no new requests, then let attempts in flight finish
  // (bounded), then stop the I/O the actors use, then the actors, then the log.
  (*server)->stop();
  stream_hub.reset();
  readers.reset(); // runs what was posted (it reads the log), then joins
  (*engine)->drain(std::chrono::seconds{10});
  (*client)->stop();
  retention.reset();
  engine->reset();
  client->reset();
  exit_if_failed(); // while shutting down
  log->reset();
  log::info("stopped");
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  CLI::App cli{"tocsin: delivers AI-safety events to webhooks, Slack and "
               "PagerDuty, reliably"};
  cli.require_subcommand(1);
  cli.set_version_flag("--version", "tocsin " + std::string{version});
  std::string config_file;
  std::string checked_file;
  auto serve_cmd = cli.add_subcommand("serve", "run the daemon");
  serve_cmd->add_option("-c,--config", config_file, "TOML config file");
  auto check_opt = serve_cmd->add_option(
      "--check-config", checked_file,
      "validate FILE as serve would at start (keys, tokens, plugins, "
      "endpoints, escalation rules), print why not, exit 0 or 1");
  cli.add_subcommand("version", "print the version")->callback([] {
    std::cout << "tocsin " << version << "\n";
  });
  auto plugins_cmd = cli.add_subcommand(
      "plugins", "list the transport plugins serve would load");
  plugins_cmd->add_option("-c,--config", config_file, "TOML config file");
  cli::operator_cli operator_commands{cli};
  // A word that is no command: say so (CLI11 alone says a subcommand is
  // required).
  if (argc > 1 && argv[1][0] != '-') {
    std::string word = argv[1];
    auto known = cli.get_subcommands([](CLI::App*) { return true; });
    if (std::none_of(known.begin(), known.end(),
                     [&](CLI::App* c) { return c->check_name(word); })) {
      std::string names;
      for (auto* c : known)
        names += (names.empty() ? "" : ", ") + c->get_name();
      std::fprintf(stderr, "tocsin: unknown command '%s' (commands: %s)\n",
                   word.c_str(), names.c_str());
      return 2;
    }
  }
  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help exits 0, usage errors 2.
    return cli.exit(e) == 0 ? 0 : 2;
  }
  if (serve_cmd->parsed() && check_opt->count() > 0)
    return check_config(checked_file);
  if (serve_cmd->parsed())
    return serve(config_file);
  if (plugins_cmd->parsed())
    return list_plugins(config_file);
  if (auto code = operator_commands.run())
    return *code;
  return 0;
}
