// Which addresses deliveries may connect to: global unicast only, unless an
// address lies in one of the operator's allow_networks. Checked on the address
// actually connected to, after DNS resolution (SSRF guard).
#pragma once

#include "common/result.hpp"

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tocsin::net {

/// An IPv4 address is stored IPv4-mapped (::ffff:a.b.c.d).
struct ip_address {
  std::array<std::uint8_t, 16> bytes{};
  bool v4 = false;

  static std::optional<ip_address> parse(std::string_view text);
  std::string to_string() const;
};

struct ip_network {
  ip_address base;
  int prefix = 0; ///< in bits of the 128-bit form

  /// "10.0.0.0/8", "::1/128", or a single address.
  static result<ip_network> parse(std::string_view cidr);
  bool contains(const ip_address& a) const;
};

/// Why an address is not global unicast ("loopback", "private", ...), or
/// empty if it is.
std::string_view non_global_reason(const ip_address& a);

/// What the guard would make of deliveries to a host, as of now.
struct destination_verdict {
  enum class kind {
    allowed,   ///< an address it resolves to may be connected to
    refused,   ///< every address it resolves to is refused
    unresolved ///< it does not resolve (now): nothing to judge yet
  };
  kind what = kind::allowed;
  /// refused: the first address's refusal (it names
  /// delivery.allow_networks); unresolved: the resolver's reason.
  std::string reason = {};
};

class address_policy {
public:
  address_policy() = default;
  explicit address_policy(std::vector<ip_network> allow)
      : allow_(std::move(allow)) {}

  /// Parses delivery.allow_networks.
  static result<address_policy>
  from_cidrs(const std::vector<std::string>& cidrs);

  /// Empty if `a` may be connected to, else why not.
  std::string refusal(const ip_address& a) const;

  /// Judges a URL's host (a name, or an IP literal without brackets) the
  /// way a delivery's connection is judged, before any is made: an IP
  /// literal at once, a name by resolving it (getaddrinfo: blocks for as
  /// long as the resolver takes). Deliveries are still judged on the
  /// address they connect to (names may resolve elsewhere later).
  destination_verdict check_host(const std::string& host) const;

private:
  std::vector<ip_network> allow_;
};

} // namespace tocsin::net
