#include "transports/payload.hpp"

#include "common/encoding.hpp"

#include <nlohmann/json.hpp>

namespace tocsin::transports {

namespace {

using json = nlohmann::ordered_json;

constexpr std::string_view ellipsis = "\xe2\x80\xa6"; // …

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

std::size_t dumped_size(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace).size();
}

} // namespace

std::string fit_payload(std::string_view event_json, std::size_t max_bytes) {
  if (event_json.size() <= max_bytes)
    return std::string{event_json};
  auto j = json::parse(event_json, nullptr, false);
  if (!j.is_object())
    return std::string{event_json}; // not ours to fix; validated upstream
  j["truncated"] = true;
  auto size = dumped_size(j);
  auto& details = j["details"];
  if (!details.is_object())
    details = json::object();
  // Largest details value first: shrink it by what is over, or to a marker
  // if it is not a string; repeat until the payload fits.
  while (size > max_bytes) {
    json::iterator largest = details.end();
    std::size_t largest_size = 0;
    for (auto it = details.begin(); it != details.end(); ++it) {
      auto n = dumped_size(it.value());
      if (n > largest_size &&
          !(it->is_string() &&
            it->get_ref<const std::string&>().size() <= ellipsis.size())) {
        largest = it;
        largest_size = n;
      }
    }
    if (largest == details.end() || largest_size <= 8)
      break;
    auto over = size - max_bytes;
    if (largest->is_string()) {
      auto& s = largest->get_ref<const std::string&>();
      auto target = s.size() > over + 16 ? s.size() - over - 16 : 0;
      *largest = cut(s, target);
    } else {
      *largest = "[truncated]";
    }
    size = dumped_size(j);
  }
  if (size > max_bytes && j.contains("summary") && j["summary"].is_string()) {
    auto s = j["summary"].get<std::string>();
    auto over = size - max_bytes;
    j["summary"] = cut(s, s.size() > over + 16 ? s.size() - over - 16 : 0);
  }
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

} // namespace tocsin::transports
