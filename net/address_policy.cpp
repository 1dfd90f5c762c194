#include "net/address_policy.hpp"

#include <arpa/inet.h>
#include <charconv>
#include <cstring>
#include <memory>
#include <netdb.h>
#include <sys/socket.h>

namespace tocsin::net {

namespace {

ip_address make_v4(std::uint8_t a, std::uint8_t b, std::uint8_t c,
                   std::uint8_t d) {
  ip_address x;
  x.v4 = true;
  x.bytes[10] = x.bytes[11] = 0xff;
  x.bytes[12] = a;
  x.bytes[13] = b;
  x.bytes[14] = c;
  x.bytes[15] = d;
  return x;
}

ip_address v6(std::initializer_list<std::uint16_t> groups) {
  ip_address x;
  std::size_t i = 0;
  for (auto g : groups) {
    x.bytes[i++] = static_cast<std::uint8_t>(g >> 8);
    x.bytes[i++] = static_cast<std::uint8_t>(g & 0xff);
  }
  return x;
}

struct special_range {
  ip_network net;
  std::string_view reason;
};

ip_network net(ip_address base, int prefix) {
  return ip_network{base, prefix};
}

// IANA special-purpose registries (IPv4: prefixes + 96 in the mapped form).
const std::vector<special_range>& v4_ranges() {
  static const std::vector<special_range> ranges{
      {net(make_v4(0, 0, 0, 0), 96 + 8), "unspecified"},
      {net(make_v4(10, 0, 0, 0), 96 + 8), "private"},
      {net(make_v4(100, 64, 0, 0), 96 + 10), "shared (CGNAT)"},
      {net(make_v4(127, 0, 0, 0), 96 + 8), "loopback"},
      {net(make_v4(169, 254, 0, 0), 96 + 16), "link-local"},
      {net(make_v4(172, 16, 0, 0), 96 + 12), "private"},
      {net(make_v4(192, 0, 0, 0), 96 + 24), "IETF protocol assignments"},
      {net(make_v4(192, 0, 2, 0), 96 + 24), "documentation"},
      {net(make_v4(192, 88, 99, 0), 96 + 24), "6to4 relay"},
      {net(make_v4(192, 168, 0, 0), 96 + 16), "private"},
      {net(make_v4(198, 18, 0, 0), 96 + 15), "benchmarking"},
      {net(make_v4(198, 51, 100, 0), 96 + 24), "documentation"},
      {net(make_v4(203, 0, 113, 0), 96 + 24), "documentation"},
      {net(make_v4(224, 0, 0, 0), 96 + 4), "multicast"},
      {net(make_v4(240, 0, 0, 0), 96 + 4), "reserved"},
  };
  return ranges;
}

const std::vector<special_range>& v6_ranges() {
  static const std::vector<special_range> ranges{
      {net(v6({0, 0, 0, 0, 0, 0, 0, 0}), 128), "unspecified"},
      {net(v6({0, 0, 0, 0, 0, 0, 0, 1}), 128), "loopback"},
      {net(v6({0, 0, 0, 0, 0, 0, 0, 0}), 96), "IPv4-compatible"},
      {net(v6({0x64, 0xff9b, 1}), 48), "local-use NAT64"},
      {net(v6({0x100, 0, 0, 0}), 64), "discard-only"},
      {net(v6({0x2001, 0}), 23), "IETF protocol assignments"},
      {net(v6({0x2001, 0xdb8}), 32), "documentation"},
      {net(v6({0x3fff}), 20), "documentation"},
      {net(v6({0x5f00}), 16), "segment routing"},
      {net(v6({0xfc00}), 7), "unique local"},
      {net(v6({0xfe80}), 10), "link-local"},
      {net(v6({0xfec0}), 10), "site-local"},
      {net(v6({0xff00}), 8), "multicast"},
  };
  return ranges;
}

/// The IPv4 address embedded in NAT64 (64:ff9b::/96) or 6to4 (2002::/16).
std::optional<ip_address> embedded_v4(const ip_address& a) {
  static const auto nat64 = net(v6({0x64, 0xff9b, 0, 0, 0, 0}), 96);
  static const auto six_to_four = net(v6({0x2002}), 16);
  if (nat64.contains(a))
    return make_v4(a.bytes[12], a.bytes[13], a.bytes[14], a.bytes[15]);
  if (six_to_four.contains(a))
    return make_v4(a.bytes[2], a.bytes[3], a.bytes[4], a.bytes[5]);
  return std::nullopt;
}

} // namespace

std::optional<ip_address> ip_address::parse(std::string_view text) {
  std::string s{text};
  ip_address a;
  unsigned char buf[16];
  if (inet_pton(AF_INET, s.c_str(), buf) == 1)
    return make_v4(buf[0], buf[1], buf[2], buf[3]);
  if (inet_pton(AF_INET6, s.c_str(), buf) == 1) {
    std::memcpy(a.bytes.data(), buf, 16);
    static const auto mapped = net(make_v4(0, 0, 0, 0), 96);
    a.v4 = mapped.contains(a);
    return a;
  }
  return std::nullopt;
}

std::string ip_address::to_string() const {
  char buf[INET6_ADDRSTRLEN];
  if (v4)
    inet_ntop(AF_INET, bytes.data() + 12, buf, sizeof(buf));
  else
    inet_ntop(AF_INET6, bytes.data(), buf, sizeof(buf));
  return buf;
}

result<ip_network> ip_network::parse(std::string_view cidr) {
  auto slash = cidr.find('/');
  auto addr = ip_address::parse(cidr.substr(0, slash));
  if (!addr)
    return error{"invalid_network", "not an IP network: " + std::string{cidr}};
  int max = addr->v4 ? 32 : 128;
  int prefix = max;
  if (slash != std::string_view::npos) {
    auto p = cidr.substr(slash + 1);
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), prefix);
    if (ec != std::errc{} || end != p.data() + p.size() || prefix < 0 ||
        prefix > max)
      return error{"invalid_network",
                   "bad prefix length in " + std::string{cidr}};
  }
  ip_network n{*addr, addr->v4 ? prefix + 96 : prefix};
  if (!n.contains(n.base)) // unreachable; keeps the invariant visible
    return error{"invalid_network", std::string{cidr}};
  return n;
}

