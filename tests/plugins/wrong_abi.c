/* A plugin built for a future ABI: the host must refuse it by its version. */
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

static int classify(const tocsin_host_api* host, tocsin_call* call,
                    const tocsin_response_view* response) {
  (void)host;
  (void)call;
  (void)response;
  return TOCSIN_OUTCOME_SUCCESS;
}

static const tocsin_transport table = {
    sizeof(tocsin_transport),
    2u,
    "wrong_abi",
    "2.0.0",
    validate_options,
    build_request,
    classify,
};

/* Ignores the host's version, as a careless plugin would. */
TOCSIN_PLUGIN_EXPORT const tocsin_transport*
tocsin_plugin_entry(uint32_t host_abi_version) {
  (void)host_abi_version;
  return &table;
}
