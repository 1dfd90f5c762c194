#!/usr/bin/env bash
# Where the daemon's CPU goes per delivered event: runs an e2e_bench command
# under `perf record` (every process it starts: the daemon, nginx, the load
# generator) and prints the daemon's samples by library and its top
# functions. Needs linux-perf (apt-get install linux-perf) and root (or
# kernel.perf_event_paranoid <= 1).
#
#   scripts/profile.sh [e2e_bench arguments]
#   scripts/profile.sh --events 300000 --connections 4 --batch 100 --sink nginx
#
# The default arguments are the batched nginx row of docs/benchmarks.md.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
[ -x build-release/bench/e2e_bench ] || scripts/build-release.sh tocsin e2e_bench
command -v perf >/dev/null || { echo "perf not found: apt-get install linux-perf" >&2; exit 2; }
args=("$@")
[ ${#args[@]} -eq 0 ] && args=(--events 300000 --connections 4 --batch 100 --sink nginx)
out=$(mktemp -d /tmp/tocsin-profile.XXXXXX)
# 999 Hz per CPU, no call graphs (a Release build has no frame pointers):
# the flat profile is what this is for.
perf record -F 999 -o "$out/perf.data" -- build-release/bench/e2e_bench "${args[@]}" \
  2>&1 | grep -E "delivery rate|daemon CPU|in-flight limit|sink:" || true
# perf script: one line per sample (thread name, address, symbol, library);
# the daemon's threads are every thread not of nginx, the bench or perf.
perf script -i "$out/perf.data" -F comm,ip,sym,dso 2>/dev/null | awk '
  { comm = $1
    if (comm == "nginx" || comm == "e2e_bench" || comm == "perf") next
    dso = $NF; gsub(/[()]/, "", dso); n = split(dso, part, "/"); dso = part[n]
    sym = ""; for (i = 3; i < NF; i++) sym = sym (i > 3 ? " " : "") $i
    sub(/\+0x[0-9a-f]+$/, "", sym)
    total++; T[comm]++; D[dso]++; S[dso "  " sym]++ }
  END {
    printf "%d samples of the daemon (999 Hz per CPU)\n", total
    print "\n-- by thread"
    for (k in T) printf "%6.2f%%  %s\n", 100 * T[k] / total, k | "sort -rn"
    close("sort -rn")
    print "\n-- by library"
    for (k in D) printf "%6.2f%%  %s\n", 100 * D[k] / total, k | "sort -rn | head -12"
    close("sort -rn | head -12")
    print "\n-- top functions"
    for (k in S) printf "%6.2f%%  %s\n", 100 * S[k] / total, k | "sort -rn | head -30 | cut -c1-150"
    close("sort -rn | head -30 | cut -c1-150")
  }'
echo "(perf.data: $out/perf.data)"
