// libFuzzer target for the inbound integrations (api/integrations.hpp):
// what Slack and PagerDuty send, after their signature checked out (a
// fuzzer cannot forge an HMAC, so the readers are fed directly), and the
// signature checks themselves on arbitrary headers. The first byte picks
// the reader: even for a Slack interaction, odd for a PagerDuty webhook.
#include "api/integrations.hpp"

#include "common/url.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  using namespace tocsin;
  if (size == 0)
    return 0;
  std::string_view in{reinterpret_cast<const char*>(data) + 1, size - 1};
  constexpr unix_ms now = 1'764'201'600'000;
  if (data[0] % 2 == 0) {
    static const std::vector<std::string> hosts{"hooks.slack.com"};
    if (auto clicks = api::parse_slack_interaction(in, hosts))
      for (auto& c : *clicks)
        if (c.event_id.size() != 30 || c.user.size() > 200 ||
            (!c.response_url.empty() &&
             parse_url(c.response_url)->host != hosts[0]))
          __builtin_trap(); // only event ids, bounded names, listed hosts
    // The body's first line as the timestamp and signature header.
    auto nl = in.find('\n');
    auto header = in.substr(0, nl);
    (void)api::verify_slack_request("secret", header, header, in, now);
  } else {
    if (auto changes = api::parse_pagerduty_webhook(in))
      for (auto& c : *changes)
        if (c.event_id.size() != 30 || c.by.size() > 200)
          __builtin_trap();
    auto nl = in.find('\n');
    (void)api::verify_pagerduty_request("secret", in.substr(0, nl), in);
  }
  return 0;
}
