// One request or one classification through a plugin, for tests of a single
// call: opens the endpoint, makes the call, closes the endpoint again.
#pragma once

#include "plugins/plugin_loader.hpp"

#include <boost/test/unit_test.hpp>

#include <string_view>

namespace tocsin::test {

/// The request `plugin` builds for `event` to `endpoint`; the error of
/// opening the endpoint or of building.
inline result<plugins::built_request>
build_with(const plugins::transport_plugin& plugin,
           const plugins::event_view& event,
           const plugins::endpoint_view& endpoint) {
  auto opened = plugin.open(endpoint);
  if (!opened)
    return opened.error();
  return (*opened)->build_request(event);
}

/// What `plugin` makes of an answer, for an endpoint with `options_json`.
inline plugins::classification
classify_with(const plugins::transport_plugin& plugin, int status,
              std::string_view body_prefix, std::string_view retry_after,
              std::string_view options_json = "{}",
              std::string_view url = "https://h.example/") {
  auto opened =
      plugin.open(plugins::endpoint_view{"ep_test", url, options_json});
  BOOST_TEST_REQUIRE(opened.ok(), (opened.ok() ? "" : opened.error().message));
  return (*opened)->classify(status, body_prefix, retry_after);
}

} // namespace tocsin::test
