#include "net/request_writer.hpp"

#include "common/encoding.hpp"

#include <algorithm>
#include <array>

namespace tocsin::net {

namespace {

bool clients_own(std::string_view name) {
  constexpr std::array<std::string_view, 4> own{
      "host", "content-length", "transfer-encoding", "connection"};
  return std::any_of(own.begin(), own.end(), [&](std::string_view o) {
    return ascii_iequals(name, o);
  });
}

void add(std::string& out, std::string_view name, std::string_view value) {
  out += name;
  out += ": ";
  out += value;
  out += "\r\n";
}

} // namespace

bool replaced_later(
    const std::vector<std::pair<std::string, std::string>>& headers,
    std::size_t i) {
  for (auto j = i + 1; j < headers.size(); ++j)
    if (ascii_iequals(headers[i].first, headers[j].first))
      return true;
  return false;
}

std::string write_request(const outbound_request& req,
                          std::string_view user_agent) {
  auto& headers = req.headers;
  bool own_agent = std::any_of(headers.begin(), headers.end(), [](auto& h) {
    return ascii_iequals(h.first, "user-agent");
  });
  bool with_length = !req.body.empty() || req.method == "POST" ||
                     req.method == "PUT" || req.method == "OPTIONS";

  std::string out;
  std::size_t size = req.method.size() + req.target.target.size() +
                     req.target.host.size() + user_agent.size() +
                     req.body.size() + 96;
  for (auto& [name, value] : headers)
    size += name.size() + value.size() + 4;
  out.reserve(size);
  out += req.method;
  out += ' ';
  out += req.target.target;
  out += " HTTP/1.1\r\n";
  add(out, "Host", req.target.authority());
  if (!own_agent)
    add(out, "User-Agent", user_agent);
  for (std::size_t i = 0; i < headers.size(); ++i)
    if (!clients_own(headers[i].first) && !replaced_later(headers, i))
      add(out, headers[i].first, headers[i].second);
  if (with_length)
    add(out, "Content-Length", std::to_string(req.body.size()));
  out += "\r\n";
  out += req.body;
  return out;
}

} // namespace tocsin::net
