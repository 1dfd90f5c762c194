#include "net/address_policy.hpp"

#include <boost/test/unit_test.hpp>

using namespace tocsin::net;

namespace {

std::string refusal(const address_policy& p, const char* ip) {
  auto a = ip_address::parse(ip);
  BOOST_REQUIRE_MESSAGE(a, ip);
  return p.refusal(*a);
}

} // namespace

BOOST_AUTO_TEST_SUITE(address_policy_suite)

BOOST_AUTO_TEST_CASE(global_unicast_addresses_pass) {
  address_policy p;
  for (auto ip :
       {"8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700::6810:85e5",
        "2a00:1450:4001:80b::200e", "2002:5db8:d822::1", // 6to4 of a global v4
        "64:ff9b::808:808"})                             // NAT64 of 8.8.8.8
    BOOST_TEST(refusal(p, ip).empty(), ip);
}

BOOST_AUTO_TEST_CASE(every_non_global_class_is_refused) {
  address_policy p;
  struct c {
    const char* ip;
    const char* why;
  };
  for (auto [ip, why] : std::vector<c>{
           {"127.0.0.1", "loopback"},
           {"127.255.0.9", "loopback"},
           {"10.1.2.3", "private"},
           {"172.16.0.1", "private"},
           {"172.31.255.255", "private"},
           {"192.168.1.1", "private"},
           {"169.254.169.254", "link-local"}, // cloud metadata
           {"100.64.0.1", "CGNAT"},
           {"0.0.0.0", "unspecified"},
           {"224.0.0.1", "multicast"},
           {"240.0.0.1", "reserved"},
           {"255.255.255.255", "broadcast"},
           {"192.0.2.1", "documentation"},
           {"198.18.0.1", "benchmarking"},
           {"::1", "loopback"},
           {"::", "unspecified"},
           {"fe80::1", "link-local"},
           {"fc00::1", "unique local"},
           {"fd12:3456::1", "unique local"},
           {"ff02::1", "multicast"},
           {"2001:db8::1", "documentation"},
           {"::ffff:127.0.0.1", "loopback"},               // IPv4-mapped
           {"::ffff:10.0.0.1", "private"},                 // IPv4-mapped
           {"64:ff9b::a00:1", "is an address embedding"},  // NAT64 of 10.0.0.1
           {"64:ff9b::7f00:1", "is an address embedding"}, // NAT64 of 127.0.0.1
           {"2002:7f00:1::1", "is an address embedding"},  // 6to4 of 127.0.0.1
           {"2002:c0a8:101::1",
            "is an address embedding"}, // 6to4 of 192.168.1.1
       }) {
    auto r = refusal(p, ip);
    BOOST_TEST(r.find(why) != std::string::npos, ip << ": '" << r << "'");
  }
}

BOOST_AUTO_TEST_CASE(allow_networks_exempt_addresses) {
  auto p =
      address_policy::from_cidrs({"127.0.0.0/8", "::1/128", "10.20.0.0/16"});
  BOOST_REQUIRE(p);
  BOOST_TEST(refusal(*p, "127.0.0.1").empty());
  BOOST_TEST(refusal(*p, "::1").empty());
  BOOST_TEST(
      refusal(*p, "::ffff:127.0.0.1").empty()); // mapped form of an allowed v4
  BOOST_TEST(refusal(*p, "10.20.3.4").empty());
  BOOST_TEST(!refusal(*p, "10.21.0.1").empty());
  BOOST_TEST(!refusal(*p, "192.168.0.1").empty());
}

BOOST_AUTO_TEST_CASE(bad_cidrs_are_refused) {
  for (auto c :
       {"", "10.0.0.0/33", "::/129", "10.0.0/8", "localhost", "10.0.0.0/x"})
    BOOST_TEST(!address_policy::from_cidrs({c}).ok(), c);
  BOOST_TEST(address_policy::from_cidrs({"10.0.0.1", "fd00::/8"}).ok());
}

BOOST_AUTO_TEST_CASE(hosts_are_judged_before_any_connection) {
  using kind = destination_verdict::kind;
  address_policy strict;
  // An IP literal at once, with the refusal a delivery would get.
  auto v = strict.check_host("127.0.0.1");
  BOOST_TEST((v.what == kind::refused));
  BOOST_TEST(v.reason.find("delivery.allow_networks") != std::string::npos,
             v.reason);
  BOOST_TEST((strict.check_host("::1").what == kind::refused));
  BOOST_TEST((strict.check_host("8.8.8.8").what == kind::allowed));
  // A name that resolves only to refused addresses (/etc/hosts).
  v = strict.check_host("localhost");
  BOOST_TEST((v.what == kind::refused));
  BOOST_TEST(v.reason.find("localhost resolves only to") != std::string::npos,
             v.reason);
  BOOST_TEST(v.reason.find("loopback") != std::string::npos, v.reason);
  // A name that does not resolve: nothing to judge (.invalid never does).
  v = strict.check_host("no-such-host.invalid");
  BOOST_TEST((v.what == kind::unresolved));
  BOOST_TEST(!v.reason.empty());
  auto loopback = address_policy::from_cidrs({"127.0.0.0/8", "::1/128"});
  BOOST_REQUIRE(loopback);
  BOOST_TEST((loopback->check_host("localhost").what == kind::allowed));
  BOOST_TEST((loopback->check_host("127.0.0.2").what == kind::allowed));
  BOOST_TEST((loopback->check_host("10.0.0.1").what == kind::refused));
}

BOOST_AUTO_TEST_SUITE_END()
