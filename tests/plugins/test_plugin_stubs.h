/* Do-nothing table functions for the test plugins that only need a table to
 * hand the host (incomplete.c, wrong_abi.c): each one stands for
 * "this part of the plugin does not matter to its test". C99, against
 * tocsin_plugin.h only. */
#ifndef TOCSIN_TEST_PLUGIN_STUBS_H
#define TOCSIN_TEST_PLUGIN_STUBS_H

#include "tocsin_plugin.h"

/* Accepts any options; keeps nothing. */
static inline int stub_open_endpoint(const tocsin_host_api* host,
                                     tocsin_call* call,
                                     const tocsin_endpoint_view* endpoint,
                                     tocsin_instance** instance) {
  (void)host;
  (void)call;
  (void)endpoint;
  (void)instance;
  return 0;
}

/* Succeeds without setting anything. */
static inline int stub_build_request(const tocsin_host_api* host,
                                     tocsin_call* call,
                                     tocsin_instance* instance,
                                     const tocsin_event_view* event,
                                     const tocsin_endpoint_view* endpoint) {
  (void)host;
  (void)call;
  (void)instance;
  (void)event;
  (void)endpoint;
  return 0;
}

/* Every answer a success. */
static inline int stub_classify(const tocsin_host_api* host, tocsin_call* call,
                                tocsin_instance* instance,
                                const tocsin_response_view* response) {
  (void)host;
  (void)call;
  (void)instance;
  (void)response;
  return TOCSIN_OUTCOME_SUCCESS;
}

#endif
