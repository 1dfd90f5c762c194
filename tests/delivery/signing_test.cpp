#include "delivery/signature_headers.hpp"
#include "delivery/signing.hpp"
#include "tests/support/https_receiver.hpp"

#include "common/encoding.hpp"

#include <boost/test/unit_test.hpp>

using namespace tocsin;
using namespace tocsin::delivery;

namespace {

constexpr std::string_view vector_id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
constexpr std::int64_t vector_timestamp = 1614265330;
constexpr std::string_view vector_body = R"({"test": 2432232314})";

// Ed25519 key of the Svix server's tests (64 bytes: seed || public key); its
// signature of the message above is the "v1a," example of the Standard
// Webhooks spec ("Webhook headers" section).
constexpr std::string_view svix_secret =
    "whsk_6Xb/dCcHpPea21PS1N9VY/NZW723CEc77N4rJCubMbfVKIDij2HKpMKkioLlX0dRqSKJ"
    "p4AJ6p9lMicMFs6Kvg==";
constexpr std::string_view svix_public =
    "whpk_1SiA4o9hyqTCpIqC5V9HUakiiaeACeqfZTInDBbOir4=";
constexpr std::string_view svix_signature =
    "v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/"
    "enGzPCXe5BdqzCInXqYXFymVJaA7AZdpXwVLPo3mNl8EM+m7TBAg==";

test::received_request signed_request(std::string_view signature,
                                      std::string body) {
  test::received_request req;
  req.method = "POST";
  req.headers["webhook-id"] = std::string{vector_id};
  req.headers["webhook-timestamp"] = std::to_string(vector_timestamp);
  req.headers["webhook-signature"] = std::string{signature};
  req.body = std::move(body);
  return req;
}

using header_list = std::vector<std::pair<std::string, std::string>>;

std::string header_of(const header_list& headers, std::string_view name) {
  for (auto& [k, v] : headers)
    if (k == name)
      return v;
  return {};
}

} // namespace

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
  using kind = signing_key::scheme;
  auto headers = signature_headers(
      {"msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, R"({"test": 2432232314})"},
      {{kind::hmac_sha256, key}, {kind::hmac_sha256, other}});
  auto header = [&](std::string_view name) { return header_of(headers, name); };
  BOOST_TEST(header("webhook-id") == "msg_p5jXN8AQM9LWM0D4loKWxJek");
  BOOST_TEST(header("webhook-timestamp") == "1614265330");
  // Two keys (a rotation): two space-separated signatures, current first.
  auto sig = header("webhook-signature");
  BOOST_TEST(
      sig.rfind("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= v1,", 0) == 0);
}

BOOST_AUTO_TEST_CASE(generated_secrets_are_random_32_byte_keys) {
  auto a = generate_webhook_secret();
  auto b = generate_webhook_secret();
  BOOST_TEST(a.rfind("whsec_", 0) == 0);
  auto key_a = decode_webhook_secret(a);
  auto key_b = decode_webhook_secret(b);
  BOOST_REQUIRE(key_a);
  BOOST_REQUIRE(key_b);
  BOOST_TEST(key_a->size() == 32u);
  BOOST_TEST(key_b->size() == 32u);
  BOOST_TEST(a != b);
}

BOOST_AUTO_TEST_CASE(generated_keypair_is_consistent) {
  auto pair = generate_ed25519_keypair();
  BOOST_TEST(pair.secret_key.rfind("whsk_", 0) == 0);
  BOOST_TEST(pair.public_key.rfind("whpk_", 0) == 0);
  // The 64-byte (seed || public key) form; the public key is 32 bytes.
  auto raw_secret = base64_decode(std::string_view{pair.secret_key}.substr(5));
  auto raw_public = base64_decode(std::string_view{pair.public_key}.substr(5));
  BOOST_REQUIRE(raw_secret);
  BOOST_REQUIRE(raw_public);
  BOOST_TEST(raw_secret->size() == 64u);
  BOOST_TEST(raw_public->size() == 32u);
  BOOST_TEST(raw_secret->substr(32) == *raw_public);

  auto derived = ed25519_public_key(pair.secret_key);
  BOOST_REQUIRE(derived);
  BOOST_TEST(*derived == pair.public_key);
  auto seed = decode_ed25519_secret(pair.secret_key);
  BOOST_REQUIRE(seed);
  BOOST_TEST(seed->size() == 32u);
  BOOST_TEST(*seed == raw_secret->substr(0, 32));

  BOOST_TEST(generate_ed25519_keypair().secret_key != pair.secret_key);
}

