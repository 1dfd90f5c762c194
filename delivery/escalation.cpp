#include "delivery/escalation.hpp"

#include "common/event_types.hpp"
#include "common/json_parse.hpp"

#include <algorithm>
#include <array>
#include <limits>
#include <list>
#include <optional>
#include <set>
#include <unordered_map>
#include <utility>

namespace tocsin::delivery {

namespace {

using json = nlohmann::json;

constexpr std::string_view details_prefix = "details.";
constexpr std::size_t max_summary_bytes = 1024; // what the API accepts
constexpr std::array<std::string_view, 6> placeholders{
    "agent_id", "group", "count", "window", "rule", "type"};

bool is_name_char(char c, bool dot_ok) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '_' || c == '-' || (dot_ok && c == '.');
}

bool is_name(std::string_view s, bool dot_ok) {
  return !s.empty() && s.size() <= 64 &&
         std::all_of(s.begin(), s.end(),
                     [&](char c) { return is_name_char(c, dot_ok); });
}

std::optional<std::size_t> type_index(std::string_view type) {
  for (std::size_t i = 0; i < event_types.size(); ++i)
    if (event_types[i] == type)
      return i;
  return std::nullopt;
}

/// Calls `f(name)` for each {name} of a template; false if `f` does.
template <class F>
bool for_each_placeholder(std::string_view tpl, F&& f) {
  // As escalate() fills it in: a '{' without a '}' after it is text.
  for (auto i = tpl.find('{'); i != std::string_view::npos;) {
    auto end = tpl.find('}', i);
    if (end == std::string_view::npos)
      break;
    if (!f(tpl.substr(i + 1, end - i - 1)))
      return false;
    i = tpl.find('{', end + 1);
  }
  return true;
}

/// "600", "0.5", "0.001": seconds as people write them.
std::string seconds_text(unix_ms ms) {
  auto text = std::to_string(ms / 1000);
  if (auto frac = ms % 1000) {
    auto digits = std::to_string(frac);
    digits.insert(0, 3 - digits.size(), '0');
    digits.erase(digits.find_last_not_of('0') + 1);
    text += "." + digits;
  }
  return text;
}

nlohmann::ordered_json seconds_json(unix_ms ms) {
  if (ms % 1000 == 0)
    return ms / 1000;
  return static_cast<double>(ms) / 1000.0;
}

void cut_utf8(std::string& s, std::size_t max) {
  if (s.size() <= max)
    return;
  auto cut = max;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80)
    --cut;
  s.resize(cut);
}

struct counted {
  unix_ms at;
  std::string id;
};

struct group_state;

/// A group's place among its rule's groups by how far it is from firing:
/// the fewest events in its episode first, then the one seen least recently
/// (`seq`: the order of touches). What is forgotten first at the limit.
struct distance {
  std::size_t count;
  std::uint64_t seq;
  group_state* group;

  bool operator<(const distance& o) const {
    return count != o.count ? count < o.count : seq < o.seq;
  }
};

struct group_state {
  std::string key;
  /// The episode's newest events inside the window, oldest first: at most
  /// threshold - 1 (with the next event that makes threshold).
  std::vector<counted> recent;
  bool fired = false;
  unix_ms fired_at = 0;
  /// The last event or derived event of this group (its place in `order`).
  unix_ms touched = 0;
  /// Its entry in rule_state::by_distance (count and seq as last set).
  std::set<distance>::iterator place;
};

struct rule_state {
  const escalation_rule* rule;
  std::string_view details_key; ///< empty: grouped by agent_id
  unix_ms keep;                 ///< max(window, suppress_for)
  std::size_t max_groups;
  std::size_t forgotten = 0;
  /// Least recently touched first: touched times only grow, so the groups
  /// to prune are at the front.
  std::list<group_state> order;
  /// Keys view the strings in `order`'s nodes, which never move.
  std::unordered_map<std::string_view, std::list<group_state>::iterator> index;
  /// Every group, furthest from firing first.
  std::set<distance> by_distance;
};

} // namespace

