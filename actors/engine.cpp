#include "actors/engine.hpp"

#include "actors/cluster_actors.hpp"
#include "actors/ingest_actor.hpp"
#include "common/log.hpp"

#include <mutex>

// The engine's callers hand their callbacks to the bridge actor (in-process).
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(tocsin::delivery::ingest_callback)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(tocsin::delivery::replay_callback)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(tocsin::delivery::answer_callback)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(tocsin::delivery::endpoint_change_callback)

namespace tocsin::actors {

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

/// Where the engine's callers (HTTP threads, not actors) meet the actors: a
/// request to the ingest actor per call, its reply handed to the callback.
/// The callbacks stay here, at the edge; the actors' own protocol is typed
/// requests and responses.
struct bridge {
  static caf::behavior make(caf::event_based_actor* self, ingest_actor ingest) {
    auto unreachable = [](const caf::error& e, caf::actor_system& sys) {
      return error{"store_unavailable",
                   "the engine did not answer: " + sys.render(e)};
    };
    return {
        [=](ingest_atom, delivery::ingest_batch& batch,
            delivery::ingest_callback& done) {
          self->request(ingest, caf::infinite, ingest_atom_v, std::move(batch))
              .then(
                  [done](ingest_reply& r) { done(std::move(r)); },
                  [=](caf::error& e) { done(unreachable(e, self->system())); });
        },
        [=](replay_atom, delivery::replay_selection& sel,
            delivery::replay_callback& done) {
          self->request(ingest, caf::infinite, replay_atom_v, std::move(sel))
              .then(
                  [done](replay_reply& r) { done(std::move(r)); },
                  [=](caf::error& e) { done(unreachable(e, self->system())); });
        },
        [=](answer_atom, delivery::answer_request& req,
            delivery::answer_callback& done) {
          self->request(ingest, caf::infinite, answer_atom_v, std::move(req))
              .then(
                  [done](answer_reply& r) { done(std::move(r)); },
                  [=](caf::error& e) { done(unreachable(e, self->system())); });
        },
        [=](endpoint_atom, delivery::endpoint_change& change,
            delivery::endpoint_change_callback& done) {
          self->request(ingest, caf::infinite, endpoint_atom_v,
                        std::move(change))
              .then(
                  [done](status& s) { done(std::move(s)); },
                  [=](caf::error& e) { done(unreachable(e, self->system())); });
        },
        [=](reload_atom, delivery::reconfiguration& r,
            delivery::endpoint_change_callback& done) {
          self->request(ingest, caf::infinite, reload_atom_v, std::move(r))
              .then(
                  [done](status& s) { done(std::move(s)); },
                  [=](caf::error& e) { done(unreachable(e, self->system())); });
        },
    };
  }
};

/// Where the store's listening thread hands news to the actors; emptied
/// before the actor system goes.
struct news_relay {
  std::mutex mutex;
  caf::actor follower, membership;

  void pass(storage::cluster_news news, std::uint64_t seq) {
    std::lock_guard lock{mutex};
    if (follower && news != storage::cluster_news::leases_released)
      caf::anon_send(follower, news_atom_v, news, seq);
    if (membership && news != storage::cluster_news::log_advanced)
      caf::anon_send(membership, news_atom_v, news, seq);
  }
  void close() {
    std::lock_guard lock{mutex};
    follower = membership = {};
  }
};

class engine_impl final : public engine {
public:
  engine_impl(const engine_options& opts, storage::store& log,
              net::https_client& client)
      : cfg_(make_config(opts.scheduler_threads)), sys_(cfg_), log_(log),
        opts_(opts), client_(client) {}

