#include "cli/commands.hpp"

#include "app/config.hpp"
#include "cli/client.hpp"
#include "common/json_parse.hpp"
#include "delivery/signing.hpp"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <string>
#include <tuple>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

namespace tocsin::cli {

namespace {

using json = nlohmann::ordered_json;

/// An answer of the daemon as JSON (strictly and bounded, as the daemon reads
/// what it is sent); discarded when it is not.
json parse_answer(std::string_view body) {
  json j;
  if (!parse_json(body, j, nullptr, stored_json_limits))
    return json(json::value_t::discarded);
  return j;
}

constexpr const char* default_server = "http://127.0.0.1:8650";

/// Where to reach the daemon and with which token (options shared by every
/// command).
struct connection_options {
  std::string server;
  std::string config_file;
  std::string token;
};

struct connection {
  api_client client;
  std::string token;
};

std::string trim(std::string s) {
  auto space = [](char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
  };
  while (!s.empty() && space(s.back()))
    s.pop_back();
  std::size_t start = 0;
  while (start < s.size() && space(s[start]))
    ++start;
  return s.substr(start);
}

/// "http://" + a listen address, with a wildcard host replaced by loopback.
std::string server_of_listen(const std::string& listen) {
  auto colon = listen.rfind(':');
  if (colon == std::string::npos)
    return "http://" + listen;
  auto host = listen.substr(0, colon);
  auto port = listen.substr(colon);
  if (host.empty() || host == "0.0.0.0")
    host = "127.0.0.1";
  else if (host == "[::]" || host == "::")
    host = "[::1]";
  return "http://" + host + port;
}

result<connection> connect(const connection_options& opts) {
  std::optional<app::config> cfg;
  if (!opts.config_file.empty()) {
    auto loaded = app::load_config(opts.config_file);
    if (!loaded)
      return error{"config", loaded.error().message};
    cfg = std::move(*loaded);
  }
  // --server and --token fall back to their environment variables while
  // parsing (CLI11 envname); then to the config, then to the defaults.
  auto server = opts.server;
  if (server.empty())
    server = cfg ? server_of_listen(cfg->server.listen) : default_server;
  auto client = api_client::make(server);
  if (!client)
    return client.error();

  auto token = trim(opts.token);
  if (token.empty()) {
    std::filesystem::path file =
        std::filesystem::path{cfg ? cfg->server.data_dir : "./data"} /
        "admin.token";
    std::ifstream in{file};
    if (in)
      token = trim(std::string{std::istreambuf_iterator<char>{in}, {}});
    if (token.empty())
      return error{"token", "no token: give --token or TOCSIN_TOKEN, or "
                            "--config on the daemon's host (cannot read " +
                                file.string() + ")"};
  }
  return connection{std::move(*client), std::move(token)};
}

void fail(const std::string& message) {
  std::fprintf(stderr, "tocsin: %s\n", message.c_str());
}

/// Sends one request. On a 2xx answer returns it; otherwise prints the reason
/// (the API's error object, or the connection failure) and returns nullopt.
/// A body goes as application/json.
std::optional<http_response> call_raw(const connection& c, std::string method,
                                      std::string target,
                                      const std::optional<std::string>& body,
                                      http_headers headers = {}) {
  http_request req{std::move(method), std::move(target), std::move(headers)};
  req.headers.emplace_back("Authorization", "Bearer " + c.token);
  req.headers.emplace_back("Accept", "application/json");
  req.headers.emplace_back("User-Agent", "tocsin-cli");
  if (body) {
    req.headers.emplace_back("Content-Type", "application/json");
    req.body = *body;
  }
  auto res = c.client.request(req);
  if (!res) {
    fail(res.error().message);
    return std::nullopt;
  }
  if (res->status >= 200 && res->status < 300)
    return std::move(*res);
  auto answer = parse_answer(res->body);
  if (answer.is_object() && answer.contains("error") &&
      answer["error"].is_object()) {
    auto& err = answer["error"];
    auto text = [&](const char* key) {
      return err.contains(key) && err[key].is_string()
                 ? err[key].get<std::string>()
                 : std::string{};
    };
    auto line = text("message") + " (" + text("code");
    if (auto field = text("field"); !field.empty())
      line += ", field " + field;
    fail(line + ")");
  } else {
    auto body_text = trim(res->body.substr(0, 200));
    fail("HTTP " + std::to_string(res->status) + " from " + c.client.server() +
         (body_text.empty() ? "" : ": " + body_text));
  }
  return std::nullopt;
}

/// The answer's JSON when it holds an array `key`; otherwise says so and
/// gives nothing.
std::optional<json> answer_with_array(const connection& c,
                                      const http_response& res,
                                      const char* key) {
  auto answer = parse_answer(res.body);
  if (!answer.is_object() || !answer.contains(key) || !answer[key].is_array()) {
    fail("unexpected answer from " + c.client.server());
    return std::nullopt;
  }
  return answer;
}

std::optional<http_response> call(const connection& c, std::string method,
                                  std::string target,
                                  const std::optional<json>& body = {}) {
  return call_raw(c, std::move(method), std::move(target),
                  body ? std::optional<std::string>{body->dump()}
                       : std::nullopt);
}

/// Prints a JSON answer indented; anything else as it came.
void print_json(const std::string& body) {
  auto j = parse_answer(body);
  if (j.is_discarded())
    std::cout << body << "\n";
  else
    std::cout << j.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
}

/// Makes the call and prints its answer: the command's exit code (1 when the
/// call failed, which call() has said). `then` runs on the answer's body.
int call_and_print(const connection& c, std::string method, std::string target,
                   const std::optional<json>& body = {},
                   void (*then)(const std::string&) = nullptr) {
  auto res = call(c, std::move(method), std::move(target), body);
  if (!res)
    return 1;
  print_json(res->body);
  if (then)
    then(res->body);
  return 0;
}

/// A JSON value as a table cell.
std::string cell(const json& obj, const char* key) {
  if (!obj.is_object() || !obj.contains(key) || obj[key].is_null())
    return "-";
  auto& v = obj[key];
  if (v.is_string())
    return v.get<std::string>();
  if (v.is_boolean())
    return v.get<bool>() ? "yes" : "no";
  if (v.is_array()) {
    std::string out;
    for (auto& item : v)
      out += (out.empty() ? "" : ",") +
             (item.is_string() ? item.get<std::string>() : item.dump());
    return out.empty() ? "-" : out;
  }
  return v.dump();
}

/// Columns padded to their widest cell; the first row is the header.
void print_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> width;
  for (auto& row : rows)
    for (std::size_t i = 0; i < row.size(); ++i) {
      width.resize(std::max(width.size(), row.size()));
      width[i] = std::max(width[i], row[i].size());
    }
  for (auto& row : rows) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size())
        line += std::string(width[i] - row[i].size() + 2, ' ');
    }
    std::cout << line << "\n";
  }
}

