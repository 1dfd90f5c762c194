// The metrics registry and its text exposition: counters, gauges and
// histograms with labels, escaped values, cumulative buckets.
#include "common/metrics.hpp"

#include <boost/test/unit_test.hpp>

#include <thread>

using namespace tocsin::metrics;

BOOST_AUTO_TEST_SUITE(metrics_exposition)

BOOST_AUTO_TEST_CASE(families_render_in_the_text_format) {
  registry reg;
  auto& c = reg.counters("t_requests_total", "Requests.", {"code"});
  c.with({"200"}).add(3);
  c.with({"a\"b\\c\nd"}).add();
  reg.gauges("t_depth", "Depth.").with().set(-2);
  auto& h = reg.histograms("t_seconds", "Time.", {}, {0.1, 1}).with();
  h.observe(0.05);
  h.observe(0.1); // on a bound: that bucket (le is inclusive)
  h.observe(5);
  reg.add_collector([](std::string& out) {
    render_family(out, "t_live", "Read at scrape time.", kind::gauge,
                  {"endpoint"}, {{{"ep1"}, 1.5}, {{"ep2"}, 1e6}});
  });
  auto text = reg.render();
  BOOST_TEST(text == "# HELP t_requests_total Requests.\n"
                     "# TYPE t_requests_total counter\n"
                     "t_requests_total{code=\"200\"} 3\n"
                     "t_requests_total{code=\"a\\\"b\\\\c\\nd\"} 1\n"
                     "# HELP t_depth Depth.\n"
                     "# TYPE t_depth gauge\n"
                     "t_depth -2\n"
                     "# HELP t_seconds Time.\n"
                     "# TYPE t_seconds histogram\n"
                     "t_seconds_bucket{le=\"0.1\"} 2\n"
                     "t_seconds_bucket{le=\"1\"} 2\n"
                     "t_seconds_bucket{le=\"+Inf\"} 3\n"
                     "t_seconds_sum 5.15\n"
                     "t_seconds_count 3\n"
                     "# HELP t_live Read at scrape time.\n"
                     "# TYPE t_live gauge\n"
                     "t_live{endpoint=\"ep1\"} 1.5\n"
                     "t_live{endpoint=\"ep2\"} 1000000\n",
             text);
  // The same family again is the same family; another kind is refused.
  BOOST_TEST(&reg.counters("t_requests_total", "x", {"code"}) == &c);
  BOOST_CHECK_THROW(reg.gauges("t_requests_total", "x"), std::logic_error);
}

BOOST_AUTO_TEST_CASE(updates_from_many_threads_are_all_counted) {
  registry reg;
  auto& c = reg.counters("t_total", "n").with();
  auto& h = reg.histograms("t_h", "h", {}, latency_buckets()).with();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 100000; ++i) {
        c.add();
        h.observe(0.003);
      }
    });
  for (auto& t : threads)
    t.join();
  BOOST_TEST(c.value() == 400000u);
  BOOST_TEST(h.count() == 400000u);
  auto counts = h.counts();
  BOOST_TEST(counts.at(2) == 400000u); // (0.0025, 0.005]
}

BOOST_AUTO_TEST_SUITE_END()
