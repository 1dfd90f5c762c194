// Drives tocsin's actors with CAF's deterministic scheduler: messages run
// when the test says so, time moves when the test advances it (no sleeps).
// The store is RocksDB in a temp dir behind a switch that can make it refuse
// writes; the network is a client that holds every request until the test
// answers it; the time the actors read follows the scheduler's clock.
#pragma once

#include "actors/endpoint_actor.hpp"
#include "actors/ingest_actor.hpp"
#include "delivery/signing.hpp"
#include "plugins/plugin_loader.hpp"
#include "tests/support/temp_dir.hpp"

#include <boost/test/unit_test.hpp>

#include <caf/scheduler/test_coordinator.hpp>

#include <algorithm>
#include <chrono>
#include <deque>
#include <memory>
#include <string>

namespace tocsin::test {

inline constexpr const char* test_secret =
    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// The store, with a switch that makes every commit fail (a full disk, an
/// I/O error) while it is on.
class switchable_log final : public storage::store {
public:
  explicit switchable_log(storage::store& real) : real_(real) {}
  bool refuse = false;
  int commits = 0;        ///< accepted commits
  int synced_commits = 0; ///< of which synced (the ingest actor's)

  result<std::uint64_t> commit(const storage::changes& ws,
                               storage::durability d) override {
    if (refuse && !ws.empty())
      return error{"store_error", "refused by the test"};
    if (!ws.empty()) {
      ++commits;
      synced_commits += d == storage::durability::synced;
    }
    return real_.commit(ws, d);
  }
  status writable() override {
    if (refuse)
      return error{"store_error", "refused by the test"};
    return real_.writable();
  }
  std::uint64_t last_sequence() const override { return real_.last_sequence(); }
  result<storage::expiry> expire(unix_ms cutoff, unix_ms keys_cutoff,
                                 std::size_t limit) override {
    return real_.expire(cutoff, keys_cutoff, limit);
  }
  unix_ms expired_before() override { return real_.expired_before(); }
  result<std::optional<storage::event_record>>
  get_event(std::string_view id) override {
    return real_.get_event(id);
  }
  result<std::optional<storage::delivery>>
  get_delivery(std::string_view id) override {
    return real_.get_delivery(id);
  }
  result<std::optional<storage::idempotency_record>>
  get_idempotency_key(std::string_view k) override {
    return real_.get_idempotency_key(k);
  }
  int pages = 0; ///< line_of calls
  result<storage::line_page>
  line_of(std::string_view ep, const storage::line_position& from,
          std::size_t limit,
          const std::function<bool(std::string_view)>& held) override {
    ++pages;
    return real_.line_of(ep, from, limit, held);
  }
  result<std::vector<std::string>> endpoints_with_pending() override {
    return real_.endpoints_with_pending();
  }
  result<std::vector<storage::delivery>>
  list_dead_letters(std::string_view after, std::size_t limit) override {
    return real_.list_dead_letters(after, limit);
  }
  result<std::vector<storage::delivery>>
  list_dead_letters_of(std::string_view ep, unix_ms since,
                       std::size_t limit) override {
    return real_.list_dead_letters_of(ep, since, limit);
  }
  result<std::vector<std::pair<std::string, std::string>>>
  list_endpoints() override {
    return real_.list_endpoints();
  }
  result<std::optional<std::string>>
  get_endpoint(std::string_view id) override {
    return real_.get_endpoint(id);
  }
  result<storage::endpoint_backlog>
  backlog_of(std::string_view endpoint_id) override {
    return real_.backlog_of(endpoint_id);
  }
  std::uint64_t approximate_bytes() override {
    return real_.approximate_bytes();
  }
  result<std::vector<std::string>>
  escalations_of(std::string_view event_id) override {
    return real_.escalations_of(event_id);
  }
  result<std::vector<std::string>>
  members_of(std::string_view escalation_id) override {
    return real_.members_of(escalation_id);
  }
  status for_each_event_since(
      unix_ms since,
      const std::function<bool(const storage::event_record&)>& fn) override {
    return real_.for_each_event_since(since, fn);
  }
  result<storage::event_page>
  list_events(const storage::event_query& q) override {
    return real_.list_events(q);
  }
  status read_log(
      std::uint64_t from,
      const std::function<bool(std::uint64_t, std::string_view)>& fn) override {
    return real_.read_log(from, fn);
  }

private:
  storage::store& real_;
};

/// Holds every request until the test answers it.
class held_client final : public net::https_client {
public:
  struct held {
    net::outbound_request request;
    completion done;
  };
  std::deque<held> requests;

  void send(net::outbound_request req, completion done) override {
    requests.push_back({std::move(req), std::move(done)});
  }
  void stop() override {}

  /// Answers the oldest request held, as if after `latency_ms`.
  void answer(int status, std::string retry_after = {}, double latency_ms = 1) {
    BOOST_REQUIRE(!requests.empty());
    auto h = std::move(requests.front());
    requests.pop_front();
    net::inbound_response r;
    r.status = status;
    r.retry_after = std::move(retry_after);
    r.latency_ms = latency_ms;
    h.done(std::move(r));
  }
  /// Answers the oldest request held for `host` with `status`.
  void answer_to(std::string_view host, int status) {
    auto it = std::find_if(requests.begin(), requests.end(), [&](auto& h) {
      return h.request.target.host == host;
    });
    BOOST_REQUIRE(it != requests.end());
    auto h = std::move(*it);
    requests.erase(it);
    net::inbound_response r;
    r.status = status;
    r.latency_ms = 1;
    h.done(std::move(r));
  }
  /// How many requests held for `host` have `part` in their body.
  std::size_t held_for(std::string_view host, std::string_view part = {}) {
    return static_cast<std::size_t>(
        std::count_if(requests.begin(), requests.end(), [&](auto& h) {
          return h.request.target.host == host &&
                 h.request.body.find(part) != std::string::npos;
        }));
  }
  /// Fails the oldest request held: no answer came.
  void fail() {
    BOOST_REQUIRE(!requests.empty());
    auto h = std::move(requests.front());
    requests.pop_front();
    net::inbound_response r;
    r.error = "connect: Connection refused";
    h.done(std::move(r));
  }
};

struct actor_fixture {
  static caf::actor_system_config& testing(caf::actor_system_config& cfg) {
    cfg.set("scheduler.policy", caf::atom("testing"));
    return cfg;
  }

