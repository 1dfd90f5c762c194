#include "plugins/elf_symbols.hpp"

#include <boost/test/unit_test.hpp>

#include <elf.h>

#include <cstring>
#include <fstream>
#include <sstream>

using namespace tocsin::plugins;
using verdict = elf_symbol_check::verdict;

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

const std::string dir = TOCSIN_TEST_PLUGINS_DIR;
constexpr const char* entry = "tocsin_plugin_entry_v2";

} // namespace

BOOST_AUTO_TEST_SUITE(elf_symbols)

BOOST_AUTO_TEST_CASE(finds_the_entry_point_of_real_plugins) {
  auto discord = read_file(dir + "/discord.so");
  BOOST_REQUIRE(!discord.empty());
  BOOST_TEST((elf_exports_function(discord, entry).what == verdict::defined));
  BOOST_TEST((elf_exports_function(discord, "tocsin_plugin_entr").what ==
              verdict::absent));
  // Names match whole: ABI 1's entry point is a prefix of ABI 2's.
  BOOST_TEST((elf_exports_function(discord, "tocsin_plugin_entry").what ==
              verdict::absent));
  auto v1 = read_file(dir + "/abi_v1.so");
  BOOST_TEST((elf_exports_function(v1, "tocsin_plugin_entry").what ==
              verdict::defined));
  BOOST_TEST((elf_exports_function(v1, entry).what == verdict::absent));
  auto no_entry = read_file(dir + "/no_entry.so");
  BOOST_TEST((elf_exports_function(no_entry, entry).what == verdict::absent));
  // An undefined reference is not an export: discord.so imports libc's
  // functions it calls.
  BOOST_TEST(
      (elf_exports_function(discord, "snprintf").what == verdict::absent));
}

BOOST_AUTO_TEST_CASE(refuses_what_is_not_a_loadable_shared_object) {
  auto check = elf_exports_function("just text", entry);
  BOOST_TEST((check.what == verdict::refused));
  BOOST_TEST(check.why == "not an ELF file");
  auto discord = read_file(dir + "/discord.so");
  auto broken = discord;
  broken[EI_CLASS] = ELFCLASS32;
  BOOST_TEST(elf_exports_function(broken, entry).why.find("32-bit") !=
             std::string::npos);
  broken = discord;
  Elf64_Ehdr eh;
  std::memcpy(&eh, broken.data(), sizeof(eh));
  eh.e_type = ET_EXEC;
  std::memcpy(broken.data(), &eh, sizeof(eh));
  BOOST_TEST(elf_exports_function(broken, entry).why.find("not a shared") !=
             std::string::npos);
  std::memcpy(&eh, discord.data(), sizeof(eh));
  eh.e_machine = EM_ARM;
  broken = discord;
  std::memcpy(broken.data(), &eh, sizeof(eh));
  BOOST_TEST(elf_exports_function(broken, entry).why.find("another machine") !=
             std::string::npos);
}

BOOST_AUTO_TEST_CASE(never_reads_outside_a_damaged_file) {
  auto discord = read_file(dir + "/discord.so");
  // Every prefix of the file, and section tables pointing anywhere.
  for (std::size_t n = 0; n < discord.size(); n += 97)
    (void)elf_exports_function(std::string_view{discord}.substr(0, n), entry);
  Elf64_Ehdr eh;
  std::memcpy(&eh, discord.data(), sizeof(eh));
  for (std::uint64_t off :
       {std::uint64_t{0xffffffffffffff00}, std::uint64_t{discord.size() - 10},
        std::uint64_t{1}}) {
    auto broken = discord;
    auto e = eh;
    e.e_shoff = off;
    std::memcpy(broken.data(), &e, sizeof(e));
    auto check = elf_exports_function(broken, entry);
    BOOST_TEST((check.what != verdict::defined));
  }
  // No section table at all: cannot be told from the file.
  auto stripped = discord;
  auto e = eh;
  e.e_shoff = 0;
  e.e_shnum = 0;
  std::memcpy(stripped.data(), &e, sizeof(e));
  BOOST_TEST(
      (elf_exports_function(stripped, entry).what == verdict::unreadable));
}

BOOST_AUTO_TEST_SUITE_END()