/// An endpoint's answer shows its signing secret once (a transport that
/// does not sign, such as Slack or PagerDuty, has none: `"secret": ""`).
void note_secret(const std::string& body) {
  auto j = parse_answer(body);
  if (!j.is_object())
    return;
  auto secret = j.find("secret");
  if (secret != j.end() && secret->is_string() &&
      !secret->get<std::string>().empty())
    std::fprintf(stderr, "note: the secret is shown only this once; "
                         "store it now\n");
}

// --- option helpers -------------------------------------------------------

const CLI::Validator key_value{[](std::string& s) {
                                 auto eq = s.find('=');
                                 return eq == std::string::npos || eq == 0
                                            ? "expected KEY=VALUE, got '" + s +
                                                  "'"
                                            : std::string{};
                               },
                               "KEY=VALUE"};

/// {"k": "v", ...} from "k=v" items (the last of a repeated key wins).
json object_of(const std::vector<std::string>& items) {
  json obj = json::object();
  for (auto& item : items) {
    auto eq = item.find('=');
    obj[item.substr(0, eq)] = item.substr(eq + 1);
  }
  return obj;
}

void add_connection_options(CLI::App* cmd, connection_options& opts) {
  cmd->add_option("--server", opts.server,
                  "API base URL (default: $TOCSIN_SERVER, else http:// + "
                  "server.listen of --config, else " +
                      std::string{default_server} + ")")
      ->envname("TOCSIN_SERVER");
  cmd->add_option("-c,--config", opts.config_file,
                  "the daemon's TOML config (for server.listen and "
                  "data_dir/admin.token)");
  cmd->add_option("--token", opts.token,
                  "bearer token (default: $TOCSIN_TOKEN, else the contents "
                  "of <data_dir>/admin.token)")
      ->envname("TOCSIN_TOKEN");
}

