// The operator CLI (tocsin endpoints|send|dead-letters) as a user runs it: the
// real binary as a child process against a real daemon, or against a plain
// HTTP receiver that records exactly what the CLI sent.
#include "tests/e2e/fixture.hpp"
#include "tests/support/run_command.hpp"

#include <boost/test/unit_test.hpp>

#include <atomic>
#include <fstream>
#include <thread>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

using namespace tocsin::test;
using nlohmann::json;

namespace {

/// Runs `tocsin args...` with stdin, stdout and stderr on pipes. The test's
/// own TOCSIN_SERVER / TOCSIN_TOKEN are not passed on.
command_result run_cli(const std::vector<std::string>& args,
                       command_options call = {}) {
  std::vector<std::string> argv{TOCSIN_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  call.unset.insert(call.unset.end(), {"TOCSIN_SERVER", "TOCSIN_TOKEN"});
  auto r = run_command(argv, call);
  BOOST_TEST(!r.timed_out, "tocsin did not finish within 30 s");
  return r;
}

std::string server_of(daemon_fixture& f) {
  return "http://127.0.0.1:" + std::to_string(f.api_port());
}

/// --server and --config (for the token) of the fixture's daemon.
std::vector<std::string> with_daemon(daemon_fixture& f,
                                     std::vector<std::string> args) {
  args.insert(args.end(), {"--server", server_of(f), "--config",
                           (f.dir() / "tocsin.toml").string()});
  return args;
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < text.size()) {
    auto nl = text.find('\n', start);
    out.push_back(text.substr(start, nl - start));
    if (nl == std::string::npos)
      break;
    start = nl + 1;
  }
  return out;
}

/// A loopback port with nothing listening on it.
std::uint16_t closed_port() {
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(s, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(s);
  return ntohs(addr.sin_port);
}

/// Answers one connection with `response` (raw bytes), then closes it.
class one_shot_server {
public:
  explicit one_shot_server(std::string response) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    BOOST_REQUIRE(
        ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    BOOST_REQUIRE(::listen(fd_, 1) == 0);
    socklen_t len = sizeof(addr);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread{[this, response = std::move(response)] {
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0)
        return;
      std::string req;
      char buf[4096];
      // The request head and its body (the CLI sends Content-Length).
      for (;;) {
        auto end = req.find("\r\n\r\n");
        if (end != std::string::npos) {
          auto cl = req.find("Content-Length: ");
          std::size_t body =
              cl == std::string::npos ? 0 : std::stoul(req.substr(cl + 16));
          if (req.size() >= end + 4 + body)
            break;
        }
        auto n = ::read(c, buf, sizeof(buf));
        if (n <= 0)
          break;
        req.append(buf, n);
      }
      request_ = req;
      for (std::size_t sent = 0; sent < response.size();) {
        auto n = ::write(c, response.data() + sent, response.size() - sent);
        if (n <= 0)
          break;
        sent += n;
      }
      ::close(c);
    }};
  }
  ~one_shot_server() {
    ::shutdown(fd_, SHUT_RDWR); // wakes accept() if nobody came
    if (thread_.joinable())
      thread_.join();
    ::close(fd_);
  }
  std::string server() const {
    return "http://127.0.0.1:" + std::to_string(port_);
  }
  /// The request received; waits until it has been answered.
  const std::string& request() {
    if (thread_.joinable())
      thread_.join();
    return request_;
  }

private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::thread thread_;
  std::string request_;
};

canned_response json_answer(int status, json body) {
  canned_response r;
  r.status = status;
  r.body = status == 204 ? "" : body.dump();
  r.headers = {{"content-type", "application/json"}};
  return r;
}

} // namespace

BOOST_AUTO_TEST_SUITE(cli)

BOOST_AUTO_TEST_CASE(send_with_flags_posts_an_event_that_is_delivered) {
  daemon_fixture f;
  auto receiver = f.make_receiver();
  f.start({{"ops", daemon_fixture::url_of(*receiver)}});
  auto r = run_cli(with_daemon(
      f, {"send", "--type", "policy.denied", "--agent", "agent-7", "--summary",
          "agent-7 tried file.delete on /etc", "--severity", "critical",
          "--detail", "action=file.delete", "--detail", "rule=block-delete"}));
  BOOST_REQUIRE_MESSAGE(r.code == 0, r);
  auto ids = lines(r.out);
  BOOST_REQUIRE_EQUAL(ids.size(), 1u);
  BOOST_TEST(ids[0].rfind("evt_", 0) == 0u, r.out);
  BOOST_TEST(!contains(r.out + r.err, f.admin_token()));
  BOOST_TEST(r.err.empty(), r); // delivered somewhere: nothing to say

  BOOST_REQUIRE(receiver->wait_for(1, std::chrono::seconds{10}));
  auto req = receiver->requests().at(0);
  BOOST_TEST(req.signature_valid);
  BOOST_TEST(req.headers["webhook-id"] == ids[0]);
  auto body = json::parse(req.body);
  BOOST_TEST(body["type"] == "policy.denied");
  BOOST_TEST(body["agent_id"] == "agent-7");
  BOOST_TEST(body["severity"] == "critical");
  BOOST_TEST(body["summary"] == "agent-7 tried file.delete on /etc");
  BOOST_TEST(body["details"]["action"] == "file.delete");
  BOOST_TEST(body["details"]["rule"] == "block-delete");
}