status check_rule(const escalation_rule& r) {
  auto bad = [](std::string field, std::string what) -> status {
    return error{"invalid_rule", std::move(what), std::move(field)};
  };
  if (!is_name(r.name, true))
    return bad("name", "must be 1 to 64 letters, digits, '.', '_' or '-'");
  if (r.event_types.empty())
    return bad("event_types", "must name at least one event type");
  for (std::size_t i = 0; i < r.event_types.size(); ++i) {
    auto& t = r.event_types[i];
    if (!is_event_type(t))
      return bad("event_types",
                 "has an unknown event type '" + t +
                     "' (known: policy.denied, approval.required, "
                     "content.detected, anomaly.detected, system.health)");
    if (std::find(r.event_types.begin(), r.event_types.begin() + i, t) !=
        r.event_types.begin() + i)
      return bad("event_types", "names '" + t + "' twice");
  }
  if (r.threshold < 2 || r.threshold > max_escalation_threshold)
    return bad("threshold", "must be between 2 and " +
                                std::to_string(max_escalation_threshold));
  if (r.window <= 0)
    return bad("window", "must be more than 0 seconds");
  if (r.suppress_for < 0)
    return bad("suppress_for", "must not be negative");
  std::string_view g = r.group_by;
  if (g != "agent_id" &&
      !(g.substr(0, details_prefix.size()) == details_prefix &&
        is_name(g.substr(details_prefix.size()), false)))
    return bad("group_by",
               "must be \"agent_id\" or \"details.<key>\" (<key>: 1 to 64 "
               "letters, digits, '_' or '-')");
  if (!severity_rank(r.severity))
    return bad("severity", "must be one of critical, high, medium, low, info");
  if (r.summary.size() > max_summary_bytes)
    return bad("summary", "must be at most " +
                              std::to_string(max_summary_bytes) + " bytes");
  std::string unknown;
  if (!for_each_placeholder(r.summary, [&](std::string_view name) {
        unknown = name;
        return std::find(placeholders.begin(), placeholders.end(), name) !=
               placeholders.end();
      }))
    return bad("summary", "has an unknown placeholder {" + unknown +
                              "} (known: {agent_id}, {group}, {count}, "
                              "{window}, {rule}, {type})");
  return {};
}

struct escalator::impl {
  std::vector<escalation_rule> defs;
  std::vector<rule_state> rules; ///< parallel to defs, never resized
  /// Per event type (common/event_types.hpp order): the rules counting it,
  /// and whether one of them needs the details.
  std::array<std::vector<rule_state*>, event_types.size()> by_type;
  std::array<bool, event_types.size()> needs_details{};
  escalator_limits limits;
  unix_ms clock = std::numeric_limits<unix_ms>::min();
  std::size_t forgotten = 0;
  std::uint64_t touches = 0;

  std::vector<derived_event> process(const observed_event& e, bool live,
                                     std::vector<counted_in>* where);
  void apply_derived(const std::vector<rule_state*>& rs, const json& esc,
                     unix_ms t);
  group_state& touch(rule_state& r, std::string_view key, unix_ms t);
  /// Moves `g` to its place by distance after its events changed.
  void settle(rule_state& r, group_state& g);
  static void drop(rule_state& r, std::list<group_state>::iterator it);
  static void prune(rule_state& r, unix_ms now, std::size_t most);
  static derived_event escalate(const rule_state& r, group_state& g,
                                const observed_event& e, unix_ms t);
};

escalator::escalator(std::vector<escalation_rule> rules,
                     escalator_limits limits)
    : impl_(std::make_unique<impl>()) {
  auto& m = *impl_;
  m.defs = std::move(rules);
  m.limits = limits;
  m.limits.max_groups_per_rule =
      std::max<std::size_t>(1, limits.max_groups_per_rule);
  m.rules.reserve(m.defs.size());
  for (auto& def : m.defs) {
    auto& r = m.rules.emplace_back();
    r.rule = &def;
    if (def.group_by != "agent_id")
      r.details_key =
          std::string_view{def.group_by}.substr(details_prefix.size());
    r.keep = std::max(def.window, def.suppress_for);
    r.max_groups =
        def.max_groups > 0 ? def.max_groups : m.limits.max_groups_per_rule;
    for (auto& t : def.event_types)
      if (auto i = type_index(t)) {
        m.by_type[*i].push_back(&r);
        m.needs_details[*i] = m.needs_details[*i] || !r.details_key.empty();
      }
  }
}

