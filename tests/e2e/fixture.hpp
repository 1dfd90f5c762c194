// End-to-end fixture: the real tocsin binary as a child process, with a config
// written per test, a test CA, and HTTPS receivers on loopback. Its store is
// RocksDB in the test's directory, or with TOCSIN_E2E_BACKEND=postgres a
// database of its own in the test binary's PostgreSQL (CTest's *_pg
// entries run suites so).
#pragma once

#include "storage/store.hpp"
#include "tests/support/daemon_process.hpp"
#include "tests/support/eventually.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/https_receiver.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/test_ca.hpp"

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace tocsin::test {

inline constexpr const char* test_secret =
    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

struct endpoint_spec {
  std::string id = {};
  std::string url = {};
  std::string retry_schedule = "[0.05, 0.05, 0.05, 0.05]";
  std::string extra = {};  ///< more TOML lines for the [[endpoints]] table
  bool with_secret = true; ///< test_secret (transports that do not sign
                           ///< need none)
};

/// The backend TOCSIN_E2E_BACKEND names: "postgres", or RocksDB (unset).
storage::backend backend_of_this_run();

class daemon_fixture {
public:
  daemon_fixture();
  ~daemon_fixture();

  /// Which store the daemon runs on (default: backend_of_this_run()).
  storage::backend backend() const { return backend_; }
  /// Runs the daemon on PostgreSQL: the database `url` names, or (empty) a
  /// new one in the test binary's PostgreSQL. Before start().
  void use_postgres(std::string url = {});
  /// The daemon's store, for a test to open itself while no daemon runs.
  storage::store_options store_options() const;

  /// A receiver with a certificate from the test CA for localhost, 127.0.0.1
  /// and ::1, verifying signatures with `secret` (a "whsec_" secret or a
  /// "whpk_" public key); with `http2`, it selects h2 by ALPN when the
  /// daemon offers it.
  std::unique_ptr<https_receiver>
  make_receiver(responder r = {}, std::uint16_t port = 0, bool http2 = false,
                std::string secret = test_secret);

  /// "https://127.0.0.1:<port>/hook".
  static std::string url_of(const https_receiver& r);

  /// Writes the config and starts the daemon. `server_extra` goes into
  /// [server], `extra` after everything else.
  void start(const std::vector<endpoint_spec>& endpoints,
             const std::string& server_extra = {},
             const std::string& extra = {});
  /// Writes the config as start() does, without starting anything (for a
  /// reload: process().signal(SIGHUP)).
  void write_config(const std::vector<endpoint_spec>& endpoints,
                    const std::string& server_extra = {},
                    const std::string& extra = {});
  /// Starts the daemon again on the same data directory and config.
  void restart();
  void kill9();
  int terminate();

  http_result post(const std::string& target, const std::string& body,
                   const std::string& token = {},
                   const std::string& content_type = "application/json");
  http_result get(const std::string& target, const std::string& token = {});
  /// Any request with a JSON body (empty: none), as admin unless `token`.
  http_result call(const std::string& method, const std::string& target,
                   const nlohmann::json& body = nullptr,
                   const std::string& token = {});

  /// Posts events (JSON) and returns the accepted ids; fails the test on error.
  std::vector<std::string> post_events(const nlohmann::json& body);

  /// GET /v1/events/{id} as JSON.
  nlohmann::json event(const std::string& id);

  /// Polls until every delivery of `id` is delivered or dead-lettered.
  nlohmann::json
  wait_finished(const std::string& id,
                std::chrono::milliseconds timeout = std::chrono::seconds{30});

  const std::filesystem::path& dir() const { return dir_.path(); }
  /// The config file start() writes (for `tocsin ... --config`).
  const std::filesystem::path& config_file() const { return config_file_; }
  /// A [server] line for start(): load transports from `dir` only.
  static std::string plugins_dir_setting(const std::filesystem::path& dir);
  const std::string& admin_token() const { return admin_token_; }
  /// More lines for the [delivery] table (e.g. "retention = 1\n").
  void set_delivery_extra(std::string lines) {
    delivery_extra_ = std::move(lines);
  }
  /// delivery.allow_networks as TOML array items (default: loopback).
  void set_allow_networks(std::string items) {
    allow_networks_ = std::move(items);
  }
  /// delivery.ca_file: the CA the daemon trusts (default: this fixture's
  /// own; nodes of a cluster trust one, whose receivers they all reach).
  void set_ca_file(std::string file) { ca_file_ = std::move(file); }
  /// "NAME=value" entries added to the daemon's environment (from the next
  /// start on).
  void set_environment(std::vector<std::string> entries) {
    environment_ = std::move(entries);
  }
  /// For configs that list tokens: the admin token the test configured.
  void use_admin_token(std::string token) { admin_token_ = std::move(token); }
  std::uint16_t api_port() const { return api_port_; }
  const test_ca& ca() const { return ca_; }
  daemon_process& process() { return *daemon_; }
  /// The client the fixture talks to the API with (any headers).
  http_client& client() { return *client_; }

private:
  temp_dir dir_;
  test_ca ca_;
  pem_files receiver_cert_;
  std::filesystem::path config_file_;
  std::unique_ptr<daemon_process> daemon_;
  std::unique_ptr<http_client> client_;
  std::uint16_t api_port_ = 0;
  std::string admin_token_;
  std::string allow_networks_ = "\"127.0.0.0/8\", \"::1/128\"";
  std::string delivery_extra_;
  std::string ca_file_; ///< empty: ca_'s
  std::vector<std::string> environment_;
  storage::backend backend_;
  std::string postgres_url_; ///< made at the first start() when empty
};

/// An [[auth.tokens]] table for start()'s `extra`: `token` with `role`.
std::string token_toml(const std::string& name, const std::string& token,
                       const std::string& role);

/// A minimal valid event.
nlohmann::json sample_event(const std::string& agent = "agent-7");

/// Milliseconds between the started_at of consecutive attempts.
std::vector<long> attempt_gaps_ms(const nlohmann::json& delivery);

// ---- Receivers' answers ----------------------------------------------------

/// An answer with `status`, `body` and extra headers.
canned_response
answer(int status, std::string body = "ok",
       std::vector<std::pair<std::string, std::string>> headers = {});

/// A receiver that always gives the same answer.
responder always(canned_response r);

/// A receiver that gives `first`, then `then` to every later request.
responder first_then(canned_response first, canned_response then);

// ---- The API ---------------------------------------------------------------

/// POST /v1/endpoints as admin; fails the test unless 201. The answer (with
/// the endpoint's id and secret).
nlohmann::json create_endpoint(daemon_fixture& f, const nlohmann::json& body);

/// The "error" object of an API answer; fails the test if there is none.
nlohmann::json error_of(const http_result& r);

// ---- Waiting on a condition ------------------------------------------------

/// How often `part` occurs in `text`.
inline std::size_t count_of(std::string_view text, std::string_view part) {
  std::size_t n = 0;
  for (auto at = text.find(part); at != std::string_view::npos;
       at = text.find(part, at + part.size()))
    ++n;
  return n;
}

/// Whether `text` contains `part`.
inline bool contains(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

} // namespace tocsin::test