BOOST_AUTO_TEST_CASE(events_are_acknowledged_resolved_and_shown) {
  daemon_fixture f;
  auto receiver = f.make_receiver();
  f.start({{"ops", daemon_fixture::url_of(*receiver)}});
  auto id = f.post_events(sample_event()).at(0);
  auto ack = run_cli(with_daemon(f, {"events", "ack", id, "--note", "mine"}));
  BOOST_REQUIRE_MESSAGE(ack.code == 0, ack);
  BOOST_TEST(ack.out == id + " acknowledged\n", ack);
  auto again = run_cli(with_daemon(f, {"events", "ack", id}));
  BOOST_REQUIRE_MESSAGE(again.code == 0, again);
  BOOST_TEST(contains(again.out, "nothing changed"), again);
  auto resolve =
      run_cli(with_daemon(f, {"events", "resolve", id, "--by", "bob"}));
  BOOST_REQUIRE_MESSAGE(resolve.code == 0, resolve);
  BOOST_TEST(resolve.out == id + " resolved\n", resolve);
  auto got = run_cli(with_daemon(f, {"events", "get", id}));
  BOOST_REQUIRE_MESSAGE(got.code == 0, got);
  auto shown = json::parse(got.out, nullptr, false);
  BOOST_REQUIRE_MESSAGE(shown.is_object(), got.out);
  BOOST_TEST(shown["state"] == "resolved");
  BOOST_TEST(shown["acknowledged"]["note"] == "mine");
  BOOST_TEST(shown["acknowledged"]["source"] == "api");
  BOOST_TEST(shown["resolved"]["by"] == "bob");
  // An unknown event: exit 1 with the server's message.
  auto unknown = run_cli(
      with_daemon(f, {"events", "ack", "evt_01JD0000000000000000000000"}));
  BOOST_TEST(unknown.code == 1, unknown);
  BOOST_TEST(contains(unknown.err, "not_found"), unknown);
}

BOOST_AUTO_TEST_CASE(events_are_listed_with_filters_and_pages) {
  daemon_fixture f;
  f.start({});
  auto critical = sample_event("agent-x");
  critical["severity"] = "critical";
  critical["summary"] = "agent-x tried to exfiltrate credentials";
  auto high = sample_event("agent-y");
  auto ids = f.post_events(json{{"events", {critical, high, critical}}});
  BOOST_REQUIRE_EQUAL(ids.size(), 3u);
  auto ack =
      run_cli(with_daemon(f, {"events", "ack", ids[2], "--by", "carol"}));
  BOOST_REQUIRE_MESSAGE(ack.code == 0, ack);

  // What needs attention: the open critical one, as a table.
  auto open = run_cli(with_daemon(
      f, {"events", "list", "--state", "open", "--severity", "critical"}));
  BOOST_REQUIRE_MESSAGE(open.code == 0, open);
  auto rows = lines(open.out);
  BOOST_REQUIRE_MESSAGE(rows.size() == 2u, open);
  for (auto* column :
       {"ID", "ACCEPTED_AT", "SEVERITY", "TYPE", "AGENT", "STATE", "SUMMARY"})
    BOOST_TEST(contains(rows[0], column), open);
  BOOST_TEST(rows[1].rfind(ids[0] + " ", 0) == 0u, open);
  for (auto* part : {"critical", "policy.denied", "agent-x", "open",
                     "agent-x tried to exfiltrate credentials"})
    BOOST_TEST(contains(rows[1], part), part << ": " << open);
  BOOST_TEST(!contains(open.err, "more"), open);
  BOOST_TEST(!contains(open.out + open.err, f.admin_token()));

  // The acknowledged one says by whom.
  auto acked =
      run_cli(with_daemon(f, {"events", "list", "--state", "acknowledged"}));
  BOOST_REQUIRE_MESSAGE(acked.code == 0, acked);
  BOOST_REQUIRE_MESSAGE(lines(acked.out).size() == 2u, acked);
  BOOST_TEST(contains(lines(acked.out)[1], ids[2]), acked);
  BOOST_TEST(contains(lines(acked.out)[1], "acknowledged by carol"), acked);

  // Pages: newest first, and the command for the next page on stderr.
  auto first = run_cli(with_daemon(f, {"events", "list", "--limit", "2"}));
  BOOST_REQUIRE_MESSAGE(first.code == 0, first);
  BOOST_REQUIRE_MESSAGE(lines(first.out).size() == 3u, first);
  BOOST_TEST(lines(first.out)[1].rfind(ids[2] + " ", 0) == 0u, first);
  BOOST_TEST(lines(first.out)[2].rfind(ids[1] + " ", 0) == 0u, first);
  auto hint = std::string{"more: tocsin events list --limit 2 --cursor "};
  BOOST_REQUIRE_MESSAGE(first.err.rfind(hint, 0) == 0u, first);
  auto cursor = lines(first.err)[0].substr(hint.size());
  auto second = run_cli(
      with_daemon(f, {"events", "list", "--limit", "2", "--cursor", cursor}));
  BOOST_REQUIRE_MESSAGE(second.code == 0, second);
  BOOST_REQUIRE_MESSAGE(lines(second.out).size() == 2u, second);
  BOOST_TEST(lines(second.out)[1].rfind(ids[0] + " ", 0) == 0u, second);
  BOOST_TEST(second.err.empty(), second);

  // The API's answer as it is; nothing: said on stderr.
  auto raw = run_cli(
      with_daemon(f, {"events", "list", "--agent-id", "agent-y", "--json"}));
  BOOST_REQUIRE_MESSAGE(raw.code == 0, raw);
  auto answer = json::parse(raw.out, nullptr, false);
  BOOST_REQUIRE_MESSAGE(answer.is_object(), raw);
  BOOST_REQUIRE_EQUAL(answer["events"].size(), 1u);
  BOOST_TEST(answer["events"][0]["id"] == ids[1]);
  BOOST_TEST(answer["next_cursor"].is_null());
  auto none = run_cli(with_daemon(
      f, {"events", "list", "--type", "system.health", "--since",
          "2000-01-01T00:00:00Z", "--until", "2999-01-01T00:00:00Z"}));
  BOOST_REQUIRE_MESSAGE(none.code == 0, none);
  BOOST_TEST(none.out.empty(), none);
  BOOST_TEST(none.err == "no events\n", none);

  // The daemon's refusals and the CLI's own.
  auto over = run_cli(with_daemon(f, {"events", "list", "--limit", "501"}));
  BOOST_TEST(over.code == 1, over);
  BOOST_TEST(contains(over.err, "field limit"), over);
  auto bad = run_cli(with_daemon(f, {"events", "list", "--state", "closed"}));
  BOOST_TEST(bad.code == 2, bad);
}