  caf::actor_system_config cfg;
  caf::actor_system sys{testing(cfg)};
  caf::scheduler::test_coordinator& sched{
      dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler())};
  temp_dir dir;
  std::unique_ptr<storage::store> real_log = [this] {
    auto l = storage::open_store({(dir.path() / "store").string()});
    BOOST_REQUIRE(l);
    return std::move(*l);
  }();
  switchable_log log{*real_log};
  held_client client;
  caf::actor_clock::time_point start = sched.clock().current_time;
  static constexpr unix_ms epoch = 1800000000000; ///< what "now" starts at

  /// Unix ms as the actors see it: the scheduler's clock.
  unix_ms now() const {
    return epoch + std::chrono::duration_cast<std::chrono::milliseconds>(
                       sched.clock().current_time - start)
                       .count();
  }

  actors::actor_deps deps(std::size_t window = defaults::queue_window) {
    return actors::actor_deps{&log, &client, [this] { return now(); }, 4096,
                              window};
  }

  /// Spawns a function actor `f(self)`. CAF 0.17.6 dereferences a null
  /// argument tuple when a function actor is spawned without arguments
  /// (UBSan reports a reference bound to null), so one unused argument goes
  /// along.
  template <class F>
  caf::actor spawn_fn(F f) {
    return sys.spawn([f = std::move(f)](caf::event_based_actor* self,
                                        int) mutable { return f(self); },
                     0);
  }

  /// An actor that sets `down` when `watched` ends; it stays until sent an
  /// exit.
  template <class Handle>
  caf::actor watch_down(const Handle& watched, bool& down) {
    return spawn_fn([watched, &down](caf::event_based_actor* self) {
      self->monitor(watched);
      self->set_down_handler([&down](caf::down_msg&) { down = true; });
      return caf::behavior{[](int) {}};
    });
  }

  /// Runs every message there is (no time passes).
  void run() { sched.run(); }
  /// Lets `ms` milliseconds pass, then runs what fell due.
  void advance(long ms) {
    sched.advance_time(std::chrono::milliseconds{ms});
    sched.run();
  }

  static const plugins::loaded_plugins& transports() {
    static auto set = plugins::load_plugins(TOCSIN_PLUGINS_OUTPUT_DIR);
    BOOST_REQUIRE(set);
    return *set;
  }

  /// A webhook endpoint with a schedule in seconds, no jitter.
  static delivery::endpoint_config endpoint(std::string id,
                                            std::vector<double> schedule) {
    delivery::endpoint_config c;
    c.id = std::move(id);
    c.url = "https://hooks.example/in";
    c.target = *parse_url(c.url);
    c.plugin = *transports().find("webhook")->open({c.id, c.url, "{}"});
    c.signing_keys.push_back(
        {*delivery::decode_signing_secret(test_secret), 0});
    c.retry = delivery::retry_policy{std::move(schedule), 0};
    c.max_in_flight = 16;
    c.breaker.failures = 0; // never opens unless a test says so
    return c;
  }

  /// A pending delivery of a small event, due now, stored (event and
  /// delivery) as the ingest actor stores it; at its due time in the
  /// endpoint's pending index, or with `severity`, at its place on an
  /// endpoint (`ordered` or not) as delivery::place_in_line puts it.
  delivery::job job(std::string id, const std::string& endpoint_id,
                    std::optional<std::string> severity = std::nullopt,
                    bool ordered = false) {
    storage::event_record e;
    e.id = "evt_" + id;
    e.body = R"({"id":"evt_)" + id +
             R"(","type":"policy.denied","severity":")" +
             severity.value_or("high") +
             R"(",)"
             R"("agent_id":"agent-7","summary":"s",)"
             R"("timestamp":"2027-01-15T08:00:00.000Z","details":{}})";
    e.accepted_at = now();
    storage::delivery d;
    d.id = "dlv_" + id;
    d.event_id = e.id;
    d.endpoint_id = endpoint_id;
    d.created_at = d.next_attempt_at = now();
    e.delivery_ids = {d.id};
    auto place = d.next_attempt_at;
    if (severity)
      place = delivery::place_in_line(
          ordered, severity_rank(*severity).value_or(0), d.next_attempt_at);
    storage::changes ws;
    ws.event_accepted(e);
    ws.delivery_created(d, place);
    BOOST_REQUIRE(real_log->commit(ws, storage::durability::buffered).ok());
    return delivery::job_of(std::move(d),
                            delivery::make_event_content(e.body, 4096), place);
  }

  storage::delivery stored(const std::string& id) {
    auto d = real_log->get_delivery(id);
    BOOST_REQUIRE(d);
    BOOST_REQUIRE(*d);
    return std::move(**d);
  }
};

} // namespace tocsin::test
