/* A plugin whose table lacks a required function (classify). */
#include "tocsin_plugin.h"

static int validate_options(const tocsin_host_api* host, tocsin_call* call,
                            const tocsin_endpoint_view* endpoint) {
  (void)host;
  (void)call;
  (void)endpoint;
  return 0;
}

static int build_request(const tocsin_host_api* host, tocsin_call* call,
                         const tocsin_event_view* event,
                         const tocsin_endpoint_view* endpoint) {
  (void)host;
  (void)call;
  (void)event;
  (void)endpoint;
  return 0;
}

static const tocsin_transport table = {
    sizeof(tocsin_transport),
    TOCSIN_PLUGIN_ABI_VERSION,
    "incomplete",
    "0.1",
    validate_options,
    build_request,
    NULL,
};

TOCSIN_PLUGIN_EXPORT const tocsin_transport*
tocsin_plugin_entry(uint32_t host_abi_version) {
  return host_abi_version == TOCSIN_PLUGIN_ABI_VERSION ? &table : NULL;
}
