#include "tests/e2e/cluster.hpp"

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <csignal>
#include <sstream>

#include <signal.h>

namespace tocsin::test {

using nlohmann::json;

// ---- ledger ----------------------------------------------------------------

std::size_t ledger::duplicates() const {
  std::size_t n = 0;
  for (auto& [key, count] : times)
    n += count - 1;
  return n;
}

std::vector<std::pair<std::string, std::string>> ledger::repeated() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (auto& [key, count] : times)
    if (count > 1)
      out.push_back(key);
  return out;
}

std::vector<std::string>
ledger::missing(const std::vector<std::string>& accepted) const {
  std::vector<std::string> out;
  for (auto& id : accepted)
    if (delivered.count(id) == 0)
      out.push_back(id);
  return out;
}

ledger ledger_of(const https_receiver& r) {
  ledger l;
  for (auto& req : r.requests()) {
    ++l.requests;
    l.unsigned_requests += !req.signature_valid;
    auto endpoint = req.target.substr(req.target.empty() ? 0 : 1);
    auto it = req.headers.find("webhook-id");
    auto id = it == req.headers.end() ? std::string{} : it->second;
    ++l.times[{endpoint, id}];
    l.arrivals[endpoint].push_back(id);
    l.delivered.insert(id);
  }
  return l;
}

// ---- cluster_view ----------------------------------------------------------

std::vector<std::string>
cluster_view::holders(const std::string& endpoint) const {
  std::vector<std::string> out;
  for (auto& n : nodes)
    if (n.alive &&
        std::count(n.endpoints.begin(), n.endpoints.end(), endpoint) > 0)
      out.push_back(n.id);
  return out;
}

std::string cluster_view::owner(const std::string& endpoint) const {
  auto h = holders(endpoint);
  return h.size() == 1 ? h[0] : std::string{};
}

std::vector<std::string> cluster_view::held_by(const std::string& node) const {
  auto* n = find(node);
  return n ? n->endpoints : std::vector<std::string>{};
}

std::string cluster_view::escalation_holder() const {
  std::string holder;
  for (auto& n : nodes)
    if (n.alive && n.escalation) {
      if (!holder.empty())
        return {}; // two: none for sure
      holder = n.id;
    }
  return holder;
}

const node_view* cluster_view::find(const std::string& id) const {
  for (auto& n : nodes)
    if (n.id == id)
      return &n;
  return nullptr;
}

std::optional<cluster_view> view_of(daemon_fixture& via) {
  auto r = via.get("/v1/cluster", via.admin_token());
  if (r.status != 200)
    return std::nullopt;
  auto j = json::parse(r.body, nullptr, false);
  if (!j.is_object() || !j.contains("nodes"))
    return std::nullopt;
  cluster_view v;
  v.text = r.body;
  v.node = j.value("node", "");
  v.backend = j.value("backend", "");
  for (auto& n : j["nodes"]) {
    node_view nv;
    nv.id = n.value("id", "");
    nv.listen = n.value("listen", "");
    nv.alive = n.value("alive", false);
    nv.escalation = n.value("escalation", false);
    nv.heartbeat_at =
        parse_rfc3339(n.value("heartbeat_at", std::string{})).value_or(0);
    for (auto& e : n["endpoints"])
      nv.endpoints.push_back(e.get<std::string>());
    v.nodes.push_back(std::move(nv));
  }
  return v;
}

// ---- cluster ---------------------------------------------------------------

std::vector<endpoint_spec> spread_endpoints(int n) {
  std::vector<endpoint_spec> out;
  for (int i = 0; i < n; ++i) {
    endpoint_spec e;
    e.id = "ep" + std::to_string(i);
    e.retry_schedule = "[0.2, 0.5, 1, 2, 4]";
    e.extra = "agents = [\"a" + std::to_string(i) + "\"]\n";
    out.push_back(std::move(e));
  }
  return out;
}

cluster_fixture::cluster_fixture(cluster_options o) : opts_(std::move(o)) {
  receiver_ = ca_holder_.make_receiver(opts_.respond);
  endpoints_ = opts_.endpoints;
  for (auto& e : endpoints_)
    if (e.url.empty())
      e.url = url_of(e.id);
}

cluster_fixture::~cluster_fixture() {
  for (auto pid : paused_)
    ::kill(pid, SIGCONT);
  // The last ones first: each one that leaves hands its endpoints to those
  // still running.
  for (auto it = nodes_.rbegin(); it != nodes_.rend(); ++it)
    if (it->second->process().running())
      it->second->terminate();
}

daemon_fixture& cluster_fixture::start_node(const std::string& id) {
  auto f = std::make_unique<daemon_fixture>();
  f->use_postgres(opts_.postgres_url);
  f->set_ca_file(ca_holder_.ca().ca_file());
  f->set_delivery_extra(opts_.delivery_extra);
  std::ostringstream cfg;
  cfg << "[cluster]\nnode_id = \"" << id
      << "\"\nlease_ttl = " << opts_.lease_ttl << "\n\n"
      << opts_.extra;
  f->start(endpoints_, opts_.server_extra, cfg.str());
  nodes_.emplace_back(id, std::move(f));
  return *nodes_.back().second;
}