BOOST_AUTO_TEST_CASE(v1a_signature_verifies_independently) {
  auto pair = generate_ed25519_keypair();
  auto seed = *decode_ed25519_secret(pair.secret_key);
  auto sig =
      sign_webhook_ed25519(seed, vector_id, vector_timestamp, vector_body);
  BOOST_TEST(sig.rfind("v1a,", 0) == 0);
  BOOST_TEST(base64_decode(std::string_view{sig}.substr(4))->size() == 64u);

  auto req = signed_request(sig, std::string{vector_body});
  BOOST_TEST(test::verify_standard_webhook(pair.public_key, req));

  // One flipped body byte.
  auto tampered = req;
  tampered.body[3] ^= 1;
  BOOST_TEST(!test::verify_standard_webhook(pair.public_key, tampered));
  // Another id or timestamp.
  auto other_id = req;
  other_id.headers["webhook-id"] = "msg_other";
  BOOST_TEST(!test::verify_standard_webhook(pair.public_key, other_id));
  auto other_ts = req;
  other_ts.headers["webhook-timestamp"] = "1614265331";
  BOOST_TEST(!test::verify_standard_webhook(pair.public_key, other_ts));
  // Another key.
  BOOST_TEST(!test::verify_standard_webhook(
      generate_ed25519_keypair().public_key, req));
  // Only "v1a," entries count for a whpk_ key, whatever comes before them.
  auto as_v1 = signed_request("v1," + sig.substr(4), req.body);
  BOOST_TEST(!test::verify_standard_webhook(pair.public_key, as_v1));
  auto among_others = signed_request(
      "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= v2,x " + sig, req.body);
  BOOST_TEST(test::verify_standard_webhook(pair.public_key, among_others));
}

// The Standard Webhooks spec's example v1a signature, made by the Svix server
// (64-byte secret key form).
BOOST_AUTO_TEST_CASE(matches_the_spec_v1a_example) {
  auto seed = decode_ed25519_secret(svix_secret);
  BOOST_REQUIRE(seed);
  BOOST_TEST(seed->size() == 32u);
  auto pub = ed25519_public_key(svix_secret);
  BOOST_REQUIRE(pub);
  BOOST_TEST(*pub == svix_public);
  BOOST_TEST(sign_webhook_ed25519(*seed, vector_id, vector_timestamp,
                                  vector_body) == svix_signature);
  BOOST_TEST(test::verify_standard_webhook(
      std::string{svix_public},
      signed_request(svix_signature, std::string{vector_body})));
}

// The test vector of the Go reference library's asymmetric support
// (standard-webhooks PR #253), whose whsk_ key is the bare 32-byte seed.
BOOST_AUTO_TEST_CASE(matches_the_go_library_v1a_vector) {
  auto key = decode_signing_secret(
      "whsk_VEVTVFNJR05JTkdLRVlET05PVFVTRVRISVNGT1JBTlk=");
  BOOST_REQUIRE(key);
  BOOST_TEST((key->kind == signing_key::scheme::ed25519));
  BOOST_TEST(key->key == "TESTSIGNINGKEYDONOTUSETHISFORANY");
  BOOST_TEST(
      sign_webhook(*key, vector_id, vector_timestamp, vector_body) ==
      "v1a,tQ9V2XOqn7jL/DQenEFpqIugdBVtiMmER5mhSkXBNwM0mkATuDe6KYYUuxqtai"
      "HeYGb7KaaBRdM5WqyeFiL8Ag==");
}