/// Runs `body` with a connection; 1 if there is none.
int with_connection(const connection_options& opts,
                    const std::function<int(const connection&)>& body) {
  auto c = connect(opts);
  if (!c) {
    fail(c.error().message);
    return 1;
  }
  return body(*c);
}

// --- endpoints -------------------------------------------------------------

struct endpoint_fields {
  std::string url, id, transport, min_severity, secret, signature, description;
  std::vector<std::string> event_types, agents, options;
  bool disabled = false, enable = false, disable = false;
};

void add_endpoint_flags(CLI::App* cmd, endpoint_fields& f, bool update) {
  auto url = cmd->add_option("--url", f.url, "https:// URL to deliver to");
  if (!update) {
    url->required();
    cmd->add_option("--id", f.id, "stable endpoint id (default: generated)");
  }
  cmd->add_option("--transport", f.transport,
                  "webhook (default), slack, pagerduty or a plugin's name");
  cmd->add_option("--event-type", f.event_types,
                  "event type to deliver (repeatable, or comma-separated; "
                  "'*' for all)")
      ->delimiter(',')
      ->allow_extra_args(false);
  cmd->add_option("--min-severity", f.min_severity,
                  "deliver only events at or above it");
  cmd->add_option("--agent", f.agents, "agent id glob to match (repeatable)")
      ->allow_extra_args(false);
  cmd->add_option("--secret", f.secret,
                  "signing secret whsec_... (default: generated)");
  cmd->add_option("--signature", f.signature, "signature scheme")
      ->check(CLI::IsMember({"hmac", "hmac-sha256", "ed25519"}));
  cmd->add_option("--description", f.description, "free text");
  cmd->add_option("--option", f.options,
                  "transport option KEY=VALUE (repeatable), e.g. "
                  "routing_key=...")
      ->check(key_value)
      ->allow_extra_args(false);
  if (!update) {
    cmd->add_flag("--disabled", f.disabled, "create it disabled");
  } else {
    auto on = cmd->add_flag("--enable", f.enable, "enable the endpoint");
    auto off = cmd->add_flag("--disable", f.disable, "disable the endpoint");
    on->excludes(off);
  }
}

/// The request body: only the fields given on the command line.
json endpoint_body(const CLI::App& cmd, const endpoint_fields& f, bool update) {
  json body = json::object();
  auto given = [&](const char* flag) { return cmd.count(flag) > 0; };
  if (!update && given("--id"))
    body["id"] = f.id;
  if (given("--url"))
    body["url"] = f.url;
  if (given("--transport"))
    body["transport"] = f.transport;
  if (given("--event-type"))
    body["event_types"] = f.event_types;
  if (given("--min-severity"))
    body["min_severity"] = f.min_severity;
  if (given("--agent"))
    body["agents"] = f.agents;
  if (given("--secret"))
    body["secret"] = f.secret;
  if (given("--signature"))
    body["signature"] = f.signature == "hmac" ? "hmac-sha256" : f.signature;
  if (given("--description"))
    body["description"] = f.description;
  if (given("--option"))
    body["options"] = object_of(f.options);
  if (!update && f.disabled)
    body["enabled"] = false;
  if (update && (f.enable || f.disable))
    body["enabled"] = f.enable;
  return body;
}

std::string endpoint_path(const std::string& id) {
  return "/v1/endpoints/" + percent_encode(id);
}

} // namespace

struct operator_cli::state {
  CLI::App* root = nullptr;
  /// The command to run, set when its subcommand was parsed. It may throw
  /// CLI::ParseError for what the parser cannot check.
  std::function<int()> action;
};