daemon_fixture& cluster_fixture::node(const std::string& id) {
  for (auto& [name, f] : nodes_)
    if (name == id)
      return *f;
  throw std::out_of_range("no node " + id);
}

std::vector<std::string> cluster_fixture::node_ids() const {
  std::vector<std::string> out;
  for (auto& n : nodes_)
    out.push_back(n.first);
  return out;
}

std::vector<daemon_fixture*> cluster_fixture::nodes() {
  std::vector<daemon_fixture*> out;
  for (auto& n : nodes_)
    out.push_back(n.second.get());
  return out;
}

std::string cluster_fixture::url_of(const std::string& endpoint) const {
  return "https://127.0.0.1:" + std::to_string(receiver_->port()) + "/" +
         endpoint;
}

std::vector<std::string> cluster_fixture::endpoint_ids() const {
  std::vector<std::string> out;
  for (auto& e : endpoints_)
    out.push_back(e.id);
  return out;
}

std::chrono::milliseconds cluster_fixture::lease_ttl() const {
  return std::chrono::milliseconds{static_cast<long>(opts_.lease_ttl * 1000)};
}

void cluster_fixture::kill9(const std::string& id) {
  auto& f = node(id);
  paused_.erase(f.process().pid());
  f.kill9();
}

void cluster_fixture::pause(const std::string& id) {
  auto pid = node(id).process().pid();
  BOOST_REQUIRE(::kill(pid, SIGSTOP) == 0);
  paused_.insert(pid);
}

void cluster_fixture::resume(const std::string& id) {
  auto pid = node(id).process().pid();
  BOOST_REQUIRE(::kill(pid, SIGCONT) == 0);
  paused_.erase(pid);
}

void cluster_fixture::sigterm(const std::string& id) {
  BOOST_REQUIRE(::kill(node(id).process().pid(), SIGTERM) == 0);
}

std::string cluster_fixture::logs(std::size_t per_node) {
  std::string out;
  for (auto& [id, f] : nodes_) {
    auto log = f->process().log();
    out += "--- " + id + "'s log ends:\n" +
           (log.size() > per_node ? "..." + log.substr(log.size() - per_node)
                                  : log);
  }
  return out;
}

cluster_view cluster_fixture::wait_view(
    daemon_fixture& via, const std::function<bool(const cluster_view&)>& done,
    std::chrono::milliseconds limit, const std::string& what) {
  auto deadline = clock_type::now() + limit;
  std::string last = "(no answer)";
  for (;;) {
    if (auto v = view_of(via)) {
      if (done(*v))
        return *v;
      last = v->text;
    }
    BOOST_REQUIRE_MESSAGE(clock_type::now() < deadline,
                          what << " (waited " << limit.count()
                               << " ms); GET /v1/cluster said " << last << "\n"
                               << logs());
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  }
}

bool cluster_fixture::owned(const cluster_view& v,
                            const std::set<std::string>& not_by,
                            const std::vector<std::string>& which) const {
  for (auto& e : which.empty() ? endpoint_ids() : which) {
    auto o = v.owner(e);
    if (o.empty() || not_by.count(o) > 0)
      return false;
  }
  return true;
}

cluster_view cluster_fixture::wait_owned(
    daemon_fixture& via, std::chrono::milliseconds limit,
    const std::string& what, const std::set<std::string>& not_by,
    const std::vector<std::string>& which) {
  return wait_view(
      via, [&](const cluster_view& v) { return owned(v, not_by, which); },
      limit, what);
}

cluster_view cluster_fixture::wait_settled(
    daemon_fixture& via, const std::function<bool(const cluster_view&)>& done,
    std::chrono::milliseconds limit, const std::string& what) {
  std::vector<std::string> running;
  for (auto& [id, f] : nodes_)
    if (f->process().running())
      running.push_back(id);
  // Who holds what, alive: a hand-over under way changes it.
  auto holdings = [&](const cluster_view& v) {
    std::string out;
    for (auto& n : v.nodes)
      if (n.alive) {
        out += n.id + (n.escalation ? "+escalation:" : ":");
        for (auto& e : n.endpoints)
          out += e + ",";
        out += ";";
      }
    return out;
  };
  // Settled: every running node alive, `done`, and the same holdings over
  // two rounds in which each of them beat after all of them were alive (each
  // placed the leases over all of them, and what that moved has moved: a
  // hand-over begun in the first round is released by the second).
  unix_ms round_from = 0; ///< heartbeats after this count for the round
  std::string held;       ///< the holdings when the round began
  int rounds = 0;         ///< full rounds seen with the same holdings
  return wait_view(
      via,
      [&](const cluster_view& v) {
        unix_ms latest = 0, earliest = 0;
        for (auto& id : running) {
          auto* n = v.find(id);
          if (!n || !n->alive)
            return false;
          latest = std::max(latest, n->heartbeat_at);
          earliest = earliest == 0 ? n->heartbeat_at
                                   : std::min(earliest, n->heartbeat_at);
        }
        if (!done(v))
          return false;
        if (round_from == 0 || holdings(v) != held) {
          round_from = latest; // a new round from here
          held = holdings(v);
          rounds = 0;
          return false;
        }
        if (earliest <= round_from)
          return false;
        round_from = latest; // a round done: the next one from here
        return ++rounds == 2;
      },
      limit, what);
}

