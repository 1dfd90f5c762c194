/* A shared object that is no plugin: it exports no entry point. Its
 * constructor leaves a mark (a file named by TOCSIN_TEST_CONSTRUCTOR_MARK) if
 * anything ever loads it: the loader must refuse it without loading it. */
#include "tocsin_plugin.h"

#include <stdio.h>
#include <stdlib.h>

__attribute__((constructor)) static void leave_a_mark(void) {
  const char* path = getenv("TOCSIN_TEST_CONSTRUCTOR_MARK");
  if (path != NULL) {
    FILE* f = fopen(path, "w");
    if (f != NULL) {
      fputs("no_entry.so was loaded\n", f);
      fclose(f);
    }
  }
}

TOCSIN_PLUGIN_EXPORT int tocsin_not_an_entry(void) {
  return 1;
}
