/* A shared object that is no plugin: it exports no entry point. */
#include "tocsin_plugin.h"

TOCSIN_PLUGIN_EXPORT int tocsin_not_an_entry(void) {
  return 1;
}
