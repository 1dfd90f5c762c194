// In-memory stand-ins for the engine and the event log, for tests of the API
// layer that need no actors and no RocksDB (unit tests, the fuzzer).
#pragma once

#include "actors/engine.hpp"
#include "storage/store.hpp"

#include <optional>
#include <string>
#include <vector>

namespace tocsin::test {

/// Accepts every event at once and answers with its id (and one delivery
/// each); replays and answers "succeed".
class fake_engine final : public actors::engine {
public:
  void ingest(delivery::ingest_batch batch,
              delivery::ingest_callback done) override {
    delivery::ingest_answer answer;
    for (auto& e : batch.events) {
      answer.ids.push_back(e.id);
      answer.events.push_back({1, false});
      ++answer.deliveries;
    }
    done(std::move(answer));
  }
  void change_endpoint(delivery::endpoint_change,
                       delivery::endpoint_change_callback done) override {
    done({});
  }
  void reconfigure(delivery::reconfiguration,
                   delivery::endpoint_change_callback done) override {
    done({});
  }
  void replay(delivery::replay_selection sel,
              delivery::replay_callback done) override {
    done(sel.delivery_ids.size());
  }
  /// Every answer "changes" its event; the requests are kept.
  void answer(delivery::answer_request req,
              delivery::answer_callback done) override {
    delivery::answered_event ev;
    ev.event_id = req.event_id;
    ev.state = req.state;
    ev.changed = true;
    ev.answers.push_back({req.state, req.by, req.source, req.note, 1});
    answered.push_back(std::move(req));
    done(delivery::answer_outcome{{std::move(ev)}});
  }
  void drain(std::chrono::milliseconds) override {}
  bool responsive(std::chrono::milliseconds) override { return true; }

  std::vector<delivery::answer_request> answered;
};

/// A store with nothing in it (but the one endpoint a test may set) that
/// accepts every write.
class empty_log final : public storage::store {
public:
  result<std::uint64_t> commit(const storage::changes&,
                               storage::durability) override {
    return std::uint64_t{0};
  }
  result<std::optional<storage::event_record>>
  get_event(std::string_view) override {
    return std::optional<storage::event_record>{};
  }
  result<std::optional<storage::delivery>>
  get_delivery(std::string_view) override {
    return std::optional<storage::delivery>{};
  }
  result<std::optional<storage::idempotency_record>>
  get_idempotency_key(std::string_view) override {
    return std::optional<storage::idempotency_record>{};
  }
  result<storage::line_page>
  line_of(std::string_view, const storage::line_position&, std::size_t,
          const std::function<bool(std::string_view)>&) override {
    return storage::line_page{};
  }
  result<std::vector<std::string>> endpoints_with_pending() override {
    return std::vector<std::string>{};
  }
  status writable() override {
    if (unwritable)
      return *unwritable;
    return {};
  }
  /// What writable() fails with, when set.
  std::optional<error> unwritable;
  std::uint64_t last_sequence() const override { return 0; }
  result<storage::expiry> expire(unix_ms, unix_ms, std::size_t) override {
    return storage::expiry{};
  }
  unix_ms expired_before() override { return 0; }
  result<std::vector<storage::delivery>>
  list_dead_letters(std::string_view, std::size_t) override {
    return std::vector<storage::delivery>{};
  }
  result<std::vector<storage::delivery>>
  list_dead_letters_of(std::string_view, unix_ms, std::size_t) override {
    return std::vector<storage::delivery>{};
  }
  result<std::vector<std::pair<std::string, std::string>>>
  list_endpoints() override {
    std::vector<std::pair<std::string, std::string>> all;
    if (!endpoint_id.empty())
      all.emplace_back(endpoint_id, endpoint_definition);
    return all;
  }
  result<std::optional<std::string>>
  get_endpoint(std::string_view id) override {
    if (!endpoint_id.empty() && id == endpoint_id)
      return std::optional<std::string>{endpoint_definition};
    return std::optional<std::string>{};
  }

  /// One stored endpoint, when set (its definition in the stored form).
  std::string endpoint_id;
  std::string endpoint_definition;
  result<storage::endpoint_backlog> backlog_of(std::string_view) override {
    return storage::endpoint_backlog{};
  }
  std::uint64_t approximate_bytes() override { return 0; }
  result<std::vector<std::string>> escalations_of(std::string_view) override {
    return std::vector<std::string>{};
  }
  result<std::vector<std::string>> members_of(std::string_view) override {
    return std::vector<std::string>{};
  }
  status for_each_event_since(
      unix_ms,
      const std::function<bool(const storage::event_record&)>&) override {
    return {};
  }
  result<storage::event_page>
  list_events(const storage::event_query&) override {
    return storage::event_page{};
  }
  status read_log(
      std::uint64_t,
      const std::function<bool(std::uint64_t, std::string_view)>&) override {
    return {};
  }
  storage::cluster_store* cluster() override { return in_cluster; }
  /// What cluster() answers (none: a node alone).
  storage::cluster_store* in_cluster = nullptr;
};

} // namespace tocsin::test
