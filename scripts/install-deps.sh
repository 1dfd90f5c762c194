#!/usr/bin/env bash
# Installs what tocsin needs to build, run and benchmark on Debian 12 (with
# --test: and to run the tests).
# Idempotent: when everything is present it prints nothing and exits 0.
#
# With --test it also installs the OpenAPI linter (@redocly/cli, from npm)
# into $TOCSIN_NPM_DIR (default ~/.cache/tocsin-npm), where
# scripts/lint-openapi.sh finds it. @redocly/cli 2.x needs Node >= 20.19
# (or >= 22.12); Debian 12's nodejs is 18, so when the `node` on PATH is
# missing or older, a Node from the npm registry (node-linux-<arch>) is put
# beside it and used instead. TOCSIN_NPM_NODE=1 takes that Node whatever
# the system has (to check that path).
set -euo pipefail

# python3: the README's tour receiver; with PyYAML, the build converts
# docs/openapi.yaml to the JSON it serves (api/CMakeLists.txt).
packages=(
  build-essential cmake ninja-build pkg-config git ca-certificates openssl
  libcaf-dev libboost-dev libboost-test-dev libssl-dev librocksdb-dev
  nlohmann-json3-dev libtomlplusplus-dev libcli11-dev clang-format
  clang-14 libclang-rt-14-dev ccache libjemalloc-dev libjs-chart.js
  libpqxx-dev libnghttp2-dev python3 python3-yaml libsystemd-dev dpkg-dev
)

# What only the tests use: promtool (checks the /metrics exposition), a
# headless browser for the dashboard, PostgreSQL 15 (the tests start
# their own throwaway servers; the package's own cluster is not used), for
# the Debian packages' test lintian and systemd-analyze (systemd), and npm
# (the OpenAPI linter comes from the npm registry).
test=false
if [ "${1:-}" = "--test" ]; then
  test=true
  packages+=(prometheus chromium postgresql lintian systemd)
  # A NodeSource nodejs brings its own npm (and conflicts with Debian's).
  command -v npm >/dev/null 2>&1 || packages+=(npm)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

[ "$test" = true ] || exit 0

redocly_version=2.77.0
npm_node_version=22.23.5
npm_dir=${TOCSIN_NPM_DIR:-$HOME/.cache/tocsin-npm}

# Whether the node $1 is one @redocly/cli 2.x runs on.
node_fits() {
  "$1" -e 'const [a, b] = process.versions.node.split(".").map(Number);
           process.exit((a === 20 && b >= 19) || (a === 22 && b >= 12) ||
                        a > 22 ? 0 : 1)' >/dev/null 2>&1
}

npm_install() {
  echo "installing from npm into $npm_dir: $*"
  mkdir -p "$npm_dir"
  # Saved in $npm_dir/package.json: a later install keeps what is there.
  npm install --prefix "$npm_dir" --save-exact --no-audit --no-fund --loglevel=error \
    "$@" >/dev/null
}

installed=$(sed -n 's/^  "version": "\(.*\)",\?$/\1/p' \
  "$npm_dir/node_modules/@redocly/cli/package.json" 2>/dev/null | head -n 1 || true)
want=("@redocly/cli@$redocly_version")
system_node=$(command -v node || true)
if [ "${TOCSIN_NPM_NODE:-0}" = 1 ] || [ -z "$system_node" ] ||
   ! node_fits "$system_node"; then
  case $(uname -m) in
    x86_64) arch=x64 ;;
    aarch64) arch=arm64 ;;
    *) echo "no Node from npm for $(uname -m)" >&2; exit 1 ;;
  esac
  npm_node=$npm_dir/node_modules/node-linux-$arch/bin/node
  [ -x "$npm_node" ] && node_fits "$npm_node" ||
    want+=("node-linux-$arch@$npm_node_version")
fi
if [ "$installed" != "$redocly_version" ] || [ ${#want[@]} -gt 1 ]; then
  npm_install "${want[@]}"
fi
