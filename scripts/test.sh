#!/usr/bin/env bash
# Installs what is missing, builds tocsin and runs the whole test suite with
# CTest.
#
#   scripts/test.sh            gcc build (build/), the whole suite
#   SANITIZE=1 scripts/test.sh the suite under ASan + UBSan instead (clang 14,
#                              build-asan/)
#   FUZZ=1 scripts/test.sh     also the libFuzzer targets (FUZZ_SECONDS each)
#   CI=true scripts/test.sh    what CI runs: clang-format check; gcc builds the
#                              product with -Werror and packages it (cpack:
#                              build/packages, the .debs package_tests checks);
#                              the suite runs once, under ASan + UBSan (a
#                              superset of the plain run, and clang -O0 builds
#                              it faster than gcc -O2 builds the plain one);
#                              the five fuzz targets, 60 s each (at once: they
#                              share the two cores)
# Without CI, package_tests packages the build directory it runs from.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test

jobs=${JOBS:-2}
ci=${CI:-false}
sanitize=${SANITIZE:-0}
fuzz=${FUZZ:-0}
if [ "$ci" = true ]; then
  sanitize=1
  fuzz=1
fi
werror=OFF
[ "$ci" = true ] && werror=ON

# ccache, when present, makes rebuilds (and a CI whose cache survives) cheap.
launcher=()
if command -v ccache >/dev/null 2>&1; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi

configure() {
  local dir=$1
  shift
  cmake -S . -B "$dir" -G Ninja -DTOCSIN_BUILD_BENCH=OFF "${launcher[@]}" "$@" >/dev/null
}

if [ "$ci" = true ]; then
  echo "== clang-format check"
  git ls-files '*.cpp' '*.hpp' '*.h' | xargs clang-format --dry-run -Werror
fi

if [ "$sanitize" = 1 ] || [ "$fuzz" = 1 ]; then
  # The product with the compiler users build it with, warnings as errors.
  if [ "$ci" = true ]; then
    echo "== build the product (gcc, -O1, -Werror)"
    configure build -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE=-O1 \
      -DTOCSIN_WERROR=ON -DTOCSIN_BUILD_TESTS=OFF
    cmake --build build -j "$jobs"
    echo "== Debian packages of the product (cpack)"
    rm -rf build/packages
    (cd build && cpack -G DEB >/dev/null)
    # package_tests (in build-asan) checks these, not packages of its own.
    export TOCSIN_PACKAGE_DIR=$PWD/build/packages
  fi
  echo "== build (clang 14, ASan + UBSan, -O0)"
  fuzz_flag=OFF
  [ "$fuzz" = 1 ] && fuzz_flag=ON
  CC=clang-14 CXX=clang++-14 configure build-asan -DCMAKE_BUILD_TYPE=Debug \
    "-DCMAKE_CXX_FLAGS_DEBUG=-O0 -gline-tables-only" \
    "-DCMAKE_C_FLAGS_DEBUG=-O0 -gline-tables-only" \
    -DTOCSIN_SANITIZE=ON -DTOCSIN_FUZZ=$fuzz_flag -DTOCSIN_WERROR=$werror
  cmake --build build-asan -j "$jobs"
  if [ "$sanitize" = 1 ]; then
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
    export LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:suppressions=$PWD/tests/ubsan.supp
    echo "== tests under ASan + UBSan"
    (cd build-asan && ctest --output-on-failure -j "$jobs")
  fi
else
  echo "== build (gcc, -O1)"
  configure build -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE=-O1 \
    -DTOCSIN_WERROR=$werror -DTOCSIN_BUILD_TESTS=ON
  cmake --build build -j "$jobs"
  echo "== tests"
  (cd build && ctest --output-on-failure -j "$jobs")
fi

if [ "$fuzz" = 1 ]; then
  seconds=${FUZZ_SECONDS:-60}
  echo "== fuzz: api, response, config, elf, integrations (libFuzzer + ASan/UBSan, ${seconds} s each, all at once)"
  work=$(mktemp -d)
  # Seeds for the ELF reader: a tiny plugin-shaped object and a non-ELF file.
  mkdir -p "$work/corpus-elf"
  printf 'int tocsin_plugin_entry_v2(void) { return 0; }\n' |
    clang-14 -x c -shared -fPIC -o "$work/corpus-elf/plugin.so" -
  printf 'not an ELF file' >"$work/corpus-elf/text"
  run_fuzzer() { # target, dictionary ("" for none), max_len
    local target=$1 dict=$2 max_len=$3 corpus=$work/corpus-$1
    mkdir -p "$corpus"
    if [ -d "tests/fuzz/corpus/$target" ]; then
      cp "tests/fuzz/corpus/$target"/* "$corpus"
    fi
    build-asan/tests/fuzz/"${target}"_fuzz -max_total_time="$seconds" \
      -max_len="$max_len" -rss_limit_mb=2048 -print_final_stats=1 \
      ${dict:+-dict=tests/fuzz/dict/$dict} -artifact_prefix="$work/$target-" \
      "$corpus" >"$work/$target.log" 2>&1
  }
  status=0
  pids=()
  run_fuzzer api json.dict 262144 &
  pids+=($!)
  run_fuzzer response http.dict 65536 &
  pids+=($!)
  run_fuzzer config toml.dict 65536 &
  pids+=($!)
  run_fuzzer elf "" 65536 &
  pids+=($!)
  run_fuzzer integrations json.dict 65536 &
  pids+=($!)
  for pid in "${pids[@]}"; do
    wait "$pid" || status=1
  done
  for target in api response config elf integrations; do
    runs=$(awk '/^stat::number_of_executed_units/ {print $2}' "$work/$target.log")
    echo "fuzz $target: ${runs:-?} executions in ${seconds} s"
  done
  if [ $status -ne 0 ]; then
    for log in "$work"/*.log; do
      if grep -q -E 'ERROR|deadly|Sanitizer' "$log"; then
        echo "-- $log"
        tail -n 60 "$log"
      fi
    done
    echo "fuzzing found a crash; the reproducer is in $work (run the target on it)"
    exit 1
  fi
  rm -rf "$work"
fi
