/* A plugin whose table lacks a required function (classify). */
#include "tocsin_plugin.h"

#include "test_plugin_stubs.h"

static const tocsin_transport table = {
    .size = sizeof(tocsin_transport),
    .abi_version = TOCSIN_PLUGIN_ABI_VERSION,
    .name = "incomplete",
    .version = "0.1",
    .open_endpoint = stub_open_endpoint,
    .build_request = stub_build_request,
    .classify = NULL,
};

TOCSIN_PLUGIN_EXPORT const tocsin_transport*
tocsin_plugin_entry_v2(const tocsin_host* host, const char** reason) {
  (void)host;
  (void)reason;
  return &table;
}
