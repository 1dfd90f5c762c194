/* A plugin that cannot serve this host (say, a library it needs is missing):
 * its entry point returns NULL and says why. */
#include "tocsin_plugin.h"

#include <stddef.h>

TOCSIN_PLUGIN_EXPORT const tocsin_transport*
tocsin_plugin_entry_v2(const tocsin_host* host, const char** reason) {
  (void)host;
  *reason = "needs libfoo 2\nand a newline to strip";
  return NULL;
}
