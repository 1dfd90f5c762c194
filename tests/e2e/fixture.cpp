#include "tests/e2e/fixture.hpp"

#include "common/encoding.hpp"
#include "common/time.hpp"
#include "tests/postgres/pg_fixture.hpp"

#include <boost/test/unit_test.hpp>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <thread>

namespace tocsin::test {

storage::backend backend_of_this_run() {
  static const storage::backend b = [] {
    auto* name = std::getenv("TOCSIN_E2E_BACKEND");
    std::string_view v = name ? name : "";
    if (v.empty() || v == "rocksdb")
      return storage::backend::rocksdb;
    if (v == "postgres")
      return storage::backend::postgres;
    throw std::invalid_argument("TOCSIN_E2E_BACKEND must be rocksdb or "
                                "postgres, not " +
                                std::string{v});
  }();
  return b;
}

daemon_fixture::daemon_fixture()
    : ca_(dir_.path()), receiver_cert_(ca_.issue("receiver", {"localhost"},
                                                 {"127.0.0.1", "::1"})),
      config_file_(dir_.path() / "tocsin.toml"),
      backend_(backend_of_this_run()) {}

void daemon_fixture::use_postgres(std::string url) {
  backend_ = storage::backend::postgres;
  postgres_url_ = std::move(url);
}

storage::store_options daemon_fixture::store_options() const {
  storage::store_options o;
  o.dir = (dir_.path() / "data").string();
  o.create_if_missing = false;
  o.kind = backend_;
  o.postgres_url = postgres_url_;
  return o;
}

namespace {

/// A sanitizer report in the daemon's log fails the test that ran it.
void check_sanitizers(daemon_process& p) {
  auto log = p.log();
  BOOST_TEST(log.find("Sanitizer") == std::string::npos, log);
  BOOST_TEST(log.find("runtime error:") == std::string::npos, log);
}

} // namespace

daemon_fixture::~daemon_fixture() {
  client_.reset();
  if (!daemon_)
    return;
  if (daemon_->running())
    daemon_->terminate(); // a clean exit also runs LeakSanitizer
  check_sanitizers(*daemon_);
}

std::unique_ptr<https_receiver>
daemon_fixture::make_receiver(responder r, std::uint16_t port, bool http2,
                              std::string secret) {
  receiver_options opts;
  opts.http2 = http2;
  opts.cert_file = receiver_cert_.cert_file;
  opts.key_file = receiver_cert_.key_file;
  opts.webhook_secret = std::move(secret);
  opts.port = port;
  return std::make_unique<https_receiver>(opts, std::move(r));
}

std::string daemon_fixture::url_of(const https_receiver& r) {
  return "https://127.0.0.1:" + std::to_string(r.port()) + "/hook";
}

std::string
daemon_fixture::plugins_dir_setting(const std::filesystem::path& dir) {
  return "plugins_dir = \"" + dir.string() + "\"\n";
}

void daemon_fixture::start(const std::vector<endpoint_spec>& endpoints,
                           const std::string& server_extra,
                           const std::string& extra) {
  write_config(endpoints, server_extra, extra);
  restart();
}

void daemon_fixture::write_config(const std::vector<endpoint_spec>& endpoints,
                                  const std::string& server_extra,
                                  const std::string& extra) {
  std::ofstream cfg{config_file_};
  cfg << "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \""
      << (dir_.path() / "data").string() << "\"\n"
      << server_extra << "\n";
  if (backend_ == storage::backend::postgres) {
    // A database per daemon: every test starts from an empty store.
    static std::atomic<int> databases{0};
    if (postgres_url_.empty())
      postgres_url_ = fresh_database("e2e_" + std::to_string(++databases));
    cfg << "[storage]\nbackend = \"postgres\"\npostgres_url = \""
        << postgres_url_ << "\"\n\n";
  }
  cfg << "[delivery]\nca_file = \""
      << (ca_file_.empty() ? ca_.ca_file() : ca_file_) << "\"\njitter = 0\n"
      << "allow_networks = [" << allow_networks_ << "]\n"
      << "timeout = 5\n"
      // Retry schedules here are in milliseconds; so is the circuit's pause.
      << "breaker_cooldown = 0.2\n"
      << delivery_extra_ << "\n";
  for (auto& ep : endpoints) {
    cfg << "[[endpoints]]\n";
    if (!ep.id.empty())
      cfg << "id = \"" << ep.id << "\"\n";
    cfg << "url = \"" << ep.url << "\"\n";
    if (ep.with_secret)
      cfg << "secret = \"" << test_secret << "\"\n";
    cfg << "retry_schedule = " << ep.retry_schedule << "\n" << ep.extra << "\n";
  }
  cfg << extra;
  cfg.close();
}

void daemon_fixture::restart() {
  client_.reset();
  if (daemon_)
    check_sanitizers(*daemon_);
  daemon_ = std::make_unique<daemon_process>(
      std::vector<std::string>{TOCSIN_BINARY, "serve", "--config",
                               config_file_.string()},
      dir_.path() / "daemon.log", environment_);
  api_port_ = daemon_->wait_listening();
  BOOST_REQUIRE_MESSAGE(api_port_ != 0, "daemon did not start:\n"
                                            << daemon_->log());
  // With tokens in the config there is no admin.token: the test set one.
  if (std::ifstream tok{dir_.path() / "data" / "admin.token"})
    std::getline(tok, admin_token_);
  BOOST_REQUIRE(!admin_token_.empty());
  client_ = std::make_unique<http_client>("127.0.0.1", api_port_);
}

void daemon_fixture::kill9() {
  client_.reset();
  daemon_->kill9();
}

int daemon_fixture::terminate() {
  client_.reset();
  return daemon_->terminate();
}

http_result daemon_fixture::post(const std::string& target,
                                 const std::string& body,
                                 const std::string& token,
                                 const std::string& content_type) {
  std::vector<std::pair<std::string, std::string>> headers;
  if (!token.empty())
    headers.emplace_back("authorization", "Bearer " + token);
  if (!content_type.empty())
    headers.emplace_back("content-type", content_type);
  return client_->request("POST", target, body, headers);
}

http_result daemon_fixture::get(const std::string& target,
                                const std::string& token) {
  std::vector<std::pair<std::string, std::string>> headers;
  if (!token.empty())
    headers.emplace_back("authorization", "Bearer " + token);
  return client_->request("GET", target, {}, headers);
}

std::vector<std::string>
daemon_fixture::post_events(const nlohmann::json& body) {
  auto r = post("/v1/events", body.dump(), admin_token_);
  BOOST_REQUIRE_MESSAGE(r.status == 202, "POST /v1/events: " << r.status << " "
                                                             << r.body
                                                             << r.error);
  return nlohmann::json::parse(r.body)["ids"].get<std::vector<std::string>>();
}

nlohmann::json daemon_fixture::event(const std::string& id) {
  auto r = get("/v1/events/" + id, admin_token_);
  BOOST_REQUIRE_MESSAGE(r.status == 200,
                        "GET event: " << r.status << " " << r.body);
  return nlohmann::json::parse(r.body);
}

http_result daemon_fixture::call(const std::string& method,
                                 const std::string& target,
                                 const nlohmann::json& body,
                                 const std::string& token) {
  std::vector<std::pair<std::string, std::string>> headers{
      {"authorization", "Bearer " + (token.empty() ? admin_token_ : token)}};
  if (!body.is_null())
    headers.emplace_back("content-type", "application/json");
  return client_->request(method, target, body.is_null() ? "" : body.dump(),
                          headers);
}

nlohmann::json
daemon_fixture::wait_finished(const std::string& id,
                              std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto ev = event(id);
    bool done = !ev["deliveries"].empty();
    for (auto& d : ev["deliveries"])
      done = done && d["state"] != "pending";
    if (done || std::chrono::steady_clock::now() > deadline)
      return ev;
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  }
}

