/* A plugin whose table claims a future ABI under this ABI's entry point: the
 * host must refuse it by its version. */
#include "tocsin_plugin.h"

#include "test_plugin_stubs.h"

static const tocsin_transport table = {
    .size = sizeof(tocsin_transport),
    .abi_version = 3u,
    .name = "wrong_abi",
    .version = "3.0.0",
    .open_endpoint = stub_open_endpoint,
    .build_request = stub_build_request,
    .classify = stub_classify,
};

TOCSIN_PLUGIN_EXPORT const tocsin_transport*
tocsin_plugin_entry_v2(const tocsin_host* host, const char** reason) {
  (void)host;
  (void)reason;
  return &table;
}