escalator::~escalator() = default;
escalator::escalator(escalator&&) noexcept = default;
escalator& escalator::operator=(escalator&&) noexcept = default;

std::vector<derived_event>
escalator::observe(const observed_event& e, std::vector<counted_in>* counted) {
  if (counted)
    counted->clear();
  return impl_->process(e, true, counted);
}

void escalator::restore(const observed_event& e) {
  // Nothing fires here: whether the escalation was raised before the
  // restart is told by its derived event, which follows in the log.
  (void)impl_->process(e, false, nullptr);
}

std::size_t escalator::adopt(escalator&& other) {
  auto& m = *impl_;
  auto& o = *other.impl_;
  std::size_t taken = 0;
  for (auto& r : m.rules) {
    if (!r.index.empty())
      continue;
    auto same = std::find_if(
        o.rules.begin(), o.rules.end(),
        [&](const rule_state& theirs) { return *theirs.rule == *r.rule; });
    if (same == o.rules.end())
      continue;
    // Swapped with this rule's empty ones: swap moves no element and keeps
    // every iterator, pointer and reference to them valid (the index's
    // keys and list positions, the distances' group pointers, each group's
    // place). This rule's own settings are those of `other`'s.
    r.order.swap(same->order);
    r.index.swap(same->index);
    r.by_distance.swap(same->by_distance);
    std::swap(r.forgotten, same->forgotten);
    ++taken;
  }
  if (taken == 0)
    return 0;
  // Touches order each rule's groups: later ones must come after every one
  // taken over.
  m.touches = std::max(m.touches, o.touches);
  m.clock = std::max(m.clock, o.clock);
  m.forgotten = 0;
  for (auto& r : m.rules)
    m.forgotten += r.forgotten;
  o.forgotten = 0;
  for (auto& r : o.rules)
    o.forgotten += r.forgotten;
  return taken;
}

void escalator::prune(unix_ms now) {
  for (auto& r : impl_->rules)
    impl::prune(r, now, std::numeric_limits<std::size_t>::max());
}

unix_ms escalator::horizon() const {
  unix_ms h = 0;
  for (auto& r : impl_->rules)
    h = std::max(h, r.keep);
  return h;
}

bool escalator::empty() const {
  return impl_->rules.empty();
}

const std::vector<escalation_rule>& escalator::rules() const {
  return impl_->defs;
}

std::size_t escalator::groups() const {
  std::size_t n = 0;
  for (auto& r : impl_->rules)
    n += r.index.size();
  return n;
}

std::size_t escalator::forgotten_groups() const {
  return impl_->forgotten;
}

std::size_t escalator::forgotten_groups(std::size_t rule_index) const {
  return impl_->rules.at(rule_index).forgotten;
}

