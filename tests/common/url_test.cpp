#include "common/url.hpp"

#include <boost/test/unit_test.hpp>

using namespace tocsin;

BOOST_AUTO_TEST_SUITE(url)

BOOST_AUTO_TEST_CASE(parses_https_urls) {
  auto u = parse_url("https://Hooks.Example.com/tocsin?x=1");
  BOOST_REQUIRE(u);
  BOOST_TEST(u->scheme == "https");
  BOOST_TEST(u->host == "hooks.example.com");
  BOOST_TEST(u->port == 443);
  BOOST_TEST(u->target == "/tocsin?x=1");
  BOOST_TEST(!u->host_is_ip);
  BOOST_TEST(u->authority() == "hooks.example.com");

  auto v = parse_url("https://127.0.0.1:8443");
  BOOST_REQUIRE(v);
  BOOST_TEST(v->port == 8443);
  BOOST_TEST(v->target == "/");
  BOOST_TEST(v->host_is_ip);
  BOOST_TEST(v->authority() == "127.0.0.1:8443");

  auto w = parse_url("https://[::1]:9000/x");
  BOOST_REQUIRE(w);
  BOOST_TEST(w->host == "::1");
  BOOST_TEST(w->host_is_ip);
  BOOST_TEST(w->authority() == "[::1]:9000");
}

BOOST_AUTO_TEST_CASE(rejects_bad_urls) {
  for (auto s :
       {"", "hooks.example.com/x", "ftp://x/", "https://", "https:///x",
        "https://user:pw@host/", "https://host:0/", "https://host:70000/",
        "https://host:12ab/", "https://host/a b", "https://host/#frag",
        "https://[::1/x", "https://[zz]/", "https://ho$t/"})
    BOOST_TEST(!parse_url(s), s);
}

BOOST_AUTO_TEST_SUITE_END()
