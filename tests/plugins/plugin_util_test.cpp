// The helpers of plugins/tocsin_plugin_util.h that the shipped transports
// use: strict UTF-8 decoding, counting and cutting by bytes and code points.
#include "plugins/tocsin_plugin_util.h"

#include <boost/test/unit_test.hpp>

#include <string>

using namespace tocsin::plugin_util;

BOOST_AUTO_TEST_SUITE(plugin_util)

BOOST_AUTO_TEST_CASE(decodes_strictly) {
  // 1-, 2-, 3- and 4-byte sequences.
  std::string_view ok = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x9a\xa8";
  std::size_t i = 0;
  BOOST_TEST((next_code_point(ok, i) == U'a'));
  BOOST_TEST((next_code_point(ok, i) == U'\u00e9'));
  BOOST_TEST((next_code_point(ok, i) == U'\u20ac'));
  BOOST_TEST((next_code_point(ok, i) == U'\U0001f6a8'));
  BOOST_TEST(i == ok.size());
  BOOST_TEST(code_points(ok) == 4u);
  // Overlong, surrogate, past U+10FFFF, truncated, stray continuation: each
  // bad byte is one U+FFFD.
  for (std::string_view bad :
       {"\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82", "\x80"}) {
    std::size_t k = 0;
    BOOST_TEST((next_code_point(bad, k) == replacement_character));
    BOOST_TEST(k == 1u);
  }
  std::string round;
  for (char32_t cp : {U'a', U'\u00e9', U'\u20ac', U'\U0001f6a8'})
    append_utf8(round, cp);
  BOOST_TEST(round == std::string{ok});
}

BOOST_AUTO_TEST_CASE(cuts_on_boundaries) {
  std::string_view s = "ab\xe2\x82\xac"; // "ab€": 5 bytes, 3 code points
  BOOST_TEST(cut_bytes(s, 5) == s);
  BOOST_TEST(cut_bytes(s, 4) == "ab");
  BOOST_TEST(cut_bytes(s, 3) == "ab");
  BOOST_TEST(cut_bytes(s, 2) == "ab");
  BOOST_TEST(cut_code_points(s, 3) == std::string{s});
  BOOST_TEST(cut_code_points(s, 2) == "a\xe2\x80\xa6"); // "a…"
  BOOST_TEST(cut_code_points(s, 1) == "\xe2\x80\xa6");
  BOOST_TEST(code_points(cut_code_points(std::string(5000, 'x'), 1024)) ==
             1024u);
  BOOST_TEST(one_line("a\r\nb\tc\x7f") == "a  b c ");
}

BOOST_AUTO_TEST_CASE(c_helpers) {
  BOOST_TEST(tocsin_str_eq(tocsin_lit("abc"), "abc"));
  BOOST_TEST(!tocsin_str_eq(tocsin_lit("abc"), "ab"));
  BOOST_TEST(tocsin_str_eq(tocsin_str{nullptr, 0}, ""));
  BOOST_TEST(tocsin_utf8_cut(tocsin_lit("ab\xe2\x82\xac"), 4) == 2u);
  BOOST_TEST(tocsin_utf8_cut(tocsin_lit("ab"), 4) == 2u);
}

BOOST_AUTO_TEST_SUITE_END()
