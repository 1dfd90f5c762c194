#include "transports/signing.hpp"
#include "transports/webhook.hpp"

#include <boost/test/unit_test.hpp>

using namespace tocsin;
using namespace tocsin::transports;

BOOST_AUTO_TEST_SUITE(signing)

// The test vector of DESIGN.md (from the Standard Webhooks reference
// libraries).
BOOST_AUTO_TEST_CASE(matches_the_standard_webhooks_test_vector) {
  auto key = decode_webhook_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
  BOOST_REQUIRE(key);
  BOOST_TEST(sign_webhook(*key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
                          R"({"test": 2432232314})") ==
             "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

BOOST_AUTO_TEST_CASE(rejects_malformed_secrets) {
  BOOST_TEST(!decode_webhook_secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"));
  BOOST_TEST(!decode_webhook_secret("whsec_not base64!"));
  BOOST_TEST(!decode_webhook_secret("whsec_c2hvcnQ=")); // 5 bytes: too short
  BOOST_TEST(decode_webhook_secret("whsec_c2hvcnQ=").error().code ==
             "invalid_secret");
}

BOOST_AUTO_TEST_CASE(webhook_request_carries_the_standard_headers) {
  auto key = *decode_webhook_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
  auto other = std::string(32, 'k');
  auto target = *parse_url("https://hooks.example/in");
  auto req = make_webhook_request(
      target,
      {"msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, R"({"test": 2432232314})"},
      {key, other});
  auto header = [&](std::string_view name) {
    for (auto& [k, v] : req.headers)
      if (k == name)
        return v;
    return std::string{};
  };
  BOOST_TEST(req.method == "POST");
  BOOST_TEST(req.body == R"({"test": 2432232314})");
  BOOST_TEST(header("content-type") == "application/json");
  BOOST_TEST(header("webhook-id") == "msg_p5jXN8AQM9LWM0D4loKWxJek");
  BOOST_TEST(header("webhook-timestamp") == "1614265330");
  // Two keys (a rotation): two space-separated signatures, current first.
  auto sig = header("webhook-signature");
  BOOST_TEST(
      sig.rfind("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= v1,", 0) == 0);
}

BOOST_AUTO_TEST_SUITE_END()
