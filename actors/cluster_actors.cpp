#include "actors/cluster_actors.hpp"

#include "common/log.hpp"
#include "common/metric_families.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

namespace tocsin::actors {

namespace {

using membership_ptr = caf::stateful_actor<membership_state>*;
using follower_ptr = caf::stateful_actor<follower_state>*;

void count_nodes(const storage::membership& m) {
  auto alive = std::count_if(m.nodes.begin(), m.nodes.end(),
                             [](auto& n) { return n.alive; });
  auto& nodes = metrics::families::cluster_nodes();
  nodes.with({"alive"}).set(static_cast<double>(alive));
  nodes.with({"dead"}).set(static_cast<double>(m.nodes.size()) -
                           static_cast<double>(alive));
}

void count_leases(const delivery::lease_keeper& k) {
  auto& held = k.held();
  auto escalation = held.count(std::string{storage::escalation_lease});
  auto& leases = metrics::families::cluster_leases();
  leases.with({"endpoint"}).set(static_cast<double>(held.size() - escalation));
  leases.with({"escalation"}).set(static_cast<double>(escalation));
}

/// One heartbeat, and what it changes for the ingest actor.
void beat(membership_ptr self) {
  auto& st = self->state;
  if (st.left)
    return;
  auto& keeper = *st.keeper;
  auto request = keeper.next_round();
  st.asked = request.take;
  auto sent_at = st.clock();
  auto seen = st.cluster->heartbeat(request);
  delivery::lease_actions actions;
  if (seen) {
    actions = keeper.round_done(*seen, sent_at);
    count_nodes(*seen);
  } else {
    metrics::families::cluster_heartbeat_failures().with().add();
    actions = keeper.round_failed(st.clock());
    if (st.failures_log.admit())
      log::error("heartbeat failed; the leases last until their ttl",
                 {{"error", seen.error().message},
                  {"earlier_failures_not_logged",
                   std::to_string(st.failures_log.held_back())}});
  }
  for (auto& g : actions.gained)
    caf::anon_send(st.ingest, own_atom_v, g.name, g.epoch);
  for (auto& name : actions.lost)
    caf::anon_send(st.ingest, disown_atom_v, name);
  for (auto& name : actions.hand_over)
    self->request(st.ingest, caf::infinite, hand_over_atom_v, name)
        .then([=](bool) {
          self->state.keeper->drained(name);
          self->send(self, round_atom_v);
        });
  count_leases(keeper);
  if (!st.leaving.empty() && keeper.held().empty()) {
    if (auto left = st.cluster->leave(keeper.node()); !left)
      log::error("could not leave the cluster; the others wait for this "
                 "node's heartbeat to expire",
                 {{"error", left.error().message}});
    st.left = true;
    for (auto& p : st.leaving)
      p.deliver(true);
    st.leaving.clear();
    return;
  }
  // Just met the cluster (or it changed): take what is now this node's at
  // once, not a second later. Names another live node still holds stay
  // the same and do not loop.
  if (seen && keeper.next_round().take != st.asked)
    self->send(self, round_atom_v);
}

} // namespace

caf::behavior membership_fn(caf::stateful_actor<membership_state>* self,
                            storage::cluster_store* cluster,
                            delivery::lease_keeper keeper,
                            std::function<unix_ms()> clock) {
  auto& st = self->state;
  st.cluster = cluster;
  st.interval = std::min(std::chrono::milliseconds{1000}, keeper.ttl() / 3);
  st.keeper.emplace(std::move(keeper));
  st.clock = std::move(clock);
  return {
      [=](ingest_actor& ingest) {
        self->state.ingest = std::move(ingest);
        self->send(self, tick_atom_v);
      },
      [=](tick_atom) {
        if (self->state.ingest)
          beat(self);
        self->delayed_send(self, self->state.interval, tick_atom_v);
      },
      [=](round_atom) {
        if (self->state.ingest)
          beat(self);
      },
      [=](names_atom, std::vector<std::string>& names) {
        auto& st = self->state;
        st.keeper->set_names(std::move(names));
        if (st.ingest && st.keeper->next_round().take != st.asked)
          beat(self);
      },
      [=](news_atom, storage::cluster_news news, std::uint64_t) {
        if (news != storage::cluster_news::log_advanced && self->state.ingest)
          beat(self);
      },
      [=](fenced_atom, const std::string& name) {
        self->state.keeper->forget(name);
        count_leases(*self->state.keeper);
      },
      [=](leave_atom) -> caf::response_promise {
        auto& st = self->state;
        auto promise = self->make_response_promise();
        if (st.left) {
          promise.deliver(true);
          return promise;
        }
        st.keeper->leave();
        st.leaving.push_back(promise);
        beat(self);
        return promise;
      },
  };
}

namespace {

/// The value of a top-level string field `key` of a record as the store
/// writes it ("key":"value"), when it holds no escape; nothing otherwise.
std::optional<std::string_view> plain_field(std::string_view record,
                                            std::string_view key) {
  std::string mark;
  mark.reserve(key.size() + 4);
  mark.append("\"").append(key).append("\":\"");
  auto at = record.find(mark);
  if (at == std::string_view::npos)
    return std::string_view{};
  auto from = at + mark.size();
  auto to = record.find('"', from);
  if (to == std::string_view::npos)
    return std::nullopt;
  auto value = record.substr(from, to - from);
  if (value.find('\\') != std::string_view::npos)
    return std::nullopt;
  return value;
}

} // namespace

void read_into(follow_batch& b, std::uint64_t seq, std::string_view record) {
  // {"seq":..,"at":..,"kind":"<kind>",...}: the kind is found without
  // parsing; only the records handed on are parsed.
  constexpr std::string_view mark = "\"kind\":\"";
  auto at = record.find(mark);
  if (at == std::string_view::npos)
    return;
  auto from = at + mark.size();
  auto kind = record.substr(from, record.find('"', from) - from);
  bool pending = kind == "delivery.created" || kind == "delivery.replayed";
  bool accepted = kind == "event.accepted";
  bool endpoint = kind == "endpoint.created" || kind == "endpoint.updated" ||
                  kind == "endpoint.secret_rotated" ||
                  kind == "endpoint.deleted";
  if (!pending && !accepted && !endpoint)
    return;
  if (pending) {
    // The most frequent by far: its two ids read without parsing the
    // record (ids hold no escapes; one that did is parsed).
    auto id = plain_field(record, "delivery_id");
    auto endpoint_id = plain_field(record, "endpoint_id");
    if (id && endpoint_id) {
      if (!id->empty() && !endpoint_id->empty())
        b.pending.push_back({std::string{*id}, std::string{*endpoint_id}, seq});
      return;
    }
  }
  auto j = nlohmann::json::parse(record, nullptr, false);
  if (!j.is_object())
    return;
  auto text = [&j](const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>()
                                            : std::string{};
  };
  if (pending) {
    auto id = text("delivery_id"), endpoint_id = text("endpoint_id");
    if (!id.empty() && !endpoint_id.empty())
      b.pending.push_back({std::move(id), std::move(endpoint_id), seq});
  } else if (accepted) {
    if (auto id = text("event_id"); !id.empty())
      b.accepted.push_back(std::move(id));
  } else {
    auto id = text("endpoint_id");
    if (id.empty())
      return;
    if (kind == "endpoint.deleted") {
      b.endpoints.emplace_back(std::move(id), std::nullopt);
    } else if (auto def = j.find("endpoint"); def != j.end()) {
      b.endpoints.emplace_back(std::move(id), def->dump());
    }
  }
}

namespace {

/// Reads what the log holds from `next` on, a bounded batch at a time.
void read_log(follower_ptr self) {
  auto& st = self->state;
  constexpr std::size_t batch_records = 4096;
  follow_batch b;
  std::size_t read = 0;
  auto done = st.log->read_log(st.next,
                               [&](std::uint64_t seq, std::string_view record) {
                                 read_into(b, seq, record);
                                 b.through = seq;
                                 return ++read < batch_records;
                               });
  if (!done) {
    if (st.failures_log.admit())
      log::error("cannot read the shared log; trying again",
                 {{"error", done.error().message},
                  {"earlier_failures_not_logged",
                   std::to_string(st.failures_log.held_back())}});
    return;
  }
  if (read == 0)
    return;
  st.next = b.through + 1;
  if (!b.empty())
    caf::anon_send(st.ingest, follow_atom_v, std::move(b));
  if (read >= batch_records)
    self->send(self, round_atom_v); // more: after what waits in the mailbox
}

} // namespace

caf::behavior follower_fn(caf::stateful_actor<follower_state>* self,
                          storage::store* log, ingest_actor ingest,
                          std::uint64_t from) {
  auto& st = self->state;
  st.log = log;
  st.ingest = std::move(ingest);
  st.next = from;
  self->send(self, tick_atom_v);
  return {
      [=](news_atom, storage::cluster_news news, std::uint64_t seq) {
        auto& st = self->state;
        // Already read that far, or a read is coming: nothing to do.
        if ((news == storage::cluster_news::log_advanced && seq < st.next) ||
            st.read_soon)
          return;
        // Under load every node commits many times a second: the news of a
        // few milliseconds is read at once, in one transaction.
        st.read_soon = true;
        self->delayed_send(self, st.gather, round_atom_v);
      },
      [=](round_atom) {
        self->state.read_soon = false;
        read_log(self);
      },
      [=](tick_atom) {
        read_log(self);
        self->delayed_send(self, self->state.poll, tick_atom_v);
      },
  };
}

} // namespace tocsin::actors