bool ip_network::contains(const ip_address& a) const {
  int full = prefix / 8, rest = prefix % 8;
  if (std::memcmp(a.bytes.data(), base.bytes.data(),
                  static_cast<std::size_t>(full)) != 0)
    return false;
  if (rest == 0)
    return true;
  auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
  return (a.bytes[static_cast<std::size_t>(full)] & mask) ==
         (base.bytes[static_cast<std::size_t>(full)] & mask);
}

std::string_view non_global_reason(const ip_address& a) {
  if (a.v4) {
    if (a.bytes[12] == 255 && a.bytes[13] == 255 && a.bytes[14] == 255 &&
        a.bytes[15] == 255)
      return "broadcast";
    for (auto& r : v4_ranges())
      if (r.net.contains(a))
        return r.reason;
    return {};
  }
  if (auto inner = embedded_v4(a)) {
    auto why = non_global_reason(*inner);
    return why.empty() ? std::string_view{}
                       : "an address embedding a non-global IPv4 address";
  }
  for (auto& r : v6_ranges())
    if (r.net.contains(a))
      return r.reason;
  return {};
}

result<address_policy>
address_policy::from_cidrs(const std::vector<std::string>& cidrs) {
  std::vector<ip_network> nets;
  for (auto& c : cidrs) {
    auto n = ip_network::parse(c);
    if (!n)
      return n.error();
    nets.push_back(*n);
  }
  return address_policy{std::move(nets)};
}

std::string address_policy::refusal(const ip_address& a) const {
  for (auto& n : allow_)
    if (n.contains(a))
      return {};
  auto why = non_global_reason(a);
  if (why.empty())
    return {};
  return a.to_string() + " is " + std::string{why} +
         ", not a global unicast address (see delivery.allow_networks)";
}

destination_verdict address_policy::check_host(const std::string& host) const {
  using kind = destination_verdict::kind;
  if (auto literal = ip_address::parse(host)) {
    auto why = refusal(*literal);
    return why.empty() ? destination_verdict{}
                       : destination_verdict{kind::refused, std::move(why)};
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &found); rc != 0)
    return {kind::unresolved, ::gai_strerror(rc)};
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> owned{found, ::freeaddrinfo};
  std::string first;
  for (auto* ai = found; ai; ai = ai->ai_next) {
    std::string why;
    if (ai->ai_family == AF_INET) {
      auto* sin = reinterpret_cast<const sockaddr_in*>(ai->ai_addr);
      auto* b = reinterpret_cast<const std::uint8_t*>(&sin->sin_addr);
      why = refusal(make_v4(b[0], b[1], b[2], b[3]));
    } else if (ai->ai_family == AF_INET6) {
      auto* sin6 = reinterpret_cast<const sockaddr_in6*>(ai->ai_addr);
      ip_address a;
      std::memcpy(a.bytes.data(), &sin6->sin6_addr, 16);
      a.v4 = net(make_v4(0, 0, 0, 0), 96).contains(a);
      // As the client does: a scoped address is no global one.
      why = sin6->sin6_scope_id != 0 ? a.to_string() + " is scoped, not global"
                                     : refusal(a);
    } else {
      continue;
    }
    if (why.empty())
      return {};
    if (first.empty())
      first = std::move(why);
  }
  if (first.empty())
    return {kind::unresolved, "no IPv4 or IPv6 address"};
  return {kind::refused, host +
                             " resolves only to addresses the SSRF guard "
                             "refuses: " +
                             first};
}

} // namespace tocsin::net
