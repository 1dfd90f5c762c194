/* A plugin that misuses the host API in the way its endpoint options ask,
 * so that the tests can check that the host catches each misuse. */
#include "tocsin_plugin.h"

#include "test_plugin_stubs.h"

#include <string.h>

static tocsin_str lit(const char* s) {
  tocsin_str r;
  r.ptr = s;
  r.len = strlen(s);
  return r;
}

static int is(tocsin_str s, const char* what) {
  return s.len == strlen(what) && memcmp(s.ptr, what, s.len) == 0;
}

static int build_request(const tocsin_host_api* host, tocsin_call* call,
                         const tocsin_event_view* event,
                         const tocsin_endpoint_view* endpoint) {
  tocsin_str how = endpoint->options_json;
  (void)event;
  if (is(how, "\"bad_method\""))
    host->set_method(call, lit("GE T"));
  else if (is(how, "\"bad_header_name\""))
    host->add_header(call, lit("bad name"), lit("x"));
  else if (is(how, "\"crlf\""))
    host->add_header(call, lit("x-ok"), lit("a\r\ninjected: 1"));
  else if (is(how, "\"null_body\"")) {
    tocsin_str s;
    s.ptr = NULL;
    s.len = 5;
    host->append_body(call, s);
  } else if (is(how, "\"huge_body\"")) {
    static const char chunk[4096] = {0};
    tocsin_str s;
    int i;
    s.ptr = chunk;
    s.len = sizeof chunk;
    for (i = 0; i <= 256; ++i) /* 1 MiB + 4 KiB */
      host->append_body(call, s);
  } else if (is(how, "\"bad_url\""))
    host->set_url(call, lit("not a url"));
  else if (is(how, "\"fails_silently\""))
    return 1;
  else if (is(how, "\"fails\"")) {
    host->set_error(call, lit("quota"), lit("no more\nrequests"));
    return 1;
  }
  /* anything else: sets nothing at all */
  return 0;
}

static int classify(const tocsin_host_api* host, tocsin_call* call,
                    const tocsin_response_view* response) {
  if (response->status == 200) {
    host->add_header(call, lit("x"), lit("y")); /* not during classify */
    return TOCSIN_OUTCOME_SUCCESS;
  }
  if (response->status == 500) {
    host->set_reason(call, lit("line one\nline two"));
    return TOCSIN_OUTCOME_RETRY;
  }
  return 42;
}

static const tocsin_transport table = {
    .size = sizeof(tocsin_transport),
    .abi_version = TOCSIN_PLUGIN_ABI_VERSION,
    .name = "unruly",
    .version = "0.0.1",
    .validate_options = stub_validate_options,
    .build_request = build_request,
    .classify = classify,
};

TOCSIN_PLUGIN_EXPORT const tocsin_transport*
tocsin_plugin_entry(uint32_t host_abi_version) {
  return host_abi_version == TOCSIN_PLUGIN_ABI_VERSION ? &table : NULL;
}
