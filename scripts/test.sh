#!/usr/bin/env bash
# Installs what is missing, builds tocsin and runs the whole test suite with
# CTest. With CI=true (or SANITIZE=1) it also checks formatting, treats
# warnings as errors and runs the suite a second time under ASan + UBSan.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh

jobs=${JOBS:-2}
ci=${CI:-false}

build() {
  local dir=$1
  shift
  cmake -S . -B "$dir" -G Ninja -DTOCSIN_BUILD_BENCH=OFF "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
}

if [ "$ci" = true ]; then
  echo "== clang-format check"
  git ls-files '*.cpp' '*.hpp' '*.h' | xargs clang-format --dry-run -Werror
fi

werror=OFF
[ "$ci" = true ] && werror=ON
echo "== build (RelWithDebInfo)"
build build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTOCSIN_WERROR=$werror
echo "== tests"
(cd build && ctest --output-on-failure -j "$jobs")

if [ "$ci" = true ] || [ "${FUZZ:-0}" = 1 ]; then
  echo "== fuzz: API router and event validation (libFuzzer + ASan/UBSan, ${FUZZ_SECONDS:-60} s)"
  CXX=clang++-14 cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DTOCSIN_FUZZ=ON -DTOCSIN_BUILD_TESTS=OFF -DTOCSIN_BUILD_BENCH=OFF >/dev/null
  cmake --build build-fuzz -j "$jobs" --target api_fuzz
  corpus=$(mktemp -d)
  fuzz_log=$(mktemp)
  cp tests/fuzz/corpus/* "$corpus"
  if ! build-fuzz/tests/fuzz/api_fuzz -max_total_time="${FUZZ_SECONDS:-60}" \
    -rss_limit_mb=2048 -print_final_stats=1 "$corpus" >"$fuzz_log" 2>&1; then
    tail -n 60 "$fuzz_log"
    echo "fuzzing found a crash (the reproducer is in crash-* here)"
    exit 1
  fi
  grep -E '^(Done|stat::)' "$fuzz_log"
  rm -rf "$corpus" "$fuzz_log"
fi

if [ "$ci" = true ] || [ "${SANITIZE:-0}" = 1 ]; then
  echo "== build (Debug, ASan + UBSan)"
  build build-asan -DCMAKE_BUILD_TYPE=Debug -DTOCSIN_SANITIZE=ON -DTOCSIN_WERROR=ON
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:suppressions=$PWD/tests/ubsan.supp
  echo "== tests under ASan + UBSan"
  (cd build-asan && ctest --output-on-failure -j "$jobs")
fi