std::vector<derived_event>
escalator::impl::process(const observed_event& e, bool live,
                         std::vector<counted_in>* where) {
  clock = std::max(clock, e.accepted_at);
  const unix_ms t = clock;
  auto ti = type_index(e.type);
  if (!ti || by_type[*ti].empty())
    return {};
  auto& rs = by_type[*ti];

  // The body is normalized (nlohmann writes keys unescaped), so a derived
  // event's body holds the key "escalation" literally.
  json doc;
  const json* details = nullptr;
  bool maybe_derived = e.body.find("\"escalation\"") != std::string_view::npos;
  if ((maybe_derived || needs_details[*ti]) &&
      parse_json(e.body, doc, nullptr, stored_json_limits) && doc.is_object())
    if (auto it = doc.find("details"); it != doc.end() && it->is_object())
      details = &*it;
  if (details)
    if (auto esc = details->find("escalation");
        esc != details->end() && esc->is_object()) {
      apply_derived(rs, *esc, t);
      return {};
    }

  std::vector<derived_event> out;
  for (auto* r : rs) {
    std::string_view key = e.agent_id;
    if (!r->details_key.empty()) {
      key = {};
      if (details)
        if (auto v = details->find(r->details_key);
            v != details->end() && v->is_string())
          key = v->get_ref<const std::string&>();
    }
    if (key.empty() || key.size() > max_escalation_group_bytes)
      continue;
    // A few expired groups per event keep memory near what is live without
    // ever stopping for long.
    prune(*r, t, 4);
    auto& g = touch(*r, key, t);
    if (where)
      where->push_back({r->rule->name, g.key});
    const auto& rule = *r->rule;
    auto in_window = [&](const counted& c) { return t - c.at < rule.window; };
    auto first_in = std::find_if(g.recent.begin(), g.recent.end(), in_window);
    g.recent.erase(g.recent.begin(), first_in);
    bool reached =
        g.recent.size() + 1 >= static_cast<std::size_t>(rule.threshold);
    bool suppressed = g.fired && t - g.fired_at < rule.suppress_for;
    if (live && reached && !suppressed) {
      out.push_back(escalate(*r, g, e, t));
      g.recent.clear(); // the episode is over: these are never counted again
      g.fired = true;
      g.fired_at = t;
      settle(*r, g);
      continue;
    }
    // In restore() a reached threshold may have fired before the restart;
    // its derived event, later in the log, then clears what it counted.
    g.recent.push_back(counted{t, std::string{e.id}});
    auto keep = static_cast<std::size_t>(rule.threshold - 1);
    if (g.recent.size() > keep)
      g.recent.erase(g.recent.begin(),
                     g.recent.begin() +
                         static_cast<std::ptrdiff_t>(g.recent.size() - keep));
    settle(*r, g);
  }
  return out;
}

void escalator::impl::apply_derived(const std::vector<rule_state*>& rs,
                                    const json& esc, unix_ms t) {
  auto str = [&](const char* k) -> std::string_view {
    auto it = esc.find(k);
    return it != esc.end() && it->is_string()
               ? std::string_view{it->get_ref<const std::string&>()}
               : std::string_view{};
  };
  auto name = str("rule");
  auto group = str("group");
  auto last_at = parse_rfc3339(str("last_at"));
  auto ids_it = esc.find("event_ids");
  if (name.empty() || group.empty() ||
      group.size() > max_escalation_group_bytes || !last_at ||
      ids_it == esc.end() || !ids_it->is_array())
    return;
  for (auto* r : rs) {
    if (r->rule->name != name)
      continue;
    std::vector<std::string_view> ids;
    for (auto& id : *ids_it)
      if (id.is_string())
        ids.push_back(id.get_ref<const std::string&>());
    auto& g = touch(*r, group, t);
    auto fired_at = std::min(*last_at, t);
    g.fired_at = g.fired ? std::max(g.fired_at, fired_at) : fired_at;
    g.fired = true;
    // It counted the group's events up to the newest it lists (the list
    // holds only the newest max_listed_event_ids): those and every one
    // before them end with its episode.
    if (!ids.empty()) {
      auto newest =
          std::find_if(g.recent.rbegin(), g.recent.rend(),
                       [&](const counted& c) { return c.id == ids.back(); });
      if (newest != g.recent.rend())
        g.recent.erase(g.recent.begin(), newest.base());
    }
    std::sort(ids.begin(), ids.end());
    std::erase_if(g.recent, [&](const counted& c) {
      return std::binary_search(ids.begin(), ids.end(), c.id);
    });
    settle(*r, g);
    return;
  }
}