BOOST_AUTO_TEST_CASE(send_posts_json_from_stdin_or_a_file_as_is) {
  daemon_fixture f;
  auto receiver = f.make_receiver();
  f.start({{"ops", daemon_fixture::url_of(*receiver)}});
  // Server and token from the environment.
  command_options call{
      .input = json{{"events", {sample_event("a"), sample_event("b")}}}.dump(),
      .env = {"TOCSIN_SERVER=" + server_of(f),
              "TOCSIN_TOKEN=" + f.admin_token()}};
  auto r = run_cli({"send", "-", "--idempotency-key", "batch-1"}, call);
  BOOST_REQUIRE_MESSAGE(r.code == 0, r);
  auto ids = lines(r.out);
  BOOST_REQUIRE_EQUAL(ids.size(), 2u);
  // The same key again: the first ids, nothing new delivered.
  auto again = run_cli({"send", "-", "--idempotency-key", "batch-1"}, call);
  BOOST_REQUIRE_MESSAGE(again.code == 0, again);
  BOOST_TEST(lines(again.out) == ids);

  // From a file, the raw answer; the token from ./data/admin.token.
  auto file = f.dir() / "event.json";
  std::ofstream{file} << sample_event("c").dump();
  auto raw =
      run_cli({"send", "--file", file.string(), "--json"},
              {.env = {"TOCSIN_SERVER=" + server_of(f)}, .cwd = f.dir()});
  BOOST_REQUIRE_MESSAGE(raw.code == 0, raw);
  auto answer = json::parse(raw.out);
  BOOST_REQUIRE_EQUAL(answer["ids"].size(), 1u);
  BOOST_REQUIRE(receiver->wait_for(3, std::chrono::seconds{10}));
  std::this_thread::sleep_for(std::chrono::milliseconds{200});
  BOOST_TEST(receiver->count() == 3u);
}

BOOST_AUTO_TEST_CASE(a_bad_event_exits_1_with_the_servers_message) {
  daemon_fixture f;
  f.start({});
  auto r =
      run_cli(with_daemon(f, {"send", "--type", "policy.denied", "--agent", "a",
                              "--summary", "s", "--severity", "urgent"}));
  BOOST_TEST(r.code == 1, r);
  BOOST_TEST(r.out.empty(), r);
  BOOST_TEST(r.err == "tocsin: severity must be one of critical, high, "
                      "medium, low, info (invalid_field, field severity)\n",
             r);
  // A good event that no endpoint takes (there are none): stored, its id
  // printed, and a warning says it goes nowhere.
  auto nowhere = run_cli(with_daemon(f, {"send", "--type", "policy.denied",
                                         "--agent", "a", "--summary", "s"}));
  BOOST_TEST(nowhere.code == 0, nowhere);
  auto id = nowhere.out.substr(0, nowhere.out.find('\n'));
  BOOST_TEST(id.rfind("evt_", 0) == 0u, nowhere);
  BOOST_TEST(nowhere.err == "tocsin: warning: event " + id +
                                " matched no endpoint: it is stored and "
                                "delivered nowhere\n",
             nowhere);
  auto not_json =
      run_cli(with_daemon(f, {"send", "-"}), {.input = "{not json"});
  BOOST_TEST(not_json.code == 1, not_json);
  BOOST_TEST(contains(not_json.err, "(invalid_json)"), not_json);
  auto dead = json::parse(f.get("/v1/dead-letters", f.admin_token()).body);
  BOOST_TEST(dead["dead_letters"].empty());
}

BOOST_AUTO_TEST_CASE(a_wrong_token_exits_1_with_the_401_message) {
  daemon_fixture f;
  f.start({});
  const std::string wrong = "tsn_0123456789abcdef";
  for (auto args : {std::vector<std::string>{"send", "--type", "policy.denied",
                                             "--agent", "a", "--summary", "s"},
                    std::vector<std::string>{"dead-letters", "list"},
                    std::vector<std::string>{"endpoints", "list"}}) {
    args.insert(args.end(), {"--server", server_of(f), "--token", wrong});
    auto r = run_cli(args);
    BOOST_TEST(r.code == 1, r);
    BOOST_TEST(
        r.err == "tocsin: missing or invalid bearer token (unauthorized)\n", r);
    BOOST_TEST(!contains(r.out + r.err, wrong));
  }
}

BOOST_AUTO_TEST_CASE(no_daemon_running_exits_1_cannot_connect) {
  auto server = "http://127.0.0.1:" + std::to_string(closed_port());
  for (auto args : {std::vector<std::string>{"send", "--type", "policy.denied",
                                             "--summary", "s"},
                    std::vector<std::string>{"dead-letters", "list"},
                    std::vector<std::string>{"endpoints", "get", "ep"}}) {
    args.insert(args.end(), {"--server", server, "--token", "t"});
    auto r = run_cli(args);
    BOOST_TEST(r.code == 1, r);
    BOOST_TEST(r.err == "tocsin: cannot connect to " + server +
                            ": Connection refused\n",
               r);
  }
  // No token anywhere: said before anything is sent.
  temp_dir empty;
  auto r = run_cli({"dead-letters", "list", "--server", server},
                   {.cwd = empty.path()});
  BOOST_TEST(r.code == 1, r);
  BOOST_TEST(contains(r.err, "no token"), r);
  BOOST_TEST(contains(r.err, "admin.token"), r);
}

