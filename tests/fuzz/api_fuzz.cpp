// libFuzzer target for the request path a client controls: the API router
// (auth, routing, query parsing) and event validation, with an engine and a
// store that accept everything. Input: "METHOD\nTARGET\nCONTENT-TYPE\n
// AUTHORIZATION\nIDEMPOTENCY-KEY\nBODY".
#include "app/api.hpp"

#include "common/encoding.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace {

using namespace tocsin;

class fake_engine final : public actors::engine {
public:
  void ingest(std::vector<actors::new_event> events,
              actors::ingest_callback done, std::string) override {
    std::vector<std::string> ids;
    for (auto& e : events)
      ids.push_back(e.id);
    done(std::move(ids));
  }
  void replay(actors::replay_selection sel,
              actors::replay_callback done) override {
    done(sel.delivery_ids.size());
  }
  void drain(std::chrono::milliseconds) override {}
  const actors::recovery_report& recovered() const override { return report_; }

private:
  actors::recovery_report report_;
};

class empty_log final : public storage::event_log {
public:
  status commit(const storage::write_set&, storage::durability) override {
    return {};
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
  status
  for_each_pending(const std::function<void(storage::delivery&&)>&) override {
    return {};
  }
  result<std::vector<storage::delivery>>
  list_dead_letters(std::string_view, std::size_t) override {
    return std::vector<storage::delivery>{};
  }
  status for_each_record(
      std::uint64_t,
      const std::function<bool(std::uint64_t, std::string_view)>&) override {
    return {};
  }
};

std::string_view next_line(std::string_view& in) {
  auto nl = in.find('\n');
  auto line = in.substr(0, nl);
  in = nl == std::string_view::npos ? std::string_view{} : in.substr(nl + 1);
  return line;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  static fake_engine engine;
  static empty_log log;
  static app::api handler{
      engine, log,
      app::authenticator{{{"admin", hex_encode(sha256("token")), "admin"}}},
      app::api_options{"https://audit.example/receipts/{receipt_id}"}};
  std::string_view in{reinterpret_cast<const char*>(data), size};
  app::api_request req;
  req.method = next_line(in);
  req.target = next_line(in);
  req.content_type = next_line(in);
  req.authorization = next_line(in);
  req.idempotency_key = next_line(in);
  req.body = in;
  bool answered = false;
  handler.handle(std::move(req), [&](app::api_response resp) {
    answered = true;
    if (resp.status < 200 || resp.status > 599)
      __builtin_trap();
  });
  if (!answered) // every request is answered exactly once (synchronously here)
    __builtin_trap();
  return 0;
}
