#!/usr/bin/env bash
# Builds the Release binaries and runs the end-to-end benchmark (see README).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/build-release.sh" e2e_bench
cd "$root"
echo "-- single events, 32 producer connections"
build-release/bench/e2e_bench --events 50000 --connections 32 --batch 1 "$@"
echo "-- batches of 50, 4 producer connections"
build-release/bench/e2e_bench --events 100000 --connections 4 --batch 50 "$@"