BOOST_AUTO_TEST_CASE(usage_errors_exit_2) {
  auto server = "http://127.0.0.1:" + std::to_string(closed_port());
  for (auto args : {
           std::vector<std::string>{"endpoints"},
           std::vector<std::string>{"endpoints", "add"},
           std::vector<std::string>{"endpoints", "add", "--url"},
           std::vector<std::string>{"endpoints", "update", "ep"},
           std::vector<std::string>{"endpoints", "update", "ep", "--enable",
                                    "--disable"},
           std::vector<std::string>{"endpoints", "add", "--url", "https://x/",
                                    "--signature", "md5"},
           std::vector<std::string>{"endpoints", "add", "--url", "https://x/",
                                    "--option", "novalue"},
           std::vector<std::string>{"send"},
           std::vector<std::string>{"send", "--type", "policy.denied"},
           std::vector<std::string>{"send", "-", "--type", "policy.denied"},
           std::vector<std::string>{"send", "--detail", "x"},
           std::vector<std::string>{"dead-letters", "replay"},
           std::vector<std::string>{"dead-letters", "replay", "dlv_1",
                                    "--endpoint", "ep"},
           std::vector<std::string>{"dead-letters", "replay", "--since",
                                    "2020-01-01T00:00:00Z"},
           std::vector<std::string>{"dead-letters", "list", "--limit", "x"},
       }) {
    args.insert(args.end(), {"--server", server, "--token", "t"});
    auto r = run_cli(args);
    BOOST_TEST(r.code == 2, args[0] << " " << args[1] << ": " << r);
    BOOST_TEST(!contains(r.err, "cannot connect"), r);
  }
  auto help = run_cli({"endpoints", "add", "--help"});
  BOOST_TEST(help.code == 0, help);
  BOOST_TEST(contains(help.out, "--event-type"), help);
}

BOOST_AUTO_TEST_CASE(version_check_config_and_an_unknown_command) {
  auto v = run_cli({"--version"});
  BOOST_TEST(v.code == 0, v);
  BOOST_TEST(v.out.rfind("tocsin ", 0) == 0u, v);
  auto bogus = run_cli({"bogus"});
  BOOST_TEST(bogus.code == 2, bogus);
  BOOST_TEST(contains(bogus.err, "unknown command 'bogus'"), bogus);
  BOOST_TEST(contains(bogus.err, "serve"), bogus);

  // --check-config: what serve would refuse, with its one-line reason; the
  // plugins are loaded, so an endpoint of a transport there is none of is
  // caught (the config's own parse cannot know).
  temp_dir dir;
  auto write = [&](const std::string& name, const std::string& text) {
    auto path = dir.path() / name;
    std::ofstream{path} << text;
    return path.string();
  };
  auto data = dir.path() / "data";
  auto good = write("good.toml", "[server]\ndata_dir = \"" + data.string() +
                                     "\"\n[delivery]\nconcurrency = \"fixed\"\n"
                                     "[[endpoints]]\nid = \"ops\"\n"
                                     "url = \"https://hooks.example/in\"\n"
                                     "transport = \"slack\"\n");
  auto ok = run_cli({"serve", "--check-config", good});
  BOOST_TEST(ok.code == 0, ok);
  BOOST_TEST(contains(ok.out, "is valid: 1 endpoints"), ok);
  auto bad_key = write("bad_key.toml", "[delivery]\nconcurrency = \"auto\"\n");
  auto r = run_cli({"serve", "--check-config", bad_key});
  BOOST_TEST(r.code == 1, r);
  BOOST_TEST(contains(r.err, "delivery.concurrency"), r);
  auto bad_transport =
      write("bad_transport.toml", "[[endpoints]]\nid = \"t\"\n"
                                  "url = \"https://hooks.example/in\"\n"
                                  "transport = \"teams\"\n");
  r = run_cli({"serve", "--check-config", bad_transport});
  BOOST_TEST(r.code == 1, r);
  BOOST_TEST(contains(r.err, "endpoint t: unknown transport 'teams'"), r);
  // What the transport asks of an endpoint: a webhook signs, so it needs a
  // secret (serve refuses the file without one).
  auto no_secret =
      write("no_secret.toml", "[[endpoints]]\nid = \"s\"\n"
                              "url = \"https://hooks.example/in\"\n");
  r = run_cli({"serve", "--check-config", no_secret});
  BOOST_TEST(r.code == 1, r);
  BOOST_TEST(contains(r.err, "endpoint s: a secret is required"), r);
  // Endpoints the SSRF guard would refuse (delivery.allow_networks is
  // empty): said, by IP and by name, but not refused (see docs/api.md); a
  // name that does not resolve is said too.
  auto guarded =
      write("guarded.toml", "[[endpoints]]\nid = \"by-ip\"\n"
                            "url = \"https://127.0.0.1:9/in\"\n"
                            "secret = \"" +
                                std::string{test_secret} +
                                "\"\n"
                                "[[endpoints]]\nid = \"by-name\"\n"
                                "url = \"https://localhost:9/in\"\n"
                                "secret = \"" +
                                std::string{test_secret} +
                                "\"\n"
                                "[[endpoints]]\nid = \"far\"\n"
                                "url = \"https://hooks.invalid/in\"\n"
                                "transport = \"slack\"\n");
  r = run_cli({"serve", "--check-config", guarded});
  BOOST_TEST(r.code == 0, r);
  BOOST_TEST(contains(r.err, "warning: endpoint by-ip: deliveries to its URL "
                             "will be refused: 127.0.0.1 is loopback"),
             r);
  BOOST_TEST(contains(r.err, "warning: endpoint by-name: deliveries to its "
                             "URL will be refused: localhost resolves only"),
             r);
  BOOST_TEST(count_of(r.err, "delivery.allow_networks") == 2u, r);
  BOOST_TEST(contains(r.err, "warning: endpoint far: hooks.invalid does not "
                             "resolve now"),
             r);
  // Nothing was started: the data directory was not even created.
  BOOST_TEST(!std::filesystem::exists(data));
}

