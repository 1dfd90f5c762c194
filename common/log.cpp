#include "common/log.hpp"

#include "common/time.hpp"

#include <atomic>
#include <cstdio>

#include <nlohmann/json.hpp>

namespace tocsin::log {

namespace {

std::atomic<level> min_level{level::info};

constexpr const char* names[] = {"debug", "info", "warn", "error"};

} // namespace

std::optional<level> level_from(std::string_view name) {
  for (int i = 0; i < 4; ++i)
    if (name == names[i])
      return static_cast<level>(i);
  return std::nullopt;
}

void set_min_level(level lvl) {
  min_level = lvl;
}

bool enabled(level lvl) {
  return lvl >= min_level.load();
}

namespace {

template <class Fields>
void write_line(level lvl, std::string_view msg, const Fields& fields) {
  if (!enabled(lvl))
    return;
  nlohmann::ordered_json j;
  j["ts"] = format_rfc3339(now_ms());
  j["level"] = names[static_cast<int>(lvl)];
  j["msg"] = msg;
  for (auto& [k, v] : fields)
    j[std::string{k}] = v;
  auto line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  line += '\n';
  // One fwrite per record: lines from different threads do not interleave.
  std::fwrite(line.data(), 1, line.size(), stderr);
}

} // namespace

void write(level lvl, std::string_view msg,
           std::initializer_list<field> fields) {
  write_line(lvl, msg, fields);
}

void write(level lvl, std::string_view msg, const std::vector<field>& fields) {
  write_line(lvl, msg, fields);
}

} // namespace tocsin::log
