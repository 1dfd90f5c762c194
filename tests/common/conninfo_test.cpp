// Connection strings in logs and errors: every form of password libpq reads
// is masked, and nothing else changes.
#include "common/conninfo.hpp"

#include <boost/test/unit_test.hpp>

#include <utility>
#include <vector>

using namespace tocsin;

namespace {

using cases = std::vector<std::pair<std::string, std::string>>;

void expect_masked(const cases& all) {
  for (auto& [given, masked] : all)
    BOOST_TEST(mask_password(given) == masked, given);
}

} // namespace

BOOST_AUTO_TEST_SUITE(conninfo)

BOOST_AUTO_TEST_CASE(a_urls_password_is_masked_and_the_rest_kept) {
  expect_masked({
      {"postgresql://u:s3cret@db.internal/tocsin",
       "postgresql://u:***@db.internal/tocsin"},
      {"postgres://u:s3cret@db:5432/tocsin?sslmode=require",
       "postgres://u:***@db:5432/tocsin?sslmode=require"},
      // Several hosts (a failover pair).
      {"postgresql://u:pw@h1:5432,h2:5432/t?target_session_attrs=read-write",
       "postgresql://u:***@h1:5432,h2:5432/t?target_session_attrs=read-write"},
      // An empty password, a raw '@' or '/' in it (libpq would not read
      // those, but they must not be shown either).
      {"postgresql://u:@h/t", "postgresql://u:***@h/t"},
      {"postgresql://u:p@ss@h/t", "postgresql://u:***@h/t"},
      {"postgresql://u:pa/ss@h/t", "postgresql://u:***@h/t"},
  });
  // No password: nothing changes.
  for (auto s : {"postgresql://tocsin@db.internal/tocsin",
                 "postgresql://db.internal:5433/tocsin",
                 "postgresql:///tocsin?host=/var/run/postgresql",
                 "postgresql://h/t?application_name=a@b", "postgresql://",
                 "host=db passfile=/etc/pgpass", ""})
    BOOST_TEST(mask_password(s) == s);
}

BOOST_AUTO_TEST_CASE(password_parameters_are_masked_in_urls_and_pairs) {
  expect_masked({
      {"postgresql://u@h/t?password=s3cret&sslmode=require",
       "postgresql://u@h/t?password=***&sslmode=require"},
      {"postgresql://h/t?sslmode=require&sslpassword=k",
       "postgresql://h/t?sslmode=require&sslpassword=***"},
      // libpq decodes parameter names too.
      {"postgresql://h/t?pass%77ord=s3cret", "postgresql://h/t?pass%77ord=***"},
      {"host=db user=tocsin password=s3cret dbname=t",
       "host=db user=tocsin password=*** dbname=t"},
      {"password = 's3 cr\\'et' host=db", "password = *** host=db"},
      {"host=db sslpassword=k", "host=db sslpassword=***"},
      // Not key=value after all: what follows is not shown.
      {"host=db password s3cret", "host=db ***"},
  });
}

BOOST_AUTO_TEST_CASE(passwords_quoted_in_a_message_are_hidden) {
  std::string url = "postgresql://u:p%40ss@db/t";
  BOOST_TEST(hide_password("cannot connect to " + url + ": refused", url) ==
             "cannot connect to postgresql://u:***@db/t: refused");
  // As written and as libpq decodes it.
  BOOST_TEST(hide_password("password for p%40ss / p@ss", url) ==
             "password for *** / ***");
  std::string pairs = "host=db password='a b'";
  BOOST_TEST(hide_password("in " + pairs + ": 'a b', a b", pairs) ==
             "in host=db password=***: ***, ***");
  // Nothing to hide: the message as it was.
  BOOST_TEST(hide_password("no route to host", "postgresql://db/t") ==
             "no route to host");
}

BOOST_AUTO_TEST_SUITE_END()
