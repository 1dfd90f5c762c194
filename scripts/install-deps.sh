#!/usr/bin/env bash
# Installs what tocsin needs to build, run and benchmark on Debian 12 (with
# --test: and to run the tests).
# Idempotent: when everything is present it prints nothing and exits 0.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git ca-certificates openssl
  libcaf-dev libboost-dev libboost-test-dev libssl-dev librocksdb-dev
  nlohmann-json3-dev libtomlplusplus-dev libcli11-dev clang-format
  clang-14 libclang-rt-14-dev ccache libjemalloc-dev libjs-chart.js
  libpqxx-dev libnghttp2-dev python3 libsystemd-dev dpkg-dev
)

# What only the tests use: promtool (checks the /metrics exposition), a
# headless browser for the dashboard, PostgreSQL 15 (the tests start their
# own throwaway servers; the package's own cluster is not used), and for the
# Debian packages' test lintian and systemd-analyze (systemd).
if [ "${1:-}" = "--test" ]; then
  packages+=(prometheus chromium postgresql lintian systemd)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
sudo_cmd=""
[ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
$sudo_cmd apt-get update -qq
$sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