BOOST_AUTO_TEST_CASE(dead_letters_are_listed_and_replayed) {
  daemon_fixture f;
  std::atomic<bool> healthy{false};
  auto receiver = f.make_receiver([&](const received_request&, std::size_t) {
    canned_response r;
    if (!healthy) {
      r.status = 400;
      r.body = "no";
    }
    return r;
  });
  f.start({{"ops", daemon_fixture::url_of(*receiver)}});
  auto ids =
      f.post_events(json{{"events", {sample_event("a"), sample_event("b")}}});
  std::vector<std::string> dead;
  for (auto& id : ids) {
    auto ev = f.wait_finished(id);
    BOOST_REQUIRE(ev["deliveries"][0]["state"] == "dead_lettered");
    dead.push_back(ev["deliveries"][0]["id"]);
  }

  auto list = run_cli(with_daemon(f, {"dead-letters", "list"}));
  BOOST_REQUIRE_MESSAGE(list.code == 0, list);
  auto rows = lines(list.out);
  BOOST_REQUIRE_EQUAL(rows.size(), 3u);
  BOOST_TEST(rows[0].rfind("ID", 0) == 0u);
  for (auto col : {"ENDPOINT", "EVENT", "REASON", "ATTEMPTS", "FINISHED_AT"})
    BOOST_TEST(contains(rows[0], col), rows[0]);
  for (int i = 0; i < 2; ++i) {
    auto& row = rows[i + 1];
    BOOST_TEST(row.rfind(dead[i], 0) == 0u, row);
    BOOST_TEST(contains(row, " ops "), row);
    BOOST_TEST(contains(row, ids[i]), row);
    BOOST_TEST(contains(row, "rejected_http_400"), row);
    BOOST_TEST(contains(row, " 1 "), row);
  }
  auto raw = run_cli(with_daemon(f, {"dead-letters", "list", "--json"}));
  BOOST_REQUIRE_MESSAGE(raw.code == 0, raw);
  BOOST_TEST(json::parse(raw.out)["dead_letters"].size() == 2u);
  // Paging.
  auto page = run_cli(with_daemon(f, {"dead-letters", "list", "--limit", "1"}));
  BOOST_REQUIRE_MESSAGE(page.code == 0, page);
  BOOST_TEST(lines(page.out).size() == 2u, page);
  BOOST_TEST(contains(page.err, "--after " + dead[0]), page);
  auto next = run_cli(with_daemon(
      f, {"dead-letters", "list", "--limit", "1", "--after", dead[0]}));
  BOOST_REQUIRE_MESSAGE(next.code == 0, next);
  BOOST_TEST(lines(next.out).size() == 2u, next);
  BOOST_TEST(lines(next.out).back().rfind(dead[1], 0) == 0u, next);

  healthy = true;
  auto one = run_cli(with_daemon(f, {"dead-letters", "replay", dead[0]}));
  BOOST_TEST(one.code == 0, one);
  BOOST_TEST(one.out == "replayed 1\n", one);
  BOOST_TEST(f.wait_finished(ids[0])["deliveries"][0]["state"] == "delivered");
  // Not a dead letter any more: the API's 409, exit 1.
  auto again = run_cli(with_daemon(f, {"dead-letters", "replay", dead[0]}));
  BOOST_TEST(again.code == 1, again);
  BOOST_TEST(again.err.rfind("tocsin: ", 0) == 0u, again);
  BOOST_TEST(again.out.empty(), again);

  // In bulk, with an offset in --since ('+' must be percent-encoded).
  auto bad_since = run_cli(with_daemon(
      f, {"dead-letters", "replay", "--endpoint", "ops", "--since", "today"}));
  BOOST_TEST(bad_since.code == 1, bad_since);
  BOOST_TEST(contains(bad_since.err, "(invalid_field, field since)"),
             bad_since);
  auto future =
      run_cli(with_daemon(f, {"dead-letters", "replay", "--endpoint", "ops",
                              "--since", "2999-01-01T00:00:00+01:00"}));
  BOOST_TEST(future.out == "replayed 0\n", future);
  auto bulk =
      run_cli(with_daemon(f, {"dead-letters", "replay", "--endpoint", "ops",
                              "--since", "2020-01-01T00:00:00+01:00"}));
  BOOST_TEST(bulk.code == 0, bulk);
  BOOST_TEST(bulk.out == "replayed 1\n", bulk);
  BOOST_TEST(f.wait_finished(ids[1])["deliveries"][0]["state"] == "delivered");
  auto none = run_cli(with_daemon(f, {"dead-letters", "list"}));
  BOOST_TEST(none.code == 0, none);
  BOOST_TEST(none.out.empty(), none);
  BOOST_TEST(contains(none.err, "no dead letters"), none);
  auto unknown =
      run_cli(with_daemon(f, {"dead-letters", "replay", "--endpoint", "nope"}));
  BOOST_TEST(unknown.code == 1, unknown);
  BOOST_TEST(contains(unknown.err, "(not_found"), unknown);
}

