#include "plugins/elf_symbols.hpp"

#include <cstring>

#include <elf.h>

namespace tocsin::plugins {

namespace {

using verdict = elf_symbol_check::verdict;

#if defined(__x86_64__)
constexpr int host_machine = EM_X86_64;
#elif defined(__aarch64__)
constexpr int host_machine = EM_AARCH64;
#else
constexpr int host_machine = -1; // not checked
#endif

elf_symbol_check refuse(std::string why) {
  return {verdict::refused, std::move(why)};
}

/// A copy of the `T` at `offset` in `file`, if it lies wholly inside.
template <class T>
bool read_at(std::string_view file, std::uint64_t offset, T& out) {
  if (offset > file.size() || file.size() - offset < sizeof(T))
    return false;
  std::memcpy(&out, file.data() + offset, sizeof(T));
  return true;
}

/// The section `index` of the table that starts at `shoff`.
bool section_at(std::string_view file, const Elf64_Ehdr& eh, std::size_t index,
                Elf64_Shdr& out) {
  if (index >= eh.e_shnum || eh.e_shoff > file.size())
    return false;
  return read_at(file, eh.e_shoff + index * sizeof(Elf64_Shdr), out);
}

} // namespace

elf_symbol_check elf_exports_function(std::string_view file,
                                      std::string_view name) {
  Elf64_Ehdr eh;
  if (file.size() < EI_NIDENT || std::memcmp(file.data(), ELFMAG, SELFMAG) != 0)
    return refuse("not an ELF file");
  if (static_cast<unsigned char>(file[EI_CLASS]) != ELFCLASS64)
    return refuse("a 32-bit ELF file; this tocsin is 64-bit");
  bool little = static_cast<unsigned char>(file[EI_DATA]) == ELFDATA2LSB;
  if (little != (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__))
    return refuse("an ELF file of the other byte order");
  if (!read_at(file, 0, eh))
    return refuse("a truncated ELF header");
  if (eh.e_type != ET_DYN)
    return refuse("not a shared object (ELF type " + std::to_string(eh.e_type) +
                  ")");
  if (host_machine >= 0 && eh.e_machine != host_machine)
    return refuse("built for another machine (ELF machine " +
                  std::to_string(eh.e_machine) + ")");
  if (eh.e_shoff == 0 || eh.e_shnum == 0)
    return {verdict::unreadable, "no section table"};
  if (eh.e_shentsize != sizeof(Elf64_Shdr))
    return refuse("a malformed section table");
  for (std::size_t i = 0; i < eh.e_shnum; ++i) {
    Elf64_Shdr sh;
    if (!section_at(file, eh, i, sh))
      return refuse("a section table beyond the end of the file");
    if (sh.sh_type != SHT_DYNSYM)
      continue;
    Elf64_Shdr strtab;
    if (sh.sh_entsize != sizeof(Elf64_Sym) ||
        !section_at(file, eh, sh.sh_link, strtab) ||
        strtab.sh_offset > file.size() ||
        file.size() - strtab.sh_offset < strtab.sh_size ||
        sh.sh_offset > file.size() || file.size() - sh.sh_offset < sh.sh_size)
      return refuse("a malformed dynamic symbol table");
    auto strings = file.substr(strtab.sh_offset, strtab.sh_size);
    for (std::uint64_t off = 0; off + sizeof(Elf64_Sym) <= sh.sh_size;
         off += sizeof(Elf64_Sym)) {
      Elf64_Sym sym;
      if (!read_at(file, sh.sh_offset + off, sym))
        break;
      if (sym.st_name >= strings.size())
        continue;
      auto rest = strings.substr(sym.st_name);
      auto sym_name = rest.substr(0, rest.find('\0'));
      if (sym_name != name)
        continue;
      auto binding = ELF64_ST_BIND(sym.st_info);
      if (sym.st_shndx != SHN_UNDEF && ELF64_ST_TYPE(sym.st_info) == STT_FUNC &&
          (binding == STB_GLOBAL || binding == STB_WEAK) &&
          ELF64_ST_VISIBILITY(sym.st_other) == STV_DEFAULT)
        return {verdict::defined, {}};
    }
  }
  // Without a .dynsym table nothing is exported at all.
  return {verdict::absent, {}};
}

} // namespace tocsin::plugins
