#include "common/metrics.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <stdexcept>

namespace tocsin::metrics {

namespace {

void append_escaped(std::string& out, std::string_view v) {
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
}

void append_number(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
    return;
  }
  if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
    return;
  }
  char buf[32];
  // Whole numbers as integers ("1000000", not "1e+06"): easier to read, and
  // what a count is.
  auto [end, ec] =
      v == std::trunc(v) && std::abs(v) < 1e15
          ? std::to_chars(buf, buf + sizeof buf, static_cast<std::int64_t>(v))
          : std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, ec == std::errc{} ? end : buf);
}

void append_number(std::string& out, std::uint64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

const char* type_name(kind k) {
  switch (k) {
  case kind::counter:
    return "counter";
  case kind::gauge:
    return "gauge";
  case kind::histogram:
    return "histogram";
  }
  return "untyped";
}

std::string label_text(const std::vector<std::string>& names,
                       const std::vector<std::string>& values,
                       std::string_view extra) {
  std::string out;
  for (std::size_t i = 0; i < names.size() && i < values.size(); ++i) {
    out += out.empty() ? "{" : ",";
    out += names[i];
    out += "=\"";
    append_escaped(out, values[i]);
    out += '"';
  }
  if (!extra.empty()) {
    out += out.empty() ? "{" : ",";
    out += extra;
  }
  if (!out.empty())
    out += '}';
  return out;
}

void header_text(std::string& out, std::string_view name, std::string_view help,
                 kind k) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type_name(k);
  out += '\n';
}

} // namespace

histogram::histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)),
      buckets_(new std::atomic<std::uint64_t>[bounds_.size() + 1]) {
  std::sort(bounds_.begin(), bounds_.end());
  for (std::size_t i = 0; i <= bounds_.size(); ++i)
    buckets_[i].store(0, std::memory_order_relaxed);
}

void histogram::observe(double seconds) noexcept {
  if (!(seconds >= 0))
    seconds = 0;
  auto i = static_cast<std::size_t>(
      std::lower_bound(bounds_.begin(), bounds_.end(), seconds) -
      bounds_.begin());
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_ns_.fetch_add(static_cast<std::uint64_t>(std::min(seconds, 1e9) * 1e9),
                    std::memory_order_relaxed);
}

std::vector<std::uint64_t> histogram::counts() const {
  std::vector<std::uint64_t> out(bounds_.size() + 1);
  for (std::size_t i = 0; i < out.size(); ++i)
    out[i] = buckets_[i].load(std::memory_order_relaxed);
  return out;
}

std::vector<double> latency_buckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
          0.25,  0.5,    1,     2.5,  5,     10,   30};
}

std::string family_base::labels(const std::vector<std::string>& values,
                                std::string_view extra) const {
  return label_text(label_names_, values, extra);
}

void family_base::header(std::string& out) const {
  header_text(out, name_, help_, kind_);
}

template <class Metric>
void family<Metric>::render(std::string& out) const {
  header(out);
  std::lock_guard lock{mtx_};
  for (auto& [values, m] : children_) {
    if constexpr (std::is_same_v<Metric, histogram>) {
      auto counts = m->counts();
      std::uint64_t cumulative = 0;
      for (std::size_t i = 0; i < counts.size(); ++i) {
        cumulative += counts[i];
        std::string le = "le=\"";
        if (i < m->bounds().size())
          append_number(le, m->bounds()[i]);
        else
          le += "+Inf";
        le += '"';
        out += name_;
        out += "_bucket";
        out += labels(values, le);
        out += ' ';
        append_number(out, cumulative);
        out += '\n';
      }
      out += name_ + "_sum" + labels(values) + ' ';
      append_number(out, m->sum());
      out += '\n';
      out += name_ + "_count" + labels(values) + ' ';
      append_number(out, cumulative);
      out += '\n';
    } else {
      out += name_;
      out += labels(values);
      out += ' ';
      if constexpr (std::is_same_v<Metric, gauge>)
        append_number(out, static_cast<double>(m->value()));
      else
        append_number(out, m->value());
      out += '\n';
    }
  }
}

template class family<counter>;
template class family<gauge>;
template class family<histogram>;

void render_family(std::string& out, std::string_view name,
                   std::string_view help, kind k,
                   const std::vector<std::string>& label_names,
                   const std::vector<sample>& samples) {
  header_text(out, name, help, k);
  for (auto& s : samples) {
    out += name;
    out += label_text(label_names, s.label_values, {});
    out += ' ';
    append_number(out, s.value);
    out += '\n';
  }
}

template <class Metric>
family<Metric>& registry::get(std::string name, std::string help, kind k,
                              std::vector<std::string> label_names,
                              std::vector<double> bounds) {
  std::lock_guard lock{mtx_};
  if (auto it = by_name_.find(name); it != by_name_.end()) {
    auto* f = dynamic_cast<family<Metric>*>(it->second);
    if (!f)
      throw std::logic_error{"metric " + name + " registered as another kind"};
    return *f;
  }
  auto f = std::make_unique<family<Metric>>(
      name, std::move(help), k, std::move(label_names), std::move(bounds));
  auto& ref = *f;
  by_name_.emplace(std::move(name), f.get());
  families_.push_back(std::move(f));
  return ref;
}

family<counter>& registry::counters(std::string name, std::string help,
                                    std::vector<std::string> label_names) {
  return get<counter>(std::move(name), std::move(help), kind::counter,
                      std::move(label_names));
}

family<gauge>& registry::gauges(std::string name, std::string help,
                                std::vector<std::string> label_names) {
  return get<gauge>(std::move(name), std::move(help), kind::gauge,
                    std::move(label_names));
}

family<histogram>& registry::histograms(std::string name, std::string help,
                                        std::vector<std::string> label_names,
                                        std::vector<double> bounds) {
  return get<histogram>(std::move(name), std::move(help), kind::histogram,
                        std::move(label_names), std::move(bounds));
}

void registry::add_collector(std::function<void(std::string& out)> collect) {
  std::lock_guard lock{mtx_};
  collectors_.push_back(std::move(collect));
}

std::string registry::render() const {
  std::vector<family_base*> families;
  std::vector<std::function<void(std::string&)>> collectors;
  {
    std::lock_guard lock{mtx_};
    for (auto& f : families_)
      families.push_back(f.get());
    collectors = collectors_;
  }
  std::string out;
  for (auto* f : families)
    f->render(out);
  for (auto& c : collectors)
    c(out);
  return out;
}

registry& global() {
  static registry r;
  return r;
}

} // namespace tocsin::metrics