BOOST_AUTO_TEST_CASE(the_config_file_gives_the_server_and_the_token) {
  daemon_fixture f;
  f.start({});
  // Another config for the same daemon with its real port; a wildcard listen
  // address is reached on loopback.
  auto file = f.dir() / "cli.toml";
  std::ofstream{file} << "[server]\nlisten = \"0.0.0.0:" << f.api_port()
                      << "\"\ndata_dir = \"" << (f.dir() / "data").string()
                      << "\"\n";
  auto r = run_cli({"dead-letters", "list", "-c", file.string()});
  BOOST_TEST(r.code == 0, r);
  BOOST_TEST(contains(r.err, "no dead letters"), r);
  // An explicit --server wins over the config.
  auto server = "http://127.0.0.1:" + std::to_string(closed_port());
  auto other = run_cli(
      {"dead-letters", "list", "--config", file.string(), "--server", server});
  BOOST_TEST(other.code == 1, other);
  BOOST_TEST(contains(other.err, "cannot connect to " + server), other);
  // An unusable config is said as such.
  auto missing = run_cli(
      {"dead-letters", "list", "--config", (f.dir() / "nope.toml").string()});
  BOOST_TEST(missing.code == 1, missing);
  BOOST_TEST(contains(missing.err, "nope.toml"), missing);
}

BOOST_AUTO_TEST_CASE(requests_carry_exactly_the_given_fields) {
  // A plain HTTP receiver in place of the daemon: what the CLI sends.
  https_receiver api{
      receiver_options{}, [](const received_request& req, std::size_t) {
        if (req.method == "DELETE")
          return json_answer(204, {});
        if (req.target == "/v1/events")
          return json_answer(202, {{"ids", {"evt_1"}}, {"deliveries", 1}});
        if (req.target.rfind("/v1/dead-letters?", 0) == 0)
          return json_answer(200, {{"dead_letters", json::array()}});
        if (req.target.find("/replay") != std::string::npos)
          return json_answer(202, {{"replayed", 7}, {"limit_reached", true}});
        if (req.target == "/v1/endpoints" && req.method == "GET")
          return json_answer(
              200, {{"endpoints",
                     {{{"id", "ep1"},
                       {"transport", "webhook"},
                       {"enabled", true},
                       {"url", "https://a.example/h"},
                       {"event_types", {"policy.denied", "content.detected"}}},
                      {{"id", "ep-two"},
                       {"transport", "slack"},
                       {"enabled", false},
                       {"url", "https://hooks.slack.com/x"},
                       {"event_types", {"*"}}}}}});
        return json_answer(req.target == "/v1/endpoints" ? 201 : 200,
                           {{"id", "ep1"}, {"secret", "whsec_new"}});
      }};
  auto server = "http://127.0.0.1:" + std::to_string(api.port());
  auto cli = [&](std::vector<std::string> args) {
    args.insert(args.end(), {"--server", server, "--token", "tok"});
    auto r = run_cli(args);
    BOOST_TEST(r.code == 0, r);
    return r;
  };
  auto last = [&] { return api.requests().back(); };

  auto add = cli({"endpoints", "add", "--url", "https://a.example/h", "--id",
                  "ep1", "--event-type", "policy.denied,content.detected",
                  "--event-type", "anomaly.detected", "--agent", "agent-*",
                  "--signature", "hmac", "--option", "routing_key=abc=d",
                  "--disabled", "--description", "ops"});
  auto req = last();
  BOOST_TEST(req.method == "POST");
  BOOST_TEST(req.target == "/v1/endpoints");
  BOOST_TEST(req.headers["authorization"] == "Bearer tok");
  BOOST_TEST(req.headers["content-type"] == "application/json");
  BOOST_TEST(
      json::parse(req.body) ==
          (json{{"id", "ep1"},
                {"url", "https://a.example/h"},
                {"event_types",
                 {"policy.denied", "content.detected", "anomaly.detected"}},
                {"agents", {"agent-*"}},
                {"signature", "hmac-sha256"},
                {"description", "ops"},
                {"options", {{"routing_key", "abc=d"}}},
                {"enabled", false}}),
      req.body);
  BOOST_TEST(json::parse(add.out)["secret"] == "whsec_new");
  BOOST_TEST(contains(add.err, "only"), add);
  cli({"endpoints", "add", "--url", "https://a.example/h"});
  BOOST_TEST(json::parse(last().body) ==
             (json{{"url", "https://a.example/h"}}));

  cli({"endpoints", "update", "ep/1", "--disable", "--min-severity", "high",
       "--signature", "ed25519", "--transport", "slack"});
  req = last();
  BOOST_TEST(req.method == "PATCH");
  BOOST_TEST(req.target == "/v1/endpoints/ep%2F1");
  BOOST_TEST(json::parse(req.body) == (json{{"transport", "slack"},
                                            {"min_severity", "high"},
                                            {"signature", "ed25519"},
                                            {"enabled", false}}),
             req.body);
  cli({"endpoints", "update", "ep1", "--enable"});
  BOOST_TEST(json::parse(last().body) == (json{{"enabled", true}}));

  cli({"endpoints", "rotate", "ep1"});
  BOOST_TEST(last().target == "/v1/endpoints/ep1/rotate-secret");
  BOOST_TEST(json::parse(last().body) == json::object());
  auto rotated = cli(
      {"endpoints", "rotate", "ep1", "--secret", "whsec_x", "--grace", "60"});
  BOOST_TEST(json::parse(last().body) ==
             (json{{"secret", "whsec_x"}, {"grace", 60}}));
  BOOST_TEST(contains(rotated.out, "whsec_new"), rotated);

  auto get = cli({"endpoints", "get", "ep1"});
  BOOST_TEST(last().method == "GET");
  BOOST_TEST(last().target == "/v1/endpoints/ep1");
  BOOST_TEST(json::parse(get.out)["id"] == "ep1");

  auto rm = cli({"endpoints", "rm", "ep1"});
  BOOST_TEST(last().method == "DELETE");
  BOOST_TEST(rm.out == "deleted ep1\n");

  auto list = cli({"endpoints", "list"});
  BOOST_TEST(list.out ==
                 "ID      TRANSPORT  ENABLED  URL                        "
                 "EVENT_TYPES\n"
                 "ep1     webhook    yes      https://a.example/h        "
                 "policy.denied,content.detected\n"
                 "ep-two  slack      no       https://hooks.slack.com/x  *\n",
             list);
  auto list_json = cli({"endpoints", "list", "--json"});
  BOOST_TEST(json::parse(list_json.out)["endpoints"].size() == 2u);

  auto sent = cli({"send", "--type", "system.health", "--summary", "all good",
                   "--idempotency-key", "k-1"});
  req = last();
  BOOST_TEST(req.target == "/v1/events");
  BOOST_TEST(req.headers["idempotency-key"] == "k-1");
  BOOST_TEST(req.headers["content-type"] == "application/json");
  BOOST_TEST(json::parse(req.body) ==
             (json{{"type", "system.health"}, {"summary", "all good"}}));
  BOOST_TEST(sent.out == "evt_1\n");
  cli({"send", "--type", "policy.denied", "--summary", "s"});
  BOOST_TEST(last().headers.count("idempotency-key") == 0u);

  cli({"dead-letters", "list", "--limit", "5", "--after", "dlv_x"});
  BOOST_TEST(last().target == "/v1/dead-letters?limit=5&after=dlv_x");
  auto replay = cli({"dead-letters", "replay", "--endpoint", "ep1", "--since",
                     "2020-01-01T00:00:00+01:00"});
  BOOST_TEST(last().method == "POST");
  BOOST_TEST(
      last().target ==
      "/v1/endpoints/ep1/replay?since=2020-01-01T00%3A00%3A00%2B01%3A00");
  BOOST_TEST(replay.out == "replayed 7\n");
  BOOST_TEST(contains(replay.err, "limit reached"), replay);
  cli({"dead-letters", "replay", "dlv_1"});
  BOOST_TEST(last().target == "/v1/dead-letters/dlv_1/replay");
}

