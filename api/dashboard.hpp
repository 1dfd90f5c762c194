// The dashboard (GET /): a page, its script and style, and Chart.js, all
// embedded in the binary at build time (cmake/embed_assets.cmake): nothing is
// fetched from elsewhere, nothing read from the disk.
#pragma once

#include <string_view>
#include <vector>

namespace tocsin::api {

struct asset {
  std::string_view path; ///< "/" or "/dashboard/<name>"
  std::string_view content_type;
  std::string_view body;
};

const std::vector<asset>& dashboard_assets();

} // namespace tocsin::api
