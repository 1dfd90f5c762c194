#include "common/encoding.hpp"

#include <boost/test/unit_test.hpp>

#include <vector>

using namespace tocsin;

BOOST_AUTO_TEST_SUITE(encoding)

BOOST_AUTO_TEST_CASE(base64_round_trips) {
  for (std::string s :
       std::vector<std::string>{"", "f", "fo", "foo", "foob", "fooba", "foobar",
                                std::string("\0\xff\x10", 3)}) {
    auto enc = base64_encode(s);
    auto dec = base64_decode(enc);
    BOOST_REQUIRE(dec);
    BOOST_TEST(*dec == s);
  }
  BOOST_TEST(base64_encode("foobar") == "Zm9vYmFy");
  BOOST_TEST(*base64_decode("Zm9vYg==") == "foob");
}

BOOST_AUTO_TEST_CASE(base64_rejects_garbage) {
  BOOST_TEST(!base64_decode("Zm9"));
  BOOST_TEST(!base64_decode("Zm9v!mFy"));
  BOOST_TEST(!base64_decode("Z=9vYmFy"));
}

BOOST_AUTO_TEST_CASE(sha256_and_hmac_match_known_values) {
  BOOST_TEST(
      hex_encode(sha256("abc")) ==
      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  // RFC 4231 test case 2.
  BOOST_TEST(
      hex_encode(hmac_sha256("Jefe", "what do ya want for nothing?")) ==
      "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  // The contexts are kept per thread: another key in between, a key longer
  // than a block (RFC 4231 test case 6), the empty key and message, and the
  // first key again all give their own values.
  BOOST_TEST(
      hex_encode(hmac_sha256(
          std::string(131, '\xaa'),
          "Test Using Larger Than Block-Size Key - Hash Key First")) ==
      "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
  BOOST_TEST(
      hex_encode(hmac_sha256("", "")) ==
      "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
  BOOST_TEST(
      hex_encode(hmac_sha256("Jefe", "what do ya want for nothing?")) ==
      "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  BOOST_TEST(
      hex_encode(sha256("")) ==
      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

BOOST_AUTO_TEST_CASE(constant_time_equal_compares) {
  BOOST_TEST(constant_time_equal("abc", "abc"));
  BOOST_TEST(!constant_time_equal("abc", "abd"));
  BOOST_TEST(!constant_time_equal("abc", "abcd"));
}

BOOST_AUTO_TEST_CASE(utf8_validation) {
  BOOST_TEST(is_valid_utf8("plain ascii"));
  BOOST_TEST(is_valid_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x94"));
  BOOST_TEST(!is_valid_utf8("\xc3"));             // truncated
  BOOST_TEST(!is_valid_utf8("\xc0\xaf"));         // overlong
  BOOST_TEST(!is_valid_utf8("\xed\xa0\x80"));     // surrogate
  BOOST_TEST(!is_valid_utf8("\xf4\x90\x80\x80")); // > U+10FFFF
  BOOST_TEST(!is_valid_utf8("\xff"));
  BOOST_TEST(!is_valid_utf8("ab\x80"));
}

BOOST_AUTO_TEST_CASE(percent_encode_keeps_only_unreserved_characters) {
  BOOST_TEST(percent_encode("rcpt_123-a.b~c") == "rcpt_123-a.b~c");
  // A receipt id cannot climb out of its path segment or add a query or a
  // fragment to a template's URL.
  BOOST_TEST(percent_encode("../../admin/delete?all=1#") ==
             "..%2F..%2Fadmin%2Fdelete%3Fall%3D1%23");
  BOOST_TEST(percent_encode("a b%c+d&e") == "a%20b%25c%2Bd%26e");
  BOOST_TEST(percent_encode("caf\xc3\xa9") == "caf%C3%A9");
  BOOST_TEST(percent_decode(percent_encode("x/y?z=1#w %")) == "x/y?z=1#w %");
  BOOST_TEST(percent_encode("").empty());
}

BOOST_AUTO_TEST_CASE(deceptive_text_finds_controls_and_bidi_overrides) {
  BOOST_TEST(!deceptive_text("plain caf\xc3\xa9 \xf0\x9f\x9a\xa8", false));
  BOOST_TEST(!deceptive_text("two\nlines\tand a tab", true));
  BOOST_TEST(deceptive_text("two\nlines", false).value_or("") ==
             "control character U+000A");
  BOOST_TEST(deceptive_text("tab\t", false).value_or("") ==
             "control character U+0009");
  BOOST_TEST(deceptive_text("cr\r", true).value_or("") ==
             "control character U+000D");
  BOOST_TEST(deceptive_text(std::string_view{"nul\0", 4}, true).value_or("") ==
             "control character U+0000");
  BOOST_TEST(deceptive_text("esc\x1b[31m", true).value_or("") ==
             "control character U+001B");
  // U+202A..U+202E and U+2066..U+2069, and their neighbours, which are fine.
  BOOST_TEST(deceptive_text("\xe2\x80\xaa", true).value_or("") ==
             "bidirectional control U+202A");
  BOOST_TEST(deceptive_text("evil\xe2\x80\xaegnp.exe", true).value_or("") ==
             "bidirectional control U+202E");
  BOOST_TEST(deceptive_text("\xe2\x81\xa6", true).value_or("") ==
             "bidirectional control U+2066");
  BOOST_TEST(deceptive_text("\xe2\x81\xa9", true).value_or("") ==
             "bidirectional control U+2069");
  BOOST_TEST(
      !deceptive_text("\xe2\x80\xa9 \xe2\x80\xaf", true)); // U+2029, U+202F
  BOOST_TEST(
      !deceptive_text("\xe2\x81\xa5 \xe2\x81\xaa", true)); // U+2065, U+206A
  BOOST_TEST(!deceptive_text("\x7f", false));              // DEL is not C0
}

BOOST_AUTO_TEST_SUITE_END()
