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
  seconds=${FUZZ_SECONDS:-60}
  echo "== fuzz: api, response, config, elf (libFuzzer + ASan/UBSan, ${seconds} s each, two at a time)"
  CXX=clang++-14 cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DTOCSIN_FUZZ=ON -DTOCSIN_BUILD_TESTS=OFF -DTOCSIN_BUILD_BENCH=OFF >/dev/null
  cmake --build build-fuzz -j "$jobs" --target fuzz_targets
  work=$(mktemp -d)
  # Seeds for the ELF reader: a tiny plugin-shaped object and a non-ELF file.
  mkdir -p "$work/corpus-elf"
  printf 'int tocsin_plugin_entry(void) { return 0; }\n' |
    clang-14 -x c -shared -fPIC -o "$work/corpus-elf/plugin.so" -
  printf 'not an ELF file' >"$work/corpus-elf/text"
  fuzz() { # target, dictionary ("" for none), max_len
    local target=$1 dict=$2 max_len=$3 corpus=$work/corpus-$1
    mkdir -p "$corpus"
    [ -d "tests/fuzz/corpus/$target" ] && cp "tests/fuzz/corpus/$target"/* "$corpus"
    build-fuzz/tests/fuzz/${target}_fuzz -max_total_time="$seconds" -max_len="$max_len" \
      -rss_limit_mb=2048 -print_final_stats=1 ${dict:+-dict=tests/fuzz/dict/$dict} \
      -artifact_prefix="$work/$target-" "$corpus" >"$work/$target.log" 2>&1
  }
  status=0
  fuzz api json.dict 262144 & a=$!
  fuzz response http.dict 65536 & b=$!
  wait $a || status=1
  wait $b || status=1
  fuzz config toml.dict 65536 & a=$!
  fuzz elf "" 65536 & b=$!
  wait $a || status=1
  wait $b || status=1
  for target in api response config elf; do
    runs=$(grep -E '^stat::number_of_executed_units' "$work/$target.log" | awk '{print $2}')
    echo "fuzz $target: ${runs:-?} executions"
  done
  if [ $status -ne 0 ]; then
    for log in "$work"/*.log; do
      grep -q -E 'ERROR|crash|deadly' "$log" && tail -n 60 "$log"
    done
    ls "$work"/*-crash-* "$work"/*-leak-* "$work"/*-timeout-* "$work"/*-oom-* 2>/dev/null
    echo "fuzzing found a crash (the reproducer is in $work)"
    exit 1
  fi
  rm -rf "$work"
fi

if [ "$ci" = true ] || [ "${SANITIZE:-0}" = 1 ]; then
  echo "== build (Debug, ASan + UBSan)"
  build build-asan -DCMAKE_BUILD_TYPE=Debug -DTOCSIN_SANITIZE=ON -DTOCSIN_WERROR=ON
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:suppressions=$PWD/tests/ubsan.supp
  echo "== tests under ASan + UBSan"
  (cd build-asan && ctest --output-on-failure -j "$jobs")
fi
