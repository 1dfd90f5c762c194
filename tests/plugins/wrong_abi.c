/* A plugin built for a future ABI: the host must refuse it by its version. */
#include "tocsin_plugin.h"

#include "test_plugin_stubs.h"

static const tocsin_transport table = {
    .size = sizeof(tocsin_transport),
    .abi_version = 2u,
    .name = "wrong_abi",
    .version = "2.0.0",
    .validate_options = stub_validate_options,
    .build_request = stub_build_request,
    .classify = stub_classify,
};

/* Ignores the host's version, as a careless plugin would. */
TOCSIN_PLUGIN_EXPORT const tocsin_transport*
tocsin_plugin_entry(uint32_t host_abi_version) {
  (void)host_abi_version;
  return &table;
}