cluster_view cluster_fixture::wait_balanced(daemon_fixture& via,
                                            std::chrono::milliseconds limit,
                                            const std::string& what) {
  return wait_settled(
      via,
      [&](const cluster_view& v) {
        if (!owned(v))
          return false;
        for (auto& [id, f] : nodes_)
          if (f->process().running() && v.held_by(id).empty())
            return false;
        return true;
      },
      limit, what);
}

std::vector<std::string> attempt_nodes(daemon_fixture& via,
                                       const std::string& id) {
  std::vector<std::string> out;
  // Held here: a range-for over a member of the temporary event() returns
  // would read it after it is gone.
  auto event = via.event(id);
  for (auto& d : event["deliveries"])
    for (auto& a : d["attempts"])
      out.push_back(a.value("node", std::string{"(none)"}));
  return out;
}

long ms_since(clock_type::time_point t) {
  return static_cast<long>(
      std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() -
                                                            t)
          .count());
}

// ---- producers -------------------------------------------------------------

producers::producers(const std::vector<daemon_fixture*>& nodes, int threads,
                     std::vector<std::string> agents,
                     std::chrono::milliseconds pause)
    : agents_(std::move(agents)), pause_(pause) {
  for (auto* n : nodes) {
    targets_.push_back({n->api_port(), n->admin_token()});
    avoided_.push_back(std::make_unique<std::atomic<bool>>(false));
  }
  for (int t = 0; t < threads; ++t)
    threads_.emplace_back([this, t] { run(t); });
}

void producers::stop() {
  stop_ = true;
  for (auto& t : threads_)
    if (t.joinable())
      t.join();
}

void producers::run(int t) {
  std::vector<std::unique_ptr<http_client>> clients;
  for (auto& target : targets_)
    clients.push_back(std::make_unique<http_client>("127.0.0.1", target.port));
  auto n = targets_.size();
  for (std::size_t k = static_cast<std::size_t>(t); !stop_; ++k) {
    auto i = k % n;
    if (*avoided_[i])
      continue;
    json batch{{"events", json::array()}};
    for (auto& agent : agents_) {
      auto e = sample_event(agent);
      e["summary"] = agent + " #" + std::to_string(t) + "-" + std::to_string(k);
      batch["events"].push_back(std::move(e));
    }
    posted a;
    a.node = i;
    a.sent = clock_type::now();
    auto r =
        clients[i]->request("POST", "/v1/events", batch.dump(),
                            {{"authorization", "Bearer " + targets_[i].token},
                             {"content-type", "application/json"}});
    a.answered = clock_type::now();
    a.status = r.status;
    std::vector<std::string> ids;
    if (r.status == 202) {
      ids = json::parse(r.body)["ids"].get<std::vector<std::string>>();
      a.events = ids.size();
    } else if (r.status == 503) {
      a.retry_after = r.headers.count("retry-after") > 0;
      auto j = json::parse(r.body, nullptr, false);
      if (j.is_object() && j.contains("error") && j["error"].is_object())
        a.code = j["error"].value("code", "");
    } else {
      a.text = std::to_string(r.status) + " " + r.body + r.error;
    }
    {
      std::lock_guard g{mtx_};
      ids_.insert(ids_.end(), ids.begin(), ids.end());
      answers_.push_back(std::move(a));
    }
    std::this_thread::sleep_for(pause_); // a paced load, not a flood
  }
}

std::size_t producers::accepted() const {
  std::lock_guard g{mtx_};
  return ids_.size();
}

std::vector<std::string> producers::accepted_ids() const {
  std::lock_guard g{mtx_};
  return ids_;
}

std::vector<posted> producers::answers() const {
  std::lock_guard g{mtx_};
  return answers_;
}

std::size_t producers::accepted_after(clock_type::time_point t,
                                      std::optional<std::size_t> i) const {
  std::lock_guard g{mtx_};
  std::size_t n = 0;
  for (auto& a : answers_)
    if (a.status == 202 && a.sent > t && (!i || a.node == *i))
      n += a.events;
  return n;
}

std::size_t producers::fewest_refusals() const {
  std::lock_guard g{mtx_};
  std::vector<std::size_t> n(targets_.size());
  for (auto& a : answers_)
    n.at(a.node) += a.status == 503;
  return *std::min_element(n.begin(), n.end());
}

} // namespace tocsin::test
