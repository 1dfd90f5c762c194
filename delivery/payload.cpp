#include "delivery/payload.hpp"

#include "common/encoding.hpp"
#include "common/json_parse.hpp"

#include <algorithm>
#include <vector>

#include <nlohmann/json.hpp>

namespace tocsin::delivery {

namespace {

using json = nlohmann::ordered_json;

constexpr std::string_view ellipsis = "\xe2\x80\xa6"; // …

/// Values this small (as JSON) are not worth cutting.
constexpr std::size_t not_worth_cutting = 8;
/// Each cut keeps this much below the target, for the ellipsis and quotes.
constexpr std::size_t cut_slack = 16;

/// Cuts `s` to at most `max_bytes` bytes on a UTF-8 boundary, marking the cut.
std::string cut(const std::string& s, std::size_t max_bytes) {
  if (s.size() <= max_bytes)
    return s;
  std::size_t keep =
      max_bytes > ellipsis.size() ? max_bytes - ellipsis.size() : 0;
  std::size_t end = 0;
  while (end < keep) {
    auto n = utf8_sequence_length(s, end);
    if (n == 0 || end + n > keep)
      break;
    end += n;
  }
  return s.substr(0, end) + std::string{ellipsis};
}

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

/// `s` cut so that it is at least `over` bytes shorter as JSON (every raw
/// byte removed removes at least one byte of its JSON form).
std::string shorten(const std::string& s, std::size_t over) {
  return cut(s, s.size() > over + cut_slack ? s.size() - over - cut_slack : 0);
}

} // namespace

std::string fit_payload(std::string_view event_json, std::size_t max_bytes) {
  if (event_json.size() <= max_bytes)
    return std::string{event_json};
  json j;
  if (!parse_json(event_json, j, nullptr, stored_json_limits) || !j.is_object())
    return std::string{event_json}; // not ours to fix; validated upstream
  j["truncated"] = true;
  auto& details = j["details"];
  if (!details.is_object())
    details = json::object();
  // The document's size is kept as a running total: replacing one value
  // changes it by exactly the difference of that value's JSON sizes, so
  // each value is dumped once and the whole document twice — linear in the
  // payload, whatever the number of details.
  auto size = dump(j).size();
  struct candidate {
    json* value;
    std::size_t size; ///< as JSON
  };
  std::vector<candidate> order;
  order.reserve(details.size());
  for (auto& [key, value] : details.items())
    order.push_back({&value, dump(value).size()});
  // Largest first; among equals, the earlier key (stable).
  std::stable_sort(order.begin(), order.end(),
                   [](auto& a, auto& b) { return a.size > b.size; });
  for (auto& c : order) {
    if (size <= max_bytes || c.size <= not_worth_cutting)
      break;
    auto& v = *c.value;
    if (v.is_string()) {
      auto& s = v.get_ref<const std::string&>();
      if (s.size() <= ellipsis.size())
        continue;
      v = shorten(s, size - max_bytes);
    } else {
      v = "[truncated]";
    }
    size = size - c.size + dump(v).size();
  }
  // So many members that their keys alone do not fit: drop members from the
  // last, as many as needed.
  while (size > max_bytes && !details.empty()) {
    auto last = std::prev(details.end());
    auto member = dump(json(last.key())).size() + 1 + dump(last.value()).size();
    size -= member + (details.size() > 1 ? 1 : 0); // and its comma
    details.erase(last);
  }
  if (size > max_bytes)
    if (auto it = j.find("summary"); it != j.end() && it->is_string()) {
      auto before = dump(*it).size();
      *it = shorten(it->get<std::string>(), size - max_bytes);
      size = size - before + dump(*it).size();
    }
  return dump(j);
}

} // namespace tocsin::delivery