  ~engine_impl() override {
    if (relay_)
      relay_->close();
    if (follower_)
      caf::anon_send_exit(follower_, caf::exit_reason::user_shutdown);
    if (membership_)
      caf::anon_send_exit(membership_, caf::exit_reason::user_shutdown);
    caf::scoped_actor self{sys_};
    std::vector<endpoint_actor> actors;
    self->request(ingest_, std::chrono::seconds{5}, endpoints_atom_v)
        .receive(
            [&](std::vector<endpoint_actor>& all) { actors = std::move(all); },
            [](caf::error&) {});
    caf::anon_send_exit(bridge_, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(ingest_, caf::exit_reason::user_shutdown);
    for (auto& a : actors)
      caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  }

  void start() {
    actor_deps deps{&log_, &client_, now_ms, opts_.max_payload_bytes,
                    opts_.queue_window};
    deps.escalation = opts_.escalation;
    deps.public_url = opts_.public_url;
    deps.board = opts_.board;
    auto* shared = opts_.cluster ? log_.cluster() : nullptr;
    if (!shared) {
      ingest_ =
          sys_.spawn<caf::detached>(ingest_actor_fn, opts_.endpoints, deps);
      bridge_ = sys_.spawn(bridge::make, ingest_);
      return;
    }
    auto& c = *opts_.cluster;
    deps.node = c.node;
    deps.endpoint_loader = c.endpoint_loader;
    membership_ = sys_.spawn<caf::detached>(
        membership_fn, shared,
        delivery::lease_keeper{c.node, c.listen, c.lease_ttl}, deps.clock);
    ingest_ = sys_.spawn<caf::detached>(clustered_ingest_actor_fn,
                                        opts_.endpoints, deps, membership_);
    caf::anon_send(membership_, ingest_);
    follower_ =
        sys_.spawn<caf::detached>(follower_fn, &log_, ingest_, c.follow_from);
    relay_ = std::make_shared<news_relay>();
    relay_->follower = follower_;
    relay_->membership = membership_;
    shared->listen(
        [relay = relay_](storage::cluster_news news, std::uint64_t seq) {
          relay->pass(news, seq);
        });
    bridge_ = sys_.spawn(bridge::make, ingest_);
  }

  void ingest(delivery::ingest_batch batch,
              delivery::ingest_callback done) override {
    caf::anon_send(bridge_, ingest_atom_v, std::move(batch), std::move(done));
  }

  void replay(delivery::replay_selection selection,
              delivery::replay_callback done) override {
    caf::anon_send(bridge_, replay_atom_v, std::move(selection),
                   std::move(done));
  }

  void answer(delivery::answer_request request,
              delivery::answer_callback done) override {
    caf::anon_send(bridge_, answer_atom_v, std::move(request), std::move(done));
  }

  void change_endpoint(delivery::endpoint_change change,
                       delivery::endpoint_change_callback done) override {
    caf::anon_send(bridge_, endpoint_atom_v, std::move(change),
                   std::move(done));
  }

  void reconfigure(delivery::reconfiguration r,
                   delivery::endpoint_change_callback done) override {
    caf::anon_send(bridge_, reload_atom_v, std::move(r), std::move(done));
  }

  void drain(std::chrono::milliseconds timeout) override {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    caf::scoped_actor self{sys_};
    if (membership_) {
      // Every endpoint handed over (its attempts in flight finished), the
      // leases released and the others told: they take them at once.
      self->request(membership_, timeout, leave_atom_v)
          .receive([](bool) {},
                   [](caf::error& e) {
                     log::warn("leaving the cluster took too long; the others "
                               "take this node's endpoints when its leases "
                               "expire",
                               {{"error", caf::to_string(e)}});
                   });
    }
    std::vector<endpoint_actor> actors;
    self->request(ingest_, timeout, endpoints_atom_v)
        .receive(
            [&](std::vector<endpoint_actor>& all) { actors = std::move(all); },
            [](caf::error&) {});
    // All are asked at once (none starts anything new from here on); each
    // answers once nothing of it is in flight: the wait is for the slowest,
    // within the deadline.
    using handle =
        decltype(self->request(actors.front(), timeout, drain_atom_v));
    std::vector<handle> answers;
    for (auto& a : actors)
      answers.push_back(self->request(a, timeout, drain_atom_v));
    if (actors.empty())
      return;
    for (auto& answer : answers) {
      if (std::chrono::steady_clock::now() >= deadline)
        return;
      answer.receive([](bool) {}, [](caf::error&) {});
    }
  }

  bool responsive(std::chrono::milliseconds timeout) override {
    caf::scoped_actor self{sys_};
    bool answered = false;
    self->request(ingest_, timeout, endpoints_atom_v)
        .receive([&](std::vector<endpoint_actor>&) { answered = true; },
                 [](caf::error&) {});
    return answered;
  }

private:
  caf::actor_system_config cfg_;
  caf::actor_system sys_;
  storage::store& log_;
  engine_options opts_;
  net::https_client& client_;
  ingest_actor ingest_;
  caf::actor bridge_;
  caf::actor membership_, follower_;
  std::shared_ptr<news_relay> relay_;
};

} // namespace

result<std::unique_ptr<engine>> engine::start(engine_options opts,
                                              storage::store& log,
                                              net::https_client& client) {
  auto e = std::make_unique<engine_impl>(opts, log, client);
  e->start();
  return std::unique_ptr<engine>{std::move(e)};
}

} // namespace tocsin::actors
