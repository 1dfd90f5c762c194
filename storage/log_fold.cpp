#include "storage/log_fold.hpp"

#include "common/json_parse.hpp"

#include <nlohmann/json.hpp>

namespace tocsin::storage {

result<std::map<std::string, folded_delivery>> fold_log(store& log) {
  std::map<std::string, folded_delivery> out;
  std::optional<error> failure;
  auto st = log.read_log(0, [&](std::uint64_t seq, std::string_view text) {
    nlohmann::json r;
    if (!parse_json(text, r, nullptr, stored_json_limits) || !r.is_object()) {
      failure = error{"store_corrupt",
                      "unreadable log record " + std::to_string(seq)};
      return false;
    }
    auto id = r.find("delivery_id");
    auto state = r.find("state");
    if (id == r.end() || state == r.end())
      return true; // not a delivery state change
    auto& d = out[id->get<std::string>()];
    if (auto s = delivery_state_from(state->get<std::string>()))
      d.state = *s;
    if (auto a = r.find("attempt"); a != r.end())
      d.attempts = std::max(d.attempts, a->value("number", 0));
    d.reason = r.value("reason", "");
    return true;
  });
  if (!st)
    return st.error();
  if (failure)
    return *failure;
  return out;
}

} // namespace tocsin::storage
