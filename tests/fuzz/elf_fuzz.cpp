// libFuzzer target for the plugin loader's ELF reader: any bytes as the file
// in a plugins directory. It answers without reading outside the file.
#include "plugins/elf_symbols.hpp"

#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  std::string_view file{reinterpret_cast<const char*>(data), size};
  auto check =
      tocsin::plugins::elf_exports_function(file, "tocsin_plugin_entry_v2");
  using verdict = tocsin::plugins::elf_symbol_check::verdict;
  if ((check.what == verdict::refused || check.what == verdict::unreadable) &&
      check.why.empty())
    __builtin_trap();
  return 0;
}
