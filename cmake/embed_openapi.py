#!/usr/bin/env python3
"""Writes OUT, a C++ file holding SRC (docs/openapi.yaml) as compact JSON
and an ETag naming it: the daemon serves its API description at
GET /v1/openapi.json without reading a file. Run by api/CMakeLists.txt.

The YAML must be JSON in YAML's clothes: a duplicate key, or a value JSON
cannot hold (an unquoted date, which YAML 1.1 reads as a date), stops the
build with the line where it is.
"""
import hashlib
import json
import sys

import yaml


class StrictLoader(yaml.SafeLoader):
    pass


def mapping_without_duplicates(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise SystemExit(f"{SRC}:{key_node.start_mark.line + 1}: "
                             f"duplicate key {key!r}")
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                             mapping_without_duplicates)
for tag in ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:binary"):
    StrictLoader.add_constructor(
        tag, lambda loader, node: (_ for _ in ()).throw(SystemExit(
            f"{SRC}:{node.start_mark.line + 1}: {node.value!r} is no JSON "
            "value here (quote it)")))

SRC, OUT = sys.argv[1], sys.argv[2]
with open(SRC, encoding="utf-8") as f:
    doc = yaml.load(f, Loader=StrictLoader)
# ASCII only (the rest as \u escapes): the C++ literal holds no encoding
# question. Keys stay in the file's order.
text = json.dumps(doc, ensure_ascii=True, separators=(",", ":"),
                  allow_nan=False)
delimiter = ")tocsin_openapi\""
if delimiter in text:
    raise SystemExit(f"{SRC} holds the raw string's delimiter")
etag = '"' + hashlib.sha256(text.encode()).hexdigest()[:32] + '"'
body = f"""// Generated from docs/openapi.yaml by cmake/embed_openapi.py.
#include "api/openapi.hpp"

// One literal over the 64 KiB that compilers must support (and do, far
// beyond): not a portability problem for gcc or clang.
#pragma GCC diagnostic ignored "-Woverlength-strings"

namespace tocsin::api {{

std::string_view openapi_json() {{
  return R"tocsin_openapi({text})tocsin_openapi";
}}

std::string_view openapi_etag() {{ return R"tocsin_openapi({etag})tocsin_openapi"; }}

}} // namespace tocsin::api
"""
with open(OUT, "w", encoding="utf-8") as f:
    f.write(body)
