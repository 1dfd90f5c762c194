// Prometheus metrics: counters, gauges and histograms in families with a
// fixed set of label names, rendered in the text exposition format (0.0.4).
// Updates are lock-free (a relaxed atomic add): a family's child is looked
// up once (under the family's mutex) and kept by whoever updates it, so no
// event pays for a lock or a map lookup. Label values must come from a
// bounded set (endpoint ids, transports, event types, rule names), never
// from event or agent ids.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace tocsin::metrics {

class counter {
public:
  void add(std::uint64_t n = 1) noexcept {
    v_.fetch_add(n, std::memory_order_relaxed);
  }
  std::uint64_t value() const noexcept {
    return v_.load(std::memory_order_relaxed);
  }

private:
  std::atomic<std::uint64_t> v_{0};
};

class gauge {
public:
  void set(std::int64_t v) noexcept { v_.store(v, std::memory_order_relaxed); }
  void add(std::int64_t n) noexcept {
    v_.fetch_add(n, std::memory_order_relaxed);
  }
  std::int64_t value() const noexcept {
    return v_.load(std::memory_order_relaxed);
  }

private:
  std::atomic<std::int64_t> v_{0};
};

/// Durations in seconds, counted into fixed buckets (upper bounds).
class histogram {
public:
  explicit histogram(std::vector<double> bounds);
  void observe(double seconds) noexcept;

  const std::vector<double>& bounds() const { return bounds_; }
  /// Per bucket (not cumulative), the last one +Inf.
  std::vector<std::uint64_t> counts() const;
  std::uint64_t count() const noexcept {
    return count_.load(std::memory_order_relaxed);
  }
  double sum() const noexcept {
    return static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9;
  }

private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::uint64_t> sum_ns_{0};
};

/// Latency buckets from 1 ms to 30 s.
std::vector<double> latency_buckets();

enum class kind { counter, gauge, histogram };

class family_base {
public:
  family_base(std::string name, std::string help, kind k,
              std::vector<std::string> label_names)
      : name_(std::move(name)), help_(std::move(help)), kind_(k),
        label_names_(std::move(label_names)) {}
  virtual ~family_base() = default;
  virtual void render(std::string& out) const = 0;

protected:
  /// `{a="x",b="y"}` (empty without labels), values escaped.
  std::string labels(const std::vector<std::string>& values,
                     std::string_view extra = {}) const;
  void header(std::string& out) const;

  std::string name_, help_;
  kind kind_;
  std::vector<std::string> label_names_;
};

template <class Metric>
class family final : public family_base {
public:
  family(std::string name, std::string help, kind k,
         std::vector<std::string> label_names, std::vector<double> bounds = {})
      : family_base(std::move(name), std::move(help), k,
                    std::move(label_names)),
        bounds_(std::move(bounds)) {}

  /// The child with these label values (as many as the family has names),
  /// made on first use. The reference stays valid as long as the family.
  Metric& with(std::vector<std::string> values = {}) {
    std::lock_guard lock{mtx_};
    auto& slot = children_[std::move(values)];
    if (!slot)
      slot = make();
    return *slot;
  }

  void render(std::string& out) const override;

private:
  std::unique_ptr<Metric> make() const {
    if constexpr (std::is_same_v<Metric, histogram>)
      return std::make_unique<histogram>(bounds_);
    else
      return std::make_unique<Metric>();
  }

  std::vector<double> bounds_;
  mutable std::mutex mtx_;
  std::map<std::vector<std::string>, std::unique_ptr<Metric>> children_;
};

/// Writes one family's lines at scrape time (values read then, e.g. from
/// the store).
struct sample {
  std::vector<std::string> label_values;
  double value = 0;
};
void render_family(std::string& out, std::string_view name,
                   std::string_view help, kind k,
                   const std::vector<std::string>& label_names,
                   const std::vector<sample>& samples);

class registry {
public:
  family<counter>& counters(std::string name, std::string help,
                            std::vector<std::string> label_names = {});
  family<gauge>& gauges(std::string name, std::string help,
                        std::vector<std::string> label_names = {});
  family<histogram>& histograms(std::string name, std::string help,
                                std::vector<std::string> label_names,
                                std::vector<double> bounds);

  /// Runs at every scrape, after the families, to add families whose
  /// values are read then.
  void add_collector(std::function<void(std::string& out)> collect);

  /// The exposition: every family, then the collectors'.
  std::string render() const;

private:
  template <class Metric>
  family<Metric>& get(std::string name, std::string help, kind k,
                      std::vector<std::string> label_names,
                      std::vector<double> bounds = {});

  mutable std::mutex mtx_;
  std::vector<std::unique_ptr<family_base>> families_;
  std::map<std::string, family_base*, std::less<>> by_name_;
  std::vector<std::function<void(std::string&)>> collectors_;
};

/// The daemon's metrics.
registry& global();

} // namespace tocsin::metrics