BOOST_AUTO_TEST_CASE(responses_are_read_chunked_or_until_close) {
  {
    one_shot_server s{"HTTP/1.1 202 Accepted\r\nContent-Type: application/json"
                      "\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "5;ext=1\r\n{\"ids\r\n"
                      "12\r\n\": [\"evt_a\", \"evt_\r\n"
                      "4\r\nb\"]}\r\n"
                      "0\r\nX-Trailer: 1\r\n\r\n"};
    auto r = run_cli({"send", "--type", "policy.denied", "--summary", "s",
                      "--server", s.server(), "--token", "t"});
    BOOST_TEST(r.code == 0, r);
    BOOST_TEST(r.out == "evt_a\nevt_b\n", r);
  }
  {
    one_shot_server s{"HTTP/1.0 200 OK\r\n\r\n{\"dead_letters\": []}"};
    auto r = run_cli(
        {"dead-letters", "list", "--server", s.server(), "--token", "t"});
    BOOST_TEST(r.code == 0, r);
    BOOST_TEST(contains(r.err, "no dead letters"), r);
    BOOST_TEST(contains(s.request(), "GET /v1/dead-letters HTTP/1.1\r\n"));
    BOOST_TEST(contains(s.request(), "Authorization: Bearer t\r\n"));
  }
  {
    one_shot_server s{"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 11\r\n\r\n"
                      "bad gateway"};
    auto r = run_cli(
        {"dead-letters", "list", "--server", s.server(), "--token", "t"});
    BOOST_TEST(r.code == 1, r);
    BOOST_TEST(
        r.err == "tocsin: HTTP 502 from " + s.server() + ": bad gateway\n", r);
  }
  {
    one_shot_server s{"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort"};
    auto r = run_cli(
        {"dead-letters", "list", "--server", s.server(), "--token", "t"});
    BOOST_TEST(r.code == 1, r);
    BOOST_TEST(contains(r.err, "bad response from " + s.server()), r);
  }
}

// Needs the endpoints API (POST/GET/PATCH/DELETE /v1/endpoints, rotate-secret).
BOOST_AUTO_TEST_CASE(secrets_are_made_here_and_shown_once_where_there_is_one) {
  // `secret new`: a fresh whsec_ secret each time; --ed25519 a whsk_ secret
  // key on stdout and its whpk_ public key on stderr.
  auto a = run_cli({"secret", "new"});
  auto b = run_cli({"secret", "new"});
  BOOST_REQUIRE_MESSAGE(a.code == 0 && b.code == 0, a);
  BOOST_TEST(a.out.rfind("whsec_", 0) == 0u, a);
  BOOST_TEST(a.out != b.out);
  auto pair = run_cli({"secret", "new", "--ed25519"});
  BOOST_REQUIRE_MESSAGE(pair.code == 0, pair);
  BOOST_TEST(pair.out.rfind("whsk_", 0) == 0u, pair);
  auto at = pair.err.find("whpk_");
  BOOST_REQUIRE_MESSAGE(at != std::string::npos, pair);
  auto public_key = pair.err.substr(at, pair.err.find('\n', at) - at);
  auto trim = [](std::string s) { return s.substr(0, s.find('\n')); };

  // Both sign what a receiver holding the secret (resp. the public key)
  // verifies.
  daemon_fixture f;
  auto hmac = f.make_receiver({}, 0, false, trim(a.out));
  auto ed25519 = f.make_receiver({}, 0, false, public_key);
  f.start({});
  for (auto& [id, url, secret] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"hmac", daemon_fixture::url_of(*hmac), trim(a.out)},
           {"ed", daemon_fixture::url_of(*ed25519), trim(pair.out)}}) {
    auto add = run_cli(with_daemon(
        f, {"endpoints", "add", "--url", url, "--id", id, "--secret", secret}));
    BOOST_REQUIRE_MESSAGE(add.code == 0, add);
    BOOST_TEST(contains(add.err, "shown only this once"), add);
  }
  auto sent = run_cli(with_daemon(f, {"send", "--type", "policy.denied",
                                      "--agent", "a", "--summary", "s"}));
  BOOST_REQUIRE_MESSAGE(sent.code == 0, sent);
  BOOST_REQUIRE(hmac->wait_for(1, std::chrono::seconds{10}));
  BOOST_REQUIRE(ed25519->wait_for(1, std::chrono::seconds{10}));
  BOOST_TEST(hmac->requests()[0].signature_valid);
  BOOST_TEST(ed25519->requests()[0].signature_valid);

  // An endpoint of a transport that does not sign has no secret to show.
  auto slack = run_cli(
      with_daemon(f, {"endpoints", "add", "--transport", "slack", "--url",
                      daemon_fixture::url_of(*hmac), "--id", "slack"}));
  BOOST_REQUIRE_MESSAGE(slack.code == 0, slack);
  auto none = json::parse(slack.out)["secret"];
  BOOST_TEST((none.is_null() || none == ""), slack);
  BOOST_TEST(!contains(slack.err, "secret"), slack);
}

