// Reads the dynamic symbol table of an ELF shared object without loading it,
// so that a file that is not a tocsin plugin is refused before dlopen runs
// any of its code (constructors run at load, before any entry point is
// looked up). Bounds-checked throughout: the file is untrusted input.
#pragma once

#include <string>
#include <string_view>

namespace tocsin::plugins {

struct elf_symbol_check {
  enum class verdict {
    defined,    ///< exports `name` as a function
    absent,     ///< a shared object for this machine without it
    unreadable, ///< ELF for this machine, but no section table to read
    refused,    ///< not a shared object this process could load
  } what = verdict::refused;
  std::string why; ///< for refused and unreadable
};

/// Whether the ELF image `file` (the whole file's bytes) exports the
/// function `name` with default visibility in its .dynsym table.
elf_symbol_check elf_exports_function(std::string_view file,
                                      std::string_view name);

} // namespace tocsin::plugins
