#!/usr/bin/env bash
# Builds the Release binaries and runs the end-to-end benchmark (see README).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
cmake -S "$root" -B "$root/build-release" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DTOCSIN_BUILD_TESTS=OFF >/dev/null
cmake --build "$root/build-release" -j "${JOBS:-2}" --target e2e_bench
cd "$root"
echo "-- single events, 32 producer connections"
build-release/bench/e2e_bench --events 50000 --connections 32 --batch 1 "$@"
echo "-- batches of 50, 4 producer connections"
build-release/bench/e2e_bench --events 100000 --connections 4 --batch 50 "$@"
