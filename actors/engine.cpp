#include "actors/engine.hpp"

#include "actors/endpoint_actor.hpp"
#include "actors/ingest_actor.hpp"
#include "common/log.hpp"
#include "delivery/retry_policy.hpp"

#include <thread>
#include <unordered_map>

namespace tocsin::actors {

using namespace tocsin::delivery;

namespace {

caf::actor_system_config make_config(std::size_t threads) {
  caf::actor_system_config cfg;
  cfg.set("scheduler.max-threads", std::max<std::size_t>(1, threads));
  // Work stealing polls (spins, then sleeps 50 us at a time) while idle: with
  // a worker or two that costs more CPU than the actors. A shared queue with
  // a condition variable wakes workers only when there is work.
  cfg.set("scheduler.policy", caf::atom("sharing"));
  return cfg;
}

class engine_impl final : public engine {
public:
  engine_impl(const engine_options& opts, storage::event_log& log,
              net::https_client& client)
      : cfg_(make_config(opts.scheduler_threads)), sys_(cfg_), log_(log),
        max_payload_bytes_(opts.max_payload_bytes) {
    std::vector<route> routes;
    for (auto& ep : opts.endpoints) {
      auto a = sys_.spawn(endpoint_actor, ep, &log, &client);
      endpoints_.emplace(ep.id, a);
      routes.push_back(route{ep.id, ep.filter, a, ep.enabled, ep.revision});
    }
    // From here on the ingest actor owns the routing table; endpoints_ only
    // serves recovery, before any request arrives.
    ingest_ = sys_.spawn<caf::detached>(
        ingest_actor, &log, &client, std::move(routes), opts.max_payload_bytes);
  }

  ~engine_impl() override {
    caf::scoped_actor self{sys_};
    std::vector<caf::actor> actors;
    self->request(ingest_, std::chrono::seconds{5}, endpoints_atom_v)
        .receive([&](std::vector<caf::actor>& all) { actors = std::move(all); },
                 [](caf::error&) {});
    caf::anon_send_exit(ingest_, caf::exit_reason::user_shutdown);
    for (auto& a : actors)
      caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  }

  status recover() {
    auto now = now_ms();
    std::unordered_map<std::string, std::shared_ptr<const event_content>>
        contents;
    storage::write_set fixes;
    std::unordered_map<std::string, std::vector<delivery_job>> jobs;
    std::optional<error> failure;
    auto st = log_.for_each_pending([&](storage::delivery&& d) {
      if (failure)
        return;
      if (!d.attempts.empty() && !d.attempts.back().finished()) {
        auto& a = d.attempts.back();
        a.finished_at = now;
        a.error = interrupted_error;
        d.next_attempt_at = now;
        fixes.put_delivery(d, storage::record_kind::attempt_interrupted,
                           storage::delivery_state::pending);
        ++report_.interrupted;
      }
      auto ep = endpoints_.find(d.endpoint_id);
      if (ep == endpoints_.end()) {
        d.state = storage::delivery_state::dead_lettered;
        d.finished_at = now;
        d.reason = endpoint_deleted_reason;
        fixes.put_delivery(d, storage::record_kind::delivery_dead_lettered);
        ++report_.orphaned;
        return;
      }
      auto& content = contents[d.event_id];
      if (!content) {
        auto ev = log_.get_event(d.event_id);
        if (!ev || !*ev) {
          failure = ev ? error{"store_corrupt", "delivery " + d.id +
                                                    " names missing event " +
                                                    d.event_id}
                       : ev.error();
          return;
        }
        content = make_event_content((*ev)->body, max_payload_bytes_);
      }
      auto& list = jobs[d.endpoint_id];
      list.push_back(delivery_job{std::move(d), content});
      ++report_.resumed;
    });
    if (!st)
      return st;
    if (failure)
      return *failure;
    if (auto s = log_.commit(fixes, storage::durability::synced); !s)
      return s;
    for (auto& [endpoint_id, list] : jobs)
      caf::anon_send(endpoints_.at(endpoint_id), deliver_atom_v,
                     std::move(list));
    return {};
  }

  void ingest(ingest_batch batch, ingest_callback done) override {
    caf::anon_send(ingest_, ingest_atom_v,
                   ingest_request{std::move(batch), std::move(done)});
  }

  void replay(replay_selection selection, replay_callback done) override {
    caf::anon_send(ingest_, replay_atom_v,
                   replay_request{std::move(selection), std::move(done)});
  }

  void change_endpoint(endpoint_change change,
                       endpoint_change_callback done) override {
    caf::anon_send(ingest_, endpoint_atom_v,
                   endpoint_change_request{std::move(change), std::move(done)});
  }

  void drain(std::chrono::milliseconds timeout) override {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    caf::scoped_actor self{sys_};
    std::vector<caf::actor> actors;
    self->request(ingest_, timeout, endpoints_atom_v)
        .receive([&](std::vector<caf::actor>& all) { actors = std::move(all); },
                 [](caf::error&) {});
    for (;;) {
      int in_flight = 0;
      for (auto& a : actors)
        self->request(a, timeout, drain_atom_v)
            .receive([&](int n) { in_flight += n; }, [](caf::error&) {});
      if (in_flight == 0 || std::chrono::steady_clock::now() >= deadline)
        return;
      std::this_thread::sleep_for(std::chrono::milliseconds{20});
    }
  }

  const recovery_report& recovered() const override { return report_; }

private:
  caf::actor_system_config cfg_;
  caf::actor_system sys_;
  storage::event_log& log_;
  std::size_t max_payload_bytes_;
  std::unordered_map<std::string, caf::actor> endpoints_;
  caf::actor ingest_;
  recovery_report report_;
};

} // namespace

result<std::unique_ptr<engine>> engine::start(engine_options opts,
                                              storage::event_log& log,
                                              net::https_client& client) {
  auto e = std::make_unique<engine_impl>(opts, log, client);
  if (auto st = e->recover(); !st)
    return st.error();
  auto& r = e->recovered();
  if (r.resumed + r.orphaned > 0)
    log::info("recovered pending deliveries",
              {{"resumed", std::to_string(r.resumed)},
               {"interrupted", std::to_string(r.interrupted)},
               {"orphaned", std::to_string(r.orphaned)}});
  return std::unique_ptr<engine>{std::move(e)};
}

} // namespace tocsin::actors
