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

if [ "$ci" = true ] || [ "${SANITIZE:-0}" = 1 ]; then
  echo "== build (Debug, ASan + UBSan)"
  build build-asan -DCMAKE_BUILD_TYPE=Debug -DTOCSIN_SANITIZE=ON -DTOCSIN_WERROR=ON
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:suppressions=$PWD/tests/ubsan.supp
  echo "== tests under ASan + UBSan"
  (cd build-asan && ctest --output-on-failure -j "$jobs")
fi