namespace {

/// Registers `cmd` so that, when parsed, `run` becomes the action.
void on_parsed(CLI::App* cmd, operator_cli::state& st,
               std::function<int()> run) {
  cmd->callback([&st, run = std::move(run)] { st.action = run; });
}

void add_endpoints(CLI::App& app, operator_cli::state& st) {
  auto group = app.add_subcommand("endpoints", "manage endpoints (API client)");
  group->require_subcommand(1);

  {
    auto cmd = group->add_subcommand("add", "create an endpoint");
    auto conn = std::make_shared<connection_options>();
    auto f = std::make_shared<endpoint_fields>();
    add_endpoint_flags(cmd, *f, false);
    add_connection_options(cmd, *conn);
    on_parsed(cmd, st, [cmd, conn, f] {
      return with_connection(*conn, [&](const connection& c) {
        return call_and_print(c, "POST", "/v1/endpoints",
                              endpoint_body(*cmd, *f, false), note_secret);
      });
    });
  }

  {
    auto cmd = group->add_subcommand("list", "list the endpoints");
    auto conn = std::make_shared<connection_options>();
    auto raw = std::make_shared<bool>(false);
    cmd->add_flag("--json", *raw, "print the API's JSON answer");
    add_connection_options(cmd, *conn);
    on_parsed(cmd, st, [conn, raw] {
      return with_connection(*conn, [&](const connection& c) {
        auto res = call(c, "GET", "/v1/endpoints");
        if (!res)
          return 1;
        if (*raw) {
          std::cout << res->body << "\n";
          return 0;
        }
        auto answer = answer_with_array(c, *res, "endpoints");
        if (!answer)
          return 1;
        if ((*answer)["endpoints"].empty()) {
          std::fprintf(stderr, "no endpoints\n");
          return 0;
        }
        std::vector<std::vector<std::string>> rows{
            {"ID", "TRANSPORT", "ENABLED", "URL", "EVENT_TYPES"}};
        for (auto& ep : (*answer)["endpoints"])
          rows.push_back({cell(ep, "id"), cell(ep, "transport"),
                          cell(ep, "enabled"), cell(ep, "url"),
                          cell(ep, "event_types")});
        print_table(rows);
        return 0;
      });
    });
  }

  {
    auto cmd = group->add_subcommand("get", "show one endpoint");
    auto conn = std::make_shared<connection_options>();
    auto id = std::make_shared<std::string>();
    cmd->add_option("id", *id, "endpoint id")->required();
    add_connection_options(cmd, *conn);
    on_parsed(cmd, st, [conn, id] {
      return with_connection(*conn, [&](const connection& c) {
        return call_and_print(c, "GET", endpoint_path(*id));
      });
    });
  }

  {
    auto cmd = group->add_subcommand(
        "update", "change an endpoint (only the fields given)");
    auto conn = std::make_shared<connection_options>();
    auto id = std::make_shared<std::string>();
    auto f = std::make_shared<endpoint_fields>();
    cmd->add_option("id", *id, "endpoint id")->required();
    add_endpoint_flags(cmd, *f, true);
    add_connection_options(cmd, *conn);
    on_parsed(cmd, st, [cmd, conn, id, f] {
      auto body = endpoint_body(*cmd, *f, true);
      if (body.empty())
        throw CLI::ValidationError("update", "nothing to change: give at "
                                             "least one field");
      return with_connection(*conn, [&](const connection& c) {
        return call_and_print(c, "PATCH", endpoint_path(*id), body);
      });
    });
  }

  {
    auto cmd = group->add_subcommand("rm", "delete an endpoint");
    auto conn = std::make_shared<connection_options>();
    auto id = std::make_shared<std::string>();
    cmd->add_option("id", *id, "endpoint id")->required();
    add_connection_options(cmd, *conn);
    on_parsed(cmd, st, [conn, id] {
      return with_connection(*conn, [&](const connection& c) {
        if (!call(c, "DELETE", endpoint_path(*id)))
          return 1;
        std::cout << "deleted " << *id << "\n";
        return 0;
      });
    });
  }

  {
    auto cmd = group->add_subcommand("rotate",
                                     "give an endpoint a new signing secret");
    auto conn = std::make_shared<connection_options>();
    auto id = std::make_shared<std::string>();
    auto secret = std::make_shared<std::string>();
    auto grace = std::make_shared<double>(0);
    cmd->add_option("id", *id, "endpoint id")->required();
    cmd->add_option("--secret", *secret,
                    "the new secret whsec_... (default: generated)");
    cmd->add_option("--grace", *grace,
                    "seconds the old secret keeps signing too (default: the "
                    "daemon's, 24 h)")
        ->check(CLI::NonNegativeNumber);
    add_connection_options(cmd, *conn);
    on_parsed(cmd, st, [cmd, conn, id, secret, grace] {
      json body = json::object();
      if (cmd->count("--secret"))
        body["secret"] = *secret;
      if (cmd->count("--grace")) {
        if (*grace == std::floor(*grace) && *grace < 1e15)
          body["grace"] = static_cast<std::int64_t>(*grace);
        else
          body["grace"] = *grace;
      }
      return with_connection(*conn, [&](const connection& c) {
        return call_and_print(c, "POST", endpoint_path(*id) + "/rotate-secret",
                              body, note_secret);
      });
    });
  }
}

// --- send --------------------------------------------------------------------

struct send_options {
  std::string source, file;
  std::string type, summary, agent, severity, idempotency_key;
  std::vector<std::string> details;
  bool raw = false;
};

void add_send(CLI::App& app, operator_cli::state& st) {
  auto cmd = app.add_subcommand(
      "send", "post an event (from flags, or JSON from stdin or a file)");
  auto conn = std::make_shared<connection_options>();
  auto o = std::make_shared<send_options>();
  auto source = cmd->add_option("source", o->source,
                                "'-' to read the JSON body from stdin")
                    ->check(CLI::IsMember({"-"}));
  auto file =
      cmd->add_option("--file", o->file, "read the JSON body from FILE");
  file->excludes(source);
  std::vector<CLI::Option*> flags{
      cmd->add_option("--type", o->type, "event type, e.g. policy.denied"),
      cmd->add_option("--summary", o->summary, "one line for humans"),
      cmd->add_option("--agent", o->agent, "agent id"),
      cmd->add_option("--severity", o->severity,
                      "critical, high, medium, low or info"),
      cmd->add_option("--detail", o->details,
                      "details field KEY=VALUE (repeatable)")
          ->check(key_value)
          ->allow_extra_args(false)};
  for (auto* flag : flags)
    flag->excludes(source)->excludes(file);
  cmd->add_option("--idempotency-key", o->idempotency_key,
                  "sent as the Idempotency-Key header");
  cmd->add_flag("--json", o->raw, "print the API's JSON answer");
  add_connection_options(cmd, *conn);

  on_parsed(cmd, st, [cmd, conn, o] {
    bool from_input = cmd->count("source") > 0 || cmd->count("--file") > 0;
    if (!from_input && (o->type.empty() || o->summary.empty()))
      throw CLI::ValidationError(
          "send",
          "give --type and --summary, or '-' or --file for a JSON body");
    std::string body;
    if (cmd->count("source") > 0) {
      body.assign(std::istreambuf_iterator<char>{std::cin}, {});
    } else if (cmd->count("--file") > 0) {
      std::ifstream in{o->file, std::ios::binary};
      if (!in) {
        fail("cannot read " + o->file);
        return 1;
      }
      body.assign(std::istreambuf_iterator<char>{in}, {});
    } else {
      json event{{"type", o->type}};
      if (cmd->count("--agent"))
        event["agent_id"] = o->agent;
      if (cmd->count("--severity"))
        event["severity"] = o->severity;
      event["summary"] = o->summary;
      if (cmd->count("--detail"))
        event["details"] = object_of(o->details);
      body = event.dump();
    }
    return with_connection(*conn, [&](const connection& c) {
      http_headers headers;
      if (cmd->count("--idempotency-key"))
        headers.emplace_back("Idempotency-Key", o->idempotency_key);
      // The body goes as is: the daemon validates it and says what is wrong.
      auto res = call_raw(c, "POST", "/v1/events", body, std::move(headers));
      if (!res)
        return 1;
      if (o->raw) {
        std::cout << res->body << "\n";
        return 0;
      }
      auto answer = answer_with_array(c, *res, "ids");
      if (!answer)
        return 1;
      for (auto& id : (*answer)["ids"])
        std::cout << (id.is_string() ? id.get<std::string>() : id.dump())
                  << "\n";
      // Said, not failed: the events are stored (one no endpoint took,
      // say, is delivered nowhere).
      if (auto w = answer->find("warnings");
          w != answer->end() && w->is_array())
        for (auto& warning : *w)
          if (auto m = warning.find("message");
              warning.is_object() && m != warning.end() && m->is_string())
            std::fprintf(stderr, "tocsin: warning: %s\n",
                         m->get<std::string>().c_str());
      return 0;
    });
  });
}

// --- dead letters ------------------------------------------------------------

void add_dead_letters(CLI::App& app, operator_cli::state& st) {
  auto group = app.add_subcommand("dead-letters",
                                  "list and replay dead letters (API client)");
  group->require_subcommand(1);

  {
    auto cmd = group->add_subcommand("list", "list dead letters, oldest first");
    auto conn = std::make_shared<connection_options>();
    auto limit = std::make_shared<unsigned>(0);
    auto after = std::make_shared<std::string>();
    auto raw = std::make_shared<bool>(false);
    cmd->add_option("--limit", *limit, "at most N (default: the daemon's, 100)")
        ->check(CLI::PositiveNumber);
    cmd->add_option("--after", *after, "start after this delivery id (paging)");
    cmd->add_flag("--json", *raw, "print the API's JSON answer");
    add_connection_options(cmd, *conn);
    on_parsed(cmd, st, [cmd, conn, limit, after, raw] {
      std::string query;
      if (cmd->count("--limit"))
        query += "limit=" + std::to_string(*limit);
      if (cmd->count("--after"))
        query += (query.empty() ? "" : "&") + std::string{"after="} +
                 percent_encode(*after);
      return with_connection(*conn, [&](const connection& c) {
        auto res = call(
            c, "GET", "/v1/dead-letters" + (query.empty() ? "" : "?" + query));
        if (!res)
          return 1;
        if (*raw) {
          std::cout << res->body << "\n";
          return 0;
        }
        auto answer = answer_with_array(c, *res, "dead_letters");
        if (!answer)
          return 1;
        if ((*answer)["dead_letters"].empty()) {
          std::fprintf(stderr, "no dead letters\n");
        } else {
          std::vector<std::vector<std::string>> rows{
              {"ID", "ENDPOINT", "EVENT", "REASON", "ATTEMPTS", "FINISHED_AT"}};
          for (auto& d : (*answer)["dead_letters"])
            rows.push_back({cell(d, "id"), cell(d, "endpoint_id"),
                            cell(d, "event_id"), cell(d, "reason"),
                            std::to_string(d.contains("attempts") &&
                                                   d["attempts"].is_array()
                                               ? d["attempts"].size()
                                               : 0),
                            cell(d, "finished_at")});
          print_table(rows);
        }
        if (answer->contains("next_after") &&
            (*answer)["next_after"].is_string())
          std::fprintf(stderr, "more: tocsin dead-letters list --after %s\n",
                       (*answer)["next_after"].get<std::string>().c_str());
        return 0;
      });
    });
  }

  {
    auto cmd = group->add_subcommand(
        "replay", "put one dead letter, or an endpoint's, back in the queue");
    auto conn = std::make_shared<connection_options>();
    auto id = std::make_shared<std::string>();
    auto endpoint = std::make_shared<std::string>();
    auto since = std::make_shared<std::string>();
    auto id_opt = cmd->add_option("id", *id, "dead letter (delivery) id");
    auto ep_opt = cmd->add_option("--endpoint", *endpoint,
                                  "replay this endpoint's dead letters");
    cmd->add_option("--since", *since,
                    "with --endpoint: only those that died at or after this "
                    "RFC 3339 time")
        ->needs(ep_opt);
    ep_opt->excludes(id_opt);
    on_parsed(cmd, st, [cmd, conn, id, endpoint, since] {
      if (cmd->count("id") == 0 && cmd->count("--endpoint") == 0)
        throw CLI::ValidationError("replay",
                                   "give a dead letter id or --endpoint");
      std::string target =
          cmd->count("id") > 0
              ? "/v1/dead-letters/" + percent_encode(*id) + "/replay"
              : endpoint_path(*endpoint) + "/replay";
      if (cmd->count("--since"))
        target += "?since=" + percent_encode(*since);
      return with_connection(*conn, [&](const connection& c) {
        auto res = call(c, "POST", target);
        if (!res)
          return 1;
        auto answer = parse_answer(res->body);
        if (!answer.is_object() || !answer.contains("replayed")) {
          fail("unexpected answer from " + c.client.server());
          return 1;
        }
        std::cout << "replayed " << answer["replayed"].dump() << "\n";
        if (answer.value("limit_reached", false))
          std::fprintf(stderr, "limit reached: run it again for the rest\n");
        return 0;
      });
    });
    add_connection_options(cmd, *conn);
  }
}

// --- events ------------------------------------------------------------------

/// `s` as one word a shell reads back as it is (for a command to copy).
std::string shell_word(const std::string& s) {
  bool plain = !s.empty();
  for (unsigned char ch : s)
    plain = plain && ch != 0 &&
            (std::isalnum(ch) || std::strchr("._:+-/@,=", ch) != nullptr);
  if (plain)
    return s;
  std::string out = "'";
  for (char ch : s)
    out += ch == '\'' ? std::string{"'\\''"} : std::string(1, ch);
  return out + "'";
}

struct event_list_flags {
  std::string state, type, severity, agent_id, since, until, cursor;
  unsigned limit = 0;
  bool raw = false;
};

void add_events(CLI::App& app, operator_cli::state& st) {
  auto group = app.add_subcommand(
      "events", "show, acknowledge and resolve events (API client)");
  group->require_subcommand(1);
  {
    auto cmd = group->add_subcommand(
        "get", "the event with its state and its deliveries' attempts");
    auto conn = std::make_shared<connection_options>();
    auto id = std::make_shared<std::string>();
    cmd->add_option("id", *id, "event id (evt_...)")->required();
    add_connection_options(cmd, *conn);
    on_parsed(cmd, st, [conn, id] {
      return with_connection(*conn, [&](const connection& c) {
        return call_and_print(c, "GET", "/v1/events/" + percent_encode(*id));
      });
    });
  }
  {
    auto cmd = group->add_subcommand(
        "list", "list events, newest first, with their states (filters as "
                "GET /v1/events takes them)");
    auto conn = std::make_shared<connection_options>();
    auto f = std::make_shared<event_list_flags>();
    cmd->add_option("--state", f->state, "open, acknowledged or resolved")
        ->check(CLI::IsMember({"open", "acknowledged", "resolved"}));
    cmd->add_option("--type", f->type, "event type, e.g. policy.denied");
    cmd->add_option("--severity", f->severity,
                    "critical, high, medium, low or info");
    cmd->add_option("--agent-id", f->agent_id, "one agent's events");
    cmd->add_option("--since", f->since,
                    "accepted at or after this RFC 3339 time");
    cmd->add_option("--until", f->until, "accepted before this RFC 3339 time");
    cmd->add_option("--limit", f->limit,
                    "at most N, up to 500 (default: the daemon's, 50)")
        ->check(CLI::PositiveNumber);
    cmd->add_option("--cursor", f->cursor,
                    "continue where a page ended (its next_cursor)");
    cmd->add_flag("--json", f->raw, "print the API's JSON answer");
    add_connection_options(cmd, *conn);
    on_parsed(cmd, st, [cmd, conn, f] {
      // The query, and the same flags again for the hint to the next page.
      std::string query, flags;
      auto add = [&](const char* flag, const char* param,
                     const std::string& value) {
        if (cmd->count(flag) == 0)
          return;
        query += (query.empty() ? "" : "&") + std::string{param} + "=" +
                 percent_encode(value);
        if (std::string_view{flag} != "--cursor")
          flags += " " + std::string{flag} + " " + shell_word(value);
      };
      add("--state", "state", f->state);
      add("--type", "type", f->type);
      add("--severity", "severity", f->severity);
      add("--agent-id", "agent_id", f->agent_id);
      add("--since", "since", f->since);
      add("--until", "until", f->until);
      add("--limit", "limit", std::to_string(f->limit));
      add("--cursor", "cursor", f->cursor);
      return with_connection(*conn, [&](const connection& c) {
        auto res =
            call(c, "GET", "/v1/events" + (query.empty() ? "" : "?" + query));
        if (!res)
          return 1;
        if (f->raw) {
          std::cout << res->body << "\n";
          return 0;
        }
        auto answer = answer_with_array(c, *res, "events");
        if (!answer)
          return 1;
        if ((*answer)["events"].empty()) {
          std::fprintf(stderr, "no events\n");
        } else {
          std::vector<std::vector<std::string>> rows{
              {"ID", "ACCEPTED_AT", "SEVERITY", "TYPE", "AGENT", "STATE",
               "SUMMARY"}};
          for (auto& e : (*answer)["events"]) {
            auto state = cell(e, "state");
            // Who answered it, beside the state.
            if (e.contains(state) && e[state].is_object())
              state += " by " + cell(e[state], "by");
            auto summary = cell(e, "summary");
            if (summary.size() > 80)
              summary = summary.substr(0, 77) + "...";
            rows.push_back({cell(e, "id"), cell(e, "accepted_at"),
                            cell(e, "severity"), cell(e, "type"),
                            cell(e, "agent_id"), state, summary});
          }
          print_table(rows);
        }
        if (answer->contains("next_cursor") &&
            (*answer)["next_cursor"].is_string())
          std::fprintf(stderr, "more: tocsin events list%s --cursor %s\n",
                       flags.c_str(),
                       (*answer)["next_cursor"].get<std::string>().c_str());
        return 0;
      });
    });
  }
  // ack and resolve: the same call on two routes.
  for (auto [name, route, help] :
       {std::tuple{"ack", "ack",
                   "acknowledge an event: PagerDuty incidents it opened are "
                   "acknowledged, Slack is told"},
        std::tuple{"resolve", "resolve",
                   "resolve an event: PagerDuty incidents it opened are "
                   "resolved, Slack is told"}}) {
    auto cmd = group->add_subcommand(name, help);
    auto conn = std::make_shared<connection_options>();
    auto id = std::make_shared<std::string>();
    auto by = std::make_shared<std::string>();
    auto note = std::make_shared<std::string>();
    cmd->add_option("id", *id, "event id (evt_...)")->required();
    cmd->add_option("--by", *by, "who (default: the token's name)");
    cmd->add_option("--note", *note, "a note kept with the answer");
    add_connection_options(cmd, *conn);
    std::string verb = route;
    on_parsed(cmd, st, [cmd, conn, id, by, note, verb] {
      json body = json::object();
      if (cmd->count("--by"))
        body["by"] = *by;
      if (cmd->count("--note"))
        body["note"] = *note;
      return with_connection(*conn, [&](const connection& c) {
        auto res = call(c, "POST",
                        "/v1/events/" + percent_encode(*id) + "/" + verb, body);
        if (!res)
          return 1;
        auto answer = parse_answer(res->body);
        if (!answer.is_object() || !answer.contains("state")) {
          fail("unexpected answer from " + c.client.server());
          return 1;
        }
        auto state = answer["state"].get<std::string>();
        if (answer.value("changed", false))
          std::cout << *id << " " << state << "\n";
        else
          std::cout << *id << " was " << state << " already: nothing changed\n";
        return 0;
      });
    });
  }
}

/// `tocsin secret new [--ed25519]`: a signing secret for an endpoint of the
/// config file or of `endpoints add --secret`, made here from the OpenSSL
/// CSPRNG as the daemon makes them (no daemon needed).
void add_secret(CLI::App& app, operator_cli::state& st) {
  auto group = app.add_subcommand("secret", "make signing secrets");
  group->require_subcommand(1);
  auto cmd = group->add_subcommand(
      "new", "print a new whsec_ secret (HMAC-SHA256), or with --ed25519 a "
             "whsk_ secret key and its whpk_ public key");
  auto ed25519 = std::make_shared<bool>(false);
  cmd->add_flag("--ed25519", *ed25519,
                "an Ed25519 key pair (v1a signatures) instead");
  on_parsed(cmd, st, [ed25519] {
    if (!*ed25519) {
      std::cout << delivery::generate_webhook_secret() << "\n";
      return 0;
    }
    auto pair = delivery::generate_ed25519_keypair();
    std::cout << pair.secret_key << "\n";
    std::fprintf(stderr, "public key (give it to the receiver): %s\n",
                 pair.public_key.c_str());
    return 0;
  });
}

} // namespace

operator_cli::operator_cli(CLI::App& app) : state_(std::make_unique<state>()) {
  state_->root = &app;
  add_endpoints(app, *state_);
  add_send(app, *state_);
  add_dead_letters(app, *state_);
  add_events(app, *state_);
  add_secret(app, *state_);
}

operator_cli::~operator_cli() = default;

std::optional<int> operator_cli::run() {
  if (!state_->action)
    return std::nullopt;
  try {
    return state_->action();
  } catch (const CLI::ParseError& e) {
    // A usage error the parser could not see (e.g. a missing alternative).
    state_->root->exit(e);
    return 2;
  }
}

} // namespace tocsin::cli