group_state& escalator::impl::touch(rule_state& r, std::string_view key,
                                    unix_ms t) {
  if (auto it = r.index.find(key); it != r.index.end()) {
    r.order.splice(r.order.end(), r.order, it->second);
    it->second->touched = t;
    return *it->second;
  }
  if (r.index.size() >= r.max_groups) {
    if (t - r.order.front().touched >= r.keep) {
      drop(r, r.order.begin()); // expired: nothing is lost
    } else {
      // Live state is lost: that of the group furthest from firing.
      ++forgotten;
      ++r.forgotten;
      drop(r, r.index.find(r.by_distance.begin()->group->key)->second);
    }
  }
  auto& g = r.order.emplace_back();
  g.key = std::string{key};
  g.touched = t;
  g.place = r.by_distance.insert({0, ++touches, &g}).first;
  r.index.emplace(g.key, std::prev(r.order.end()));
  return g;
}

void escalator::impl::settle(rule_state& r, group_state& g) {
  auto node = r.by_distance.extract(g.place);
  node.value().count = g.recent.size();
  node.value().seq = ++touches;
  g.place = r.by_distance.insert(std::move(node)).position;
}

void escalator::impl::drop(rule_state& r, std::list<group_state>::iterator it) {
  r.by_distance.erase(it->place);
  r.index.erase(it->key);
  r.order.erase(it);
}

void escalator::impl::prune(rule_state& r, unix_ms now, std::size_t most) {
  while (most-- > 0 && !r.order.empty() &&
         now - r.order.front().touched >= r.keep)
    drop(r, r.order.begin());
}

derived_event escalator::impl::escalate(const rule_state& r, group_state& g,
                                        const observed_event& e, unix_ms t) {
  const auto& rule = *r.rule;
  derived_event d;
  d.rule = rule.name;
  d.group = g.key;
  d.type = std::string{e.type};
  d.severity = rule.severity;
  d.agent_id = r.details_key.empty() ? g.key : std::string{e.agent_id};
  auto count = g.recent.size() + 1;
  d.members.reserve(count * (e.id.size() + 1));
  for (auto& c : g.recent)
    (d.members += c.id) += '\n';
  (d.members += e.id) += '\n';
  // The newest max_listed_event_ids: what fits in a message and a page.
  auto ids = nlohmann::ordered_json::array();
  auto listed_from = count > max_listed_event_ids
                         ? g.recent.size() + 1 - max_listed_event_ids
                         : 0;
  for (auto i = listed_from; i < g.recent.size(); ++i)
    ids.push_back(std::move(g.recent[i].id)); // cleared by the caller
  ids.push_back(std::string{e.id});
  nlohmann::ordered_json esc;
  esc["rule"] = rule.name;
  esc["group"] = g.key;
  esc["count"] = count;
  esc["window"] = seconds_json(rule.window);
  esc["first_at"] = format_rfc3339(g.recent.empty() ? t : g.recent.front().at);
  esc["last_at"] = format_rfc3339(t);
  esc["event_ids"] = std::move(ids);
  if (listed_from > 0)
    esc["event_ids_truncated"] = true;
  d.details["escalation"] = std::move(esc);

  auto fill = [&](std::string_view tpl) {
    std::string s;
    std::size_t i = 0;
    while (i < tpl.size()) {
      auto open = tpl.find('{', i);
      auto close = open == std::string_view::npos ? open : tpl.find('}', open);
      if (close == std::string_view::npos) {
        s.append(tpl.substr(i));
        break;
      }
      s.append(tpl.substr(i, open - i));
      auto name = tpl.substr(open + 1, close - open - 1);
      if (name == "agent_id")
        s += d.agent_id;
      else if (name == "group")
        s += d.group;
      else if (name == "count")
        s += std::to_string(count);
      else if (name == "window")
        s += seconds_text(rule.window);
      else if (name == "rule")
        s += rule.name;
      else if (name == "type")
        s += d.type;
      else
        s.append(tpl.substr(open, close - open + 1));
      i = close + 1;
    }
    return s;
  };
  d.summary = fill(rule.summary.empty() ? default_escalation_summary
                                        : std::string_view{rule.summary});
  if (d.summary.empty()) // a template of only an empty {agent_id}
    d.summary = fill(default_escalation_summary);
  cut_utf8(d.summary, max_summary_bytes);
  return d;
}

} // namespace tocsin::delivery
