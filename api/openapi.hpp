// The API's description (docs/openapi.yaml, OpenAPI 3.1) as the JSON that
// GET /v1/openapi.json serves, embedded at build time
// (cmake/embed_openapi.py): the YAML is the one source.
#pragma once

#include <string_view>

namespace tocsin::api {

/// docs/openapi.yaml as compact JSON.
std::string_view openapi_json();

/// A strong ETag (quoted) naming that JSON.
std::string_view openapi_etag();

} // namespace tocsin::api
