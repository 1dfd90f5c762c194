#include "api/connection_table.hpp"

namespace tocsin::api {

std::string_view to_string(conn_phase p) {
  switch (p) {
  case conn_phase::closing:
    return "closing";
  case conn_phase::head:
    return "head";
  case conn_phase::idle:
    return "idle";
  case conn_phase::body:
    return "body";
  case conn_phase::busy:
    break;
  }
  return "busy";
}

connection_table::admission connection_table::admit(id_type id,
                                                    std::string_view address) {
  admission out;
  if (count_from(address) >= max_per_address_) {
    out.refused = refusal::per_address;
    return out;
  }
  if (entries_.size() >= max_) {
    for (std::size_t p = 0; p < ranked && !out.evict; ++p)
      if (!by_phase_[p].empty()) {
        out.evict = by_phase_[p].front();
        out.evicted_phase = static_cast<conn_phase>(p);
      }
    if (!out.evict) {
      out.refused = refusal::full;
      return out;
    }
    erase(entries_.find(*out.evict));
  }
  auto& list = by_phase_[static_cast<std::size_t>(conn_phase::head)];
  list.push_back(id);
  entries_[id] =
      entry{conn_phase::head, std::prev(list.end()), std::string{address}};
  ++per_address_[std::string{address}];
  return out;
}

void connection_table::unlink(entry& e) {
  if (e.phase != conn_phase::busy)
    by_phase_[static_cast<std::size_t>(e.phase)].erase(e.pos);
}

bool connection_table::enter(id_type id, conn_phase phase) {
  auto it = entries_.find(id);
  if (it == entries_.end())
    return false;
  auto& e = it->second;
  unlink(e);
  e.phase = phase;
  if (phase != conn_phase::busy) {
    auto& list = by_phase_[static_cast<std::size_t>(phase)];
    list.push_back(id);
    e.pos = std::prev(list.end());
  }
  return true;
}

void connection_table::erase(std::unordered_map<id_type, entry>::iterator it) {
  unlink(it->second);
  auto count = per_address_.find(it->second.address);
  if (count != per_address_.end() && --count->second == 0)
    per_address_.erase(count);
  entries_.erase(it);
}

void connection_table::remove(id_type id) {
  if (auto it = entries_.find(id); it != entries_.end())
    erase(it);
}

std::size_t connection_table::count_from(std::string_view address) const {
  auto it = per_address_.find(std::string{address});
  return it == per_address_.end() ? 0 : it->second;
}

std::optional<conn_phase> connection_table::phase_of(id_type id) const {
  auto it = entries_.find(id);
  if (it == entries_.end())
    return std::nullopt;
  return it->second.phase;
}

} // namespace tocsin::api
