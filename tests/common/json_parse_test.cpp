#include "common/json_parse.hpp"

#include <boost/test/unit_test.hpp>

using tocsin::json_limits;
using tocsin::parse_json;

namespace {

template <class Json = nlohmann::json>
std::string why_not(std::string_view text, const json_limits& limits = {}) {
  Json j;
  std::string why;
  BOOST_TEST_REQUIRE(!parse_json(text, j, &why, limits), text);
  BOOST_TEST(!why.empty());
  return why;
}

std::string nested_arrays(std::size_t levels) {
  return std::string(levels, '[') + std::string(levels, ']');
}

} // namespace

BOOST_AUTO_TEST_SUITE(json_parse)

BOOST_AUTO_TEST_CASE(parses_what_nlohmann_parses) {
  nlohmann::ordered_json j;
  BOOST_REQUIRE(parse_json(
      R"({"b":1,"a":[true,null,-2.5e3,"x\u00e9",{"c":{}}],"d":18446744073709551615})",
      j));
  BOOST_TEST(j.begin().key() == "b"); // order kept for ordered_json
  BOOST_TEST(j["a"][3] == "x\xc3\xa9");
  BOOST_TEST(j["d"].is_number_unsigned());
  BOOST_TEST(
      j.dump() ==
      R"({"b":1,"a":[true,null,-2500.0,"xé",{"c":{}}],"d":18446744073709551615})");
  nlohmann::json scalar;
  BOOST_REQUIRE(parse_json(" 42 ", scalar));
  BOOST_TEST(scalar == 42);
}

BOOST_AUTO_TEST_CASE(refuses_what_tocsin_must_refuse) {
  BOOST_TEST(why_not(std::string_view{"{\"a\":1}\0tail", 12}).find("NUL") !=
             std::string::npos);
  BOOST_TEST(why_not(std::string_view{"{\"a\":\"\0\"}", 9}).find("NUL") !=
             std::string::npos);
  BOOST_TEST(why_not(R"({"a":1,"a":2})").find("duplicate key \"a\"") !=
             std::string::npos);
  BOOST_TEST(why_not<nlohmann::ordered_json>(R"({"a":{"b":1,"b":1}})")
                 .find("duplicate") != std::string::npos);
  why_not("{\"a\":1} trailing");
  why_not("{\"a\":1,}");
  why_not("/* comment */ {}");
  why_not("{\"a\":\"\xff\"}"); // invalid UTF-8 in a string
  why_not("");
}

BOOST_AUTO_TEST_CASE(nesting_is_bounded_while_parsing) {
  nlohmann::json j;
  BOOST_TEST(parse_json(nested_arrays(32), j));
  BOOST_TEST(why_not(nested_arrays(33)).find("deeper than 32") !=
             std::string::npos);
  // What crashed the daemon: 100,000 levels (and a million) are refused
  // without recursion, in linear time.
  why_not(nested_arrays(100000));
  why_not(std::string(1000000, '['));
  BOOST_TEST(
      parse_json(nested_arrays(64), j, nullptr, tocsin::stored_json_limits));
}

BOOST_AUTO_TEST_CASE(members_per_object_are_bounded) {
  auto object = [](int n) {
    std::string s = "{";
    for (int i = 0; i < n; ++i)
      s += (i ? ",\"" : "\"") + std::to_string(i) + "\":0";
    return s + "}";
  };
  nlohmann::ordered_json j;
  BOOST_TEST(parse_json(object(1000), j));
  BOOST_TEST(j.size() == 1000u);
  BOOST_TEST(why_not(object(1001)).find("more than 1000 members") !=
             std::string::npos);
  // A duplicate far past the direct search is still found.
  BOOST_TEST(
      why_not(object(900).substr(0, object(900).size() - 1) + ",\"17\":1}")
          .find("duplicate key \"17\"") != std::string::npos);
  // Arrays are bounded by the input only.
  std::string big = "[0";
  for (int i = 0; i < 100000; ++i)
    big += ",0";
  BOOST_TEST(parse_json(big + "]", j));
  BOOST_TEST(j.size() == 100001u);
}

BOOST_AUTO_TEST_CASE(depth_of_documents_built_in_memory) {
  nlohmann::json j = nlohmann::json::parse(nested_arrays(10));
  BOOST_TEST(tocsin::json_depth_within(j, 10));
  BOOST_TEST(!tocsin::json_depth_within(j, 9));
  BOOST_TEST(tocsin::json_depth_within(nlohmann::json(5), 0));
}

BOOST_AUTO_TEST_SUITE_END()
