/* A plugin that misuses the host API in the way its endpoint options ask,
 * so that the tests can check that the host catches each misuse. It also
 * keeps count of its open endpoint instances (read by the tests through
 * unruly_live_instances) and, when unloaded, writes that count to the file
 * named by TOCSIN_TEST_UNLOAD_MARK. */
#include "tocsin_plugin.h"
#include "tocsin_plugin_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An endpoint's options, copied: what build_request misbehaves by. */
struct tocsin_instance {
  char how[64];
};

static int live_instances;

TOCSIN_PLUGIN_EXPORT int unruly_live_instances(void) {
  return live_instances;
}

static int open_endpoint(const tocsin_host_api* host, tocsin_call* call,
                         const tocsin_endpoint_view* endpoint,
                         tocsin_instance** instance) {
  tocsin_str how = endpoint->options_json;
  tocsin_instance* in;
  if (tocsin_str_eq(how, "\"refuse\""))
    return tocsin_fail(host, call, "bad_options", "no\nthanks");
  if (tocsin_str_eq(how, "\"refuse_silently\""))
    return 1;
  if (tocsin_str_eq(how, "\"misuse_open\"")) {
    host->add_header(call, tocsin_lit("x"), tocsin_lit("y"));
    return 0;
  }
  in = calloc(1, sizeof *in);
  if (in == NULL)
    return tocsin_fail(host, call, "out_of_memory", "out of memory");
  memcpy(in->how, how.ptr, how.len < sizeof in->how ? how.len : 0);
  ++live_instances;
  *instance = in;
  return 0;
}

static void close_endpoint(tocsin_instance* instance) {
  --live_instances;
  free(instance);
}

static int build_request(const tocsin_host_api* host, tocsin_call* call,
                         tocsin_instance* instance,
                         const tocsin_event_view* event,
                         const tocsin_endpoint_view* endpoint) {
  tocsin_str how = tocsin_lit(instance->how);
  (void)event;
  (void)endpoint;
  if (tocsin_str_eq(how, "\"bad_method\""))
    host->set_method(call, tocsin_lit("GE T"));
  else if (tocsin_str_eq(how, "\"bad_header_name\""))
    host->add_header(call, tocsin_lit("bad name"), tocsin_lit("x"));
  else if (tocsin_str_eq(how, "\"crlf\""))
    host->add_header(call, tocsin_lit("x-ok"), tocsin_lit("a\r\ninjected: 1"));
  else if (tocsin_str_eq(how, "\"null_body\"")) {
    tocsin_str s;
    s.ptr = NULL;
    s.len = 5;
    host->append_body(call, s);
  } else if (tocsin_str_eq(how, "\"huge_body\"")) {
    static const char chunk[4096] = {0};
    tocsin_str s;
    int i;
    s.ptr = chunk;
    s.len = sizeof chunk;
    for (i = 0; i <= 256; ++i) /* 1 MiB + 4 KiB */
      host->append_body(call, s);
  } else if (tocsin_str_eq(how, "\"bad_url\""))
    host->set_url(call, tocsin_lit("not a url"));
  else if (tocsin_str_eq(how, "\"fails_silently\""))
    return 1;
  else if (tocsin_str_eq(how, "\"fails\"")) {
    host->set_error(call, tocsin_lit("quota"), tocsin_lit("no more\nrequests"));
    return 1;
  }
  /* anything else: sets nothing at all */
  return 0;
}

static int classify(const tocsin_host_api* host, tocsin_call* call,
                    tocsin_instance* instance,
                    const tocsin_response_view* response) {
  (void)instance;
  if (response->status == 200) {
    host->add_header(call, tocsin_lit("x"), tocsin_lit("y")); /* not here */
    return TOCSIN_OUTCOME_SUCCESS;
  }
  if (response->status == 500) {
    host->set_reason(call, tocsin_lit("line one\nline two"));
    return TOCSIN_OUTCOME_RETRY;
  }
  return 42;
}

static void unload(void) {
  const char* path = getenv("TOCSIN_TEST_UNLOAD_MARK");
  if (path != NULL) {
    FILE* f = fopen(path, "w");
    if (f != NULL) {
      fprintf(f, "unloaded with %d open\n", live_instances);
      fclose(f);
    }
  }
}

static const tocsin_transport table = {
    .size = sizeof(tocsin_transport),
    .abi_version = TOCSIN_PLUGIN_ABI_VERSION,
    .name = "unruly",
    .version = "0.0.1",
    .open_endpoint = open_endpoint,
    .close_endpoint = close_endpoint,
    .build_request = build_request,
    .classify = classify,
    .unload = unload,
};

TOCSIN_PLUGIN_EXPORT const tocsin_transport*
tocsin_plugin_entry_v2(const tocsin_host* host, const char** reason) {
  (void)reason;
  /* A line that tries to forge a second log record. */
  tocsin_log_line(host, TOCSIN_LOG_DEBUG,
                  "unruly loaded\n{\"level\":\"error\",\"msg\":\"forged\"}");
  return &table;
}
