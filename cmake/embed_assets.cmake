# Writes OUT, a C++ file holding each of the files in ASSETS ("path,type,file"
# triples separated by '|') as a raw string literal: the dashboard is part of
# the binary, served without touching the disk. Run by add_custom_command.
set(body "// Generated from the dashboard's files by cmake/embed_assets.cmake.\n")
string(APPEND body "#include \"api/dashboard.hpp\"\n\n")
# Chart.js is one literal of some 200 KB, over the 64 KiB that compilers must
# support (and do, far beyond): not a portability problem for gcc or clang.
string(APPEND body "#pragma GCC diagnostic ignored \"-Woverlength-strings\"\n\n")
string(APPEND body "namespace tocsin::api {\n\nconst std::vector<asset>& dashboard_assets() {\n")
string(APPEND body "  static const std::vector<asset> all{\n")
string(REPLACE "|" ";" entries "${ASSETS}")
foreach(entry IN LISTS entries)
  string(REPLACE "," ";" parts "${entry}")
  list(GET parts 0 path)
  list(GET parts 1 type)
  list(GET parts 2 file)
  file(READ "${file}" content)
  string(FIND "${content}" ")tocsin_asset\"" clash)
  if(NOT clash EQUAL -1)
    message(FATAL_ERROR "${file} holds the raw string's delimiter")
  endif()
  string(APPEND body "      {\"${path}\", \"${type}\",\n       R\"tocsin_asset(${content})tocsin_asset\"},\n")
endforeach()
string(APPEND body "  };\n  return all;\n}\n\n} // namespace tocsin::api\n")
file(WRITE "${OUT}" "${body}")