std::string token_toml(const std::string& name, const std::string& token,
                       const std::string& role) {
  return "[[auth.tokens]]\nname = \"" + name + "\"\nsha256 = \"" +
         hex_encode(sha256(token)) + "\"\nrole = \"" + role + "\"\n";
}

nlohmann::json sample_event(const std::string& agent) {
  return {{"type", "policy.denied"},
          {"agent_id", agent},
          {"summary", agent + " tried file.delete on /etc"},
          {"details",
           {{"action", "file.delete"},
            {"rule", "block-delete"},
            {"receipt_id", "rcpt_1"}}}};
}

std::vector<long> attempt_gaps_ms(const nlohmann::json& delivery) {
  std::vector<long> gaps;
  auto& attempts = delivery["attempts"];
  for (std::size_t i = 1; i < attempts.size(); ++i) {
    auto a = parse_rfc3339(attempts[i - 1]["started_at"].get<std::string>());
    auto b = parse_rfc3339(attempts[i]["started_at"].get<std::string>());
    gaps.push_back(static_cast<long>(*b - *a));
  }
  return gaps;
}

canned_response
answer(int status, std::string body,
       std::vector<std::pair<std::string, std::string>> headers) {
  canned_response r;
  r.status = status;
  r.body = std::move(body);
  r.headers = std::move(headers);
  return r;
}

responder always(canned_response r) {
  return [r](const received_request&, std::size_t) { return r; };
}

responder first_then(canned_response first, canned_response then) {
  return [first, then](const received_request&, std::size_t i) {
    return i == 0 ? first : then;
  };
}

nlohmann::json create_endpoint(daemon_fixture& f, const nlohmann::json& body) {
  auto r = f.call("POST", "/v1/endpoints", body);
  BOOST_REQUIRE_MESSAGE(r.status == 201,
                        "POST /v1/endpoints: " << r.status << " " << r.body);
  return nlohmann::json::parse(r.body);
}

nlohmann::json error_of(const http_result& r) {
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  BOOST_REQUIRE_MESSAGE(j.is_object() && j.contains("error"),
                        r.status << " " << r.body << r.error);
  return j["error"];
}

} // namespace tocsin::test
