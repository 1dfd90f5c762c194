#include "app/auth.hpp"

#include "common/encoding.hpp"
#include "tests/support/temp_dir.hpp"

#include <boost/test/unit_test.hpp>

#include <sys/stat.h>

using namespace tocsin;
using namespace tocsin::app;

BOOST_AUTO_TEST_SUITE(auth)

BOOST_AUTO_TEST_CASE(tokens_are_matched_by_hash_and_give_their_role) {
  authenticator a{{{"p", hex_encode(sha256("producer-token")), "ingest"},
                   {"r", hex_encode(sha256("reader-token")), "read"}}};
  BOOST_TEST((a.authenticate("Bearer producer-token") == role::ingest));
  BOOST_TEST((a.authenticate("bearer reader-token") == role::read));
  BOOST_TEST(!a.authenticate("Bearer wrong-token"));
  BOOST_TEST(!a.authenticate("Bearer "));
  BOOST_TEST(!a.authenticate("Basic cHJvZHVjZXItdG9rZW4="));
  BOOST_TEST(!a.authenticate(""));
  BOOST_TEST(!a.authenticate("producer-token"));
}

BOOST_AUTO_TEST_CASE(admin_token_is_created_once_with_mode_0600) {
  test::temp_dir dir;
  bool created = false;
  auto first = ensure_admin_token(dir.path(), created);
  BOOST_REQUIRE(first);
  BOOST_TEST(created);
  BOOST_TEST(first->role == "admin");
  struct stat st {};
  BOOST_REQUIRE(::stat((dir.path() / "admin.token").c_str(), &st) == 0);
  BOOST_TEST((st.st_mode & 0777) == 0600u);
  auto second = ensure_admin_token(dir.path(), created);
  BOOST_REQUIRE(second);
  BOOST_TEST(!created);
  BOOST_TEST(second->sha256 == first->sha256);
}

BOOST_AUTO_TEST_SUITE_END()
