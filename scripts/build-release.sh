#!/usr/bin/env bash
# Installs what is missing and builds Release targets into build-release/:
#   scripts/build-release.sh tocsin e2e_bench
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
cmake -S "$root" -B "$root/build-release" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DTOCSIN_BUILD_TESTS=OFF >/dev/null
cmake --build "$root/build-release" -j "${JOBS:-2}" --target "$@"
