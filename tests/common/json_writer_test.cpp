#include "common/json_writer.hpp"

#include <boost/test/unit_test.hpp>

#include <nlohmann/json.hpp>

using namespace tocsin;

BOOST_AUTO_TEST_SUITE(json_writer_suite)

BOOST_AUTO_TEST_CASE(writes_nested_compact_json) {
  json_writer w;
  w.begin_object()
      .field("s", "a\"b\\c\n")
      .field("i", std::int64_t{-42})
      .field("d", 12.5)
      .field("b", true)
      .key("n")
      .null()
      .key("a")
      .begin_array()
      .value(1)
      .begin_object()
      .end_object()
      .raw("[1,2]")
      .end_array()
      .end_object();
  BOOST_TEST(
      w.str() ==
      R"({"s":"a\"b\\c\n","i":-42,"d":12.5,"b":true,"n":null,"a":[1,{},[1,2]]})");
  BOOST_TEST(nlohmann::json::parse(w.str())["s"] == "a\"b\\c\n");
}

BOOST_AUTO_TEST_CASE(doubles_round_trip_in_short_form) {
  for (double v : {0.0, 0.1, 1.0 / 3.0, 12345.678, 1e-9, 4.2e300}) {
    json_writer w;
    w.value(v);
    BOOST_TEST(std::stod(w.str()) == v);
    BOOST_TEST(w.str().size() <= 24u);
  }
  json_writer w;
  w.value(0.1);
  BOOST_TEST(w.str() == "0.1");
}

BOOST_AUTO_TEST_CASE(control_characters_are_escaped) {
  json_writer w;
  w.value(std::string_view{"\x01\x1f", 2});
  BOOST_TEST(w.str() == R"("\u0001\u001f")");
}

// Response bodies are cut at 1 KiB and may be binary: the output must stay
// valid JSON (and valid UTF-8) whatever comes in.
BOOST_AUTO_TEST_CASE(invalid_utf8_becomes_replacement_characters) {
  json_writer w;
  w.value(std::string_view{"ok \xc3\xa9 \xff \xe2\x82", 10});
  BOOST_TEST(w.str() == "\"ok \xc3\xa9 \\ufffd \\ufffd\\ufffd\"");
  auto parsed = nlohmann::json::parse(w.str());
  BOOST_TEST(parsed.get<std::string>() ==
             "ok \xc3\xa9 \xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd");
}

BOOST_AUTO_TEST_SUITE_END()
