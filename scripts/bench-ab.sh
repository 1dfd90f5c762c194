#!/usr/bin/env bash
# Runs one benchmark against two daemon binaries, alternately, under the same
# benchmark binary: on a shared machine only runs of one session compare.
#
#   scripts/bench-ab.sh BEFORE AFTER ROUNDS BENCH [ARGS...]
#   scripts/bench-ab.sh /tmp/a/tocsin build-release/app/tocsin 2 e2e_bench \
#       --events 200000 --connections 4 --batch 100 --sink nginx
#
# BEFORE and AFTER are `tocsin` binaries (build one from an older commit with
# `git worktree add /tmp/a <rev> && /tmp/a/scripts/build-release.sh tocsin`);
# BENCH is a target in build-release/bench/ (e2e_bench, backlog_bench, ...).
# The benchmarks start build-release/app/tocsin: each binary is copied there
# for its run, and the one that was there is put back at the end.
set -euo pipefail
[ $# -ge 4 ] || { sed -n '2,12p' "$0"; exit 2; }
root=$(cd "$(dirname "$0")/.." && pwd)
before=$(realpath "$1") after=$(realpath "$2") rounds=$3 bench=$4
shift 4
daemon=$root/build-release/app/tocsin
saved=$(mktemp)
cp "$daemon" "$saved"
trap 'cp "$saved" "$daemon"; rm -f "$saved"' EXIT
for round in $(seq "$rounds"); do
  for bin in "$before" "$after"; do
    cp "$bin" "$daemon"
    echo "== $bin, round $round"
    "$root/build-release/bench/$bench" "$@"
  done
done
