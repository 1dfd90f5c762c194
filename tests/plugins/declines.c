/* A plugin that serves no ABI version this host speaks: returns NULL. */
#include "tocsin_plugin.h"

TOCSIN_PLUGIN_EXPORT const tocsin_transport*
tocsin_plugin_entry(uint32_t host_abi_version) {
  (void)host_abi_version;
  return NULL;
}
