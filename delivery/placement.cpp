#include "delivery/placement.hpp"

#include <algorithm>
#include <cstdint>
#include <string_view>

namespace tocsin::delivery {

namespace {

/// FNV-1a then a finaliser (splitmix64): the same on every node and build,
/// well spread for ids that differ in one character.
std::uint64_t score(std::string_view node, std::string_view name) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  auto mix = [&h](std::string_view s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 0x100000001b3ULL;
    }
  };
  mix(node);
  h ^= 0xff; // a separator no id holds: ("ab","c") != ("a","bc")
  h *= 0x100000001b3ULL;
  mix(name);
  h += 0x9e3779b97f4a7c15ULL;
  h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;
  h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;
  return h ^ (h >> 31);
}

void sort_unique(std::vector<std::string>& v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
}

} // namespace

std::map<std::string, std::string> place(std::vector<std::string> names,
                                         std::vector<std::string> nodes) {
  std::map<std::string, std::string> out;
  sort_unique(names);
  sort_unique(nodes);
  if (nodes.empty())
    return out;
  auto cap = (names.size() + nodes.size() - 1) / nodes.size();
  std::map<std::string_view, std::size_t> load;
  std::vector<std::pair<std::uint64_t, std::string_view>> ranking;
  ranking.reserve(nodes.size());
  for (auto& name : names) {
    ranking.clear();
    for (auto& node : nodes)
      ranking.emplace_back(score(node, name), node);
    // Highest score first; ties (never in practice) by node id.
    std::sort(ranking.begin(), ranking.end(), [](auto& a, auto& b) {
      return a.first != b.first ? a.first > b.first : a.second < b.second;
    });
    for (auto& [s, node] : ranking)
      if (load[node] < cap) {
        ++load[node];
        out.emplace(name, std::string{node});
        break;
      }
  }
  return out;
}

} // namespace tocsin::delivery
