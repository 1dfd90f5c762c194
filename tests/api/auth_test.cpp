#include "api/auth.hpp"

#include "common/encoding.hpp"
#include "tests/support/temp_dir.hpp"

#include <boost/test/unit_test.hpp>

#include <sys/stat.h>

using namespace tocsin;
using namespace tocsin::api;

BOOST_AUTO_TEST_SUITE(auth)

BOOST_AUTO_TEST_CASE(tokens_are_matched_by_hash_and_give_their_role) {
  authenticator a{{{"p", hex_encode(sha256("producer-token")), "ingest"},
                   {"r", hex_encode(sha256("reader-token")), "read"}}};
  auto producer = a.authenticate("Bearer producer-token");
  auto reader = a.authenticate("bearer reader-token");
  BOOST_REQUIRE(producer);
  BOOST_REQUIRE(reader);
  BOOST_TEST((producer->r == role::ingest));
  BOOST_TEST((reader->r == role::read));
  // Each token has its own scope (for idempotency keys), which is not the
  // token and is the same at every request.
  BOOST_TEST(producer->scope != reader->scope);
  BOOST_TEST(producer->scope.rfind("tok_", 0) == 0);
  BOOST_TEST(producer->scope.find("producer") == std::string::npos);
  BOOST_TEST(a.authenticate("Bearer producer-token")->scope == producer->scope);
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

BOOST_AUTO_TEST_CASE(an_admin_token_others_may_read_or_a_symlink_is_refused) {
  test::temp_dir dir;
  bool created = false;
  BOOST_REQUIRE(ensure_admin_token(dir.path(), created));
  auto file = dir.path() / "admin.token";
  // Readable by others: refused, saying what to do.
  BOOST_REQUIRE(::chmod(file.c_str(), 0644) == 0);
  auto open_mode = ensure_admin_token(dir.path(), created);
  BOOST_REQUIRE(!open_mode);
  BOOST_TEST(open_mode.error().message.find("0644") != std::string::npos,
             open_mode.error().message);
  BOOST_TEST(open_mode.error().message.find("chmod 600") != std::string::npos);
  BOOST_REQUIRE(::chmod(file.c_str(), 0600) == 0);
  BOOST_TEST(ensure_admin_token(dir.path(), created).ok());
  // A symlink (to a token an attacker chose): refused, not followed.
  test::temp_dir other;
  bool other_created = false;
  BOOST_REQUIRE(ensure_admin_token(other.path(), other_created));
  std::filesystem::remove(file);
  std::filesystem::create_symlink(other.path() / "admin.token", file);
  auto linked = ensure_admin_token(dir.path(), created);
  BOOST_REQUIRE(!linked);
  BOOST_TEST(linked.error().message.find("symbolic link") != std::string::npos,
             linked.error().message);
}

BOOST_AUTO_TEST_SUITE_END()
