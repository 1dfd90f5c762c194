#include "common/file_safety.hpp"

#include "tests/support/temp_dir.hpp"

#include <boost/test/unit_test.hpp>

#include <fstream>

#include <fcntl.h>
#include <unistd.h>

using namespace tocsin;

BOOST_AUTO_TEST_SUITE(file_safety)

BOOST_AUTO_TEST_CASE(private_files_and_directories) {
  test::temp_dir dir;
  auto d = dir.path() / "data";
  std::filesystem::create_directory(d);
  BOOST_REQUIRE(::chmod(d.c_str(), 0700) == 0);
  BOOST_TEST(!private_dir_problem(d));
  BOOST_REQUIRE(::chmod(d.c_str(), 0755) == 0);
  auto why = private_dir_problem(d);
  BOOST_REQUIRE(why);
  BOOST_TEST(why->find("0755") != std::string::npos, *why);
  BOOST_TEST(why->find("chmod 700") != std::string::npos, *why);
  std::ofstream{dir.path() / "file"} << "x";
  BOOST_TEST(
      private_dir_problem(dir.path() / "file")->find("not a directory") !=
      std::string::npos);

  auto f = dir.path() / "secret";
  std::ofstream{f} << "s";
  BOOST_REQUIRE(::chmod(f.c_str(), 0600) == 0);
  int fd = ::open(f.c_str(), O_RDONLY);
  BOOST_REQUIRE(fd >= 0);
  BOOST_TEST(!private_file_problem(fd, f));
  BOOST_REQUIRE(::fchmod(fd, 0640) == 0);
  BOOST_TEST(private_file_problem(fd, f)->find("chmod 600") !=
             std::string::npos);
  ::close(fd);
  fd = ::open(dir.path().c_str(), O_RDONLY);
  BOOST_TEST(private_file_problem(fd, dir.path())->find("not a regular") !=
             std::string::npos);
  ::close(fd);
}

BOOST_AUTO_TEST_CASE(trusted_code) {
  struct stat st {};
  st.st_uid = ::geteuid();
  st.st_mode = S_IFREG | 0755;
  BOOST_TEST(!trusted_code_problem(st, "p.so"));
  st.st_uid = 0;
  BOOST_TEST(!trusted_code_problem(st, "p.so")); // root's is fine
  st.st_mode = S_IFREG | 0757;
  BOOST_TEST(trusted_code_problem(st, "p.so")->find("writable by others") !=
             std::string::npos);
  st.st_mode = S_IFREG | 0775;
  BOOST_TEST(trusted_code_problem(st, "p.so")->find("its group") !=
             std::string::npos);
  st.st_mode = S_IFREG | 0755;
  st.st_uid = ::geteuid() + 1;
  if (st.st_uid != 0)
    BOOST_TEST(trusted_code_problem(st, "p.so")->find("owned by uid") !=
               std::string::npos);
}

BOOST_AUTO_TEST_CASE(trusted_code_dirs_are_checked_up_to_the_root) {
  tocsin::test::temp_dir dir; // 0700 under /tmp (1777: sticky)
  std::filesystem::path real;
  BOOST_TEST(!trusted_code_dir_problem(dir.path(), &real));
  BOOST_TEST(real == std::filesystem::canonical(dir.path()));
  auto inner = dir.path() / "a" / "b";
  std::filesystem::create_directories(inner);
  BOOST_REQUIRE(::chmod((dir.path() / "a").c_str(), 0757) == 0);
  auto why = trusted_code_dir_problem(inner);
  BOOST_REQUIRE(why);
  BOOST_TEST(why->find("/a, above ") != std::string::npos, *why);
  BOOST_TEST(why->find("writable by others (mode 0757, not sticky)") !=
                 std::string::npos,
             *why);
  BOOST_REQUIRE(::chmod((dir.path() / "a").c_str(), 01757) == 0);
  BOOST_TEST(!trusted_code_dir_problem(inner));
  BOOST_TEST(trusted_code_dir_problem(dir.path() / "missing")
                 ->find("cannot resolve") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