BOOST_AUTO_TEST_CASE(endpoints_are_managed_through_the_api) {
  daemon_fixture f;
  auto receiver = f.make_receiver();
  f.start({});
  auto url = daemon_fixture::url_of(*receiver);

  auto add = run_cli(with_daemon(
      f, {"endpoints", "add", "--url", url, "--id", "cli-ep", "--event-type",
          "policy.denied", "--description", "first", "--secret", test_secret}));
  BOOST_REQUIRE_MESSAGE(add.code == 0, add);
  auto created = json::parse(add.out);
  BOOST_TEST(created["id"] == "cli-ep");
  BOOST_TEST(created["url"] == url);
  BOOST_TEST(created["secret"] == test_secret);
  BOOST_TEST(contains(add.err, "only"), add);

  auto list = run_cli(with_daemon(f, {"endpoints", "list"}));
  BOOST_REQUIRE_MESSAGE(list.code == 0, list);
  auto rows = lines(list.out);
  BOOST_REQUIRE_EQUAL(rows.size(), 2u);
  BOOST_TEST(rows[1].rfind("cli-ep ", 0) == 0u, rows[1]);
  BOOST_TEST(contains(rows[1], url), rows[1]);
  BOOST_TEST(contains(rows[1], "policy.denied"), rows[1]);
  BOOST_TEST(contains(rows[1], "webhook"), rows[1]);
  BOOST_TEST(contains(rows[1], "yes"), rows[1]);

  auto get = run_cli(with_daemon(f, {"endpoints", "get", "cli-ep"}));
  BOOST_REQUIRE_MESSAGE(get.code == 0, get);
  BOOST_TEST(json::parse(get.out)["description"] == "first");
  BOOST_TEST(json::parse(get.out).count("secret") == 0u);

  // The endpoint delivers what the CLI sends.
  auto sent = run_cli(with_daemon(f, {"send", "--type", "policy.denied",
                                      "--agent", "a", "--summary", "s"}));
  BOOST_REQUIRE_MESSAGE(sent.code == 0, sent);
  BOOST_REQUIRE(receiver->wait_for(1, std::chrono::seconds{10}));
  BOOST_TEST(receiver->requests()[0].signature_valid);

  auto update =
      run_cli(with_daemon(f, {"endpoints", "update", "cli-ep", "--description",
                              "second", "--disable"}));
  BOOST_REQUIRE_MESSAGE(update.code == 0, update);
  BOOST_TEST(json::parse(update.out)["description"] == "second");
  BOOST_TEST(json::parse(update.out)["enabled"] == false);
  auto bad = run_cli(with_daemon(
      f, {"endpoints", "update", "cli-ep", "--url", "http://insecure/"}));
  BOOST_TEST(bad.code == 1, bad);
  BOOST_TEST(contains(bad.err, "(insecure_url"), bad);

  auto rotate = run_cli(with_daemon(f, {"endpoints", "rotate", "cli-ep"}));
  BOOST_REQUIRE_MESSAGE(rotate.code == 0, rotate);
  auto secret = json::parse(rotate.out)["secret"].get<std::string>();
  BOOST_TEST(secret.rfind("whsec_", 0) == 0u, secret);
  BOOST_TEST(secret != test_secret);

  auto rm = run_cli(with_daemon(f, {"endpoints", "rm", "cli-ep"}));
  BOOST_TEST(rm.code == 0, rm);
  BOOST_TEST(rm.out == "deleted cli-ep\n", rm);
  auto gone = run_cli(with_daemon(f, {"endpoints", "get", "cli-ep"}));
  BOOST_TEST(gone.code == 1, gone);
  BOOST_TEST(contains(gone.err, "(not_found"), gone);
}

BOOST_AUTO_TEST_SUITE_END()
