/* A plugin built against ABI version 1 (its entry point and its table
 * layout, reproduced here as they were). The host must refuse it by its
 * entry point, without loading it: its constructor leaves a mark (a file
 * named by TOCSIN_TEST_CONSTRUCTOR_MARK) if anything ever does. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct v1_transport {
  uint32_t size;
  uint32_t abi_version;
  const char* name;
  const char* version;
  void* validate_options;
  void* build_request;
  void* classify;
  uint32_t flags;
  double default_rate_per_second;
  uint32_t default_burst;
} v1_transport;

static const v1_transport table = {sizeof(v1_transport), 1u, "abi_v1", "1.0.0",
                                   NULL, NULL, NULL, 0u, 0.0, 0u};

__attribute__((constructor)) static void leave_a_mark(void) {
  const char* path = getenv("TOCSIN_TEST_CONSTRUCTOR_MARK");
  if (path != NULL) {
    FILE* f = fopen(path, "w");
    if (f != NULL) {
      fputs("abi_v1.so was loaded\n", f);
      fclose(f);
    }
  }
}

__attribute__((visibility("default"))) const v1_transport*
tocsin_plugin_entry(uint32_t host_abi_version) {
  return host_abi_version == 1u ? &table : NULL;
}