BOOST_AUTO_TEST_CASE(rejects_malformed_ed25519_secrets) {
  // `hmac_ok`: a valid whsec_ secret, which decode_signing_secret accepts.
  auto rejects = [](std::string_view secret, bool hmac_ok = false) {
    auto seed = decode_ed25519_secret(secret);
    BOOST_TEST_INFO("secret: " << secret);
    BOOST_TEST(!seed);
    if (seed)
      return;
    BOOST_TEST(seed.error().code == "invalid_secret");
    BOOST_TEST(!seed.error().message.empty());
    BOOST_TEST(!ed25519_public_key(secret));
    if (hmac_ok)
      return;
    auto key = decode_signing_secret(secret);
    BOOST_TEST(!key);
    if (!key)
      BOOST_TEST(key.error().code == "invalid_secret");
  };
  // Wrong prefix: bare base64, an HMAC-style prefix, the public key.
  rejects("VEVTVFNJR05JTkdLRVlET05PVFVTRVRISVNGT1JBTlk=");
  rejects("whsec_VEVTVFNJR05JTkdLRVlET05PVFVTRVRISVNGT1JBTlk=", true);
  rejects(svix_public);
  // Bad base64.
  rejects("whsk_not base64!");
  rejects("whsk_VEVTVFNJR05JTkdLRVlET05PVFVTRVRISVNGT1JBTlk");
  // Wrong length: empty, 16, 33 and 48 bytes.
  rejects("whsk_");
  rejects("whsk_" + base64_encode(std::string(16, 'k')));
  rejects("whsk_" + base64_encode(std::string(33, 'k')));
  rejects("whsk_" + base64_encode(std::string(48, 'k')));
  // 64 bytes whose public half is not the seed's.
  auto raw = *base64_decode(svix_secret.substr(5));
  raw[40] ^= 1;
  rejects("whsk_" + base64_encode(raw));

  BOOST_TEST(
      decode_ed25519_secret(svix_public).error().message.find("public key") !=
      std::string::npos);
}

BOOST_AUTO_TEST_CASE(decodes_signing_secrets_of_both_schemes) {
  auto hmac = decode_signing_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
  BOOST_REQUIRE(hmac);
  BOOST_TEST((hmac->kind == signing_key::scheme::hmac_sha256));
  BOOST_TEST(hmac->key ==
             *decode_webhook_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"));
  BOOST_TEST(sign_webhook(*hmac, vector_id, vector_timestamp, vector_body) ==
             "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");

  auto ed = decode_signing_secret(svix_secret);
  BOOST_REQUIRE(ed);
  BOOST_TEST((ed->kind == signing_key::scheme::ed25519));
  BOOST_TEST(ed->key.size() == 32u);

  BOOST_TEST(!decode_signing_secret(""));
  BOOST_TEST(decode_signing_secret("whsecret").error().code ==
             "invalid_secret");
  BOOST_TEST(!decode_signing_secret("whsec_c2hvcnQ=")); // too short
}

// A rotation from HMAC to Ed25519: both signatures, in key order, each
// verifying with its own receiver-side secret.
BOOST_AUTO_TEST_CASE(webhook_request_mixes_v1_and_v1a_signatures) {
  auto hmac = *decode_signing_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
  auto ed = *decode_signing_secret(svix_secret);
  webhook_message msg{vector_id, vector_timestamp, vector_body};

  auto headers = signature_headers(msg, std::vector{hmac, ed});
  auto sig = header_of(headers, "webhook-signature");
  BOOST_TEST(sig == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= " +
                        std::string{svix_signature});
  auto received = signed_request(sig, std::string{vector_body});
  BOOST_TEST(test::verify_standard_webhook(
      "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", received));
  BOOST_TEST(test::verify_standard_webhook(std::string{svix_public}, received));

  auto reversed = signature_headers(msg, std::vector{ed, hmac});
  BOOST_TEST(header_of(reversed, "webhook-signature") ==
             std::string{svix_signature} +
                 " v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  BOOST_TEST(header_of(reversed, "webhook-id") == vector_id);
  BOOST_TEST(header_of(reversed, "webhook-timestamp") == "1614265330");
}

BOOST_AUTO_TEST_SUITE_END()
