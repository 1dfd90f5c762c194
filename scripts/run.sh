#!/usr/bin/env bash
# Installs what is missing, builds tocsin (Release) and runs the daemon:
#   scripts/run.sh                       # store in ./data, API on 127.0.0.1:8650
#   scripts/run.sh --config tocsin.toml  # any `tocsin serve` options
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/build-release.sh" tocsin
echo "run.sh: the CLI is the same binary; put it on PATH with" \
  "export PATH=$root/build-release/app:\$PATH" >&2
exec "$root/build-release/app/tocsin" serve "$@"
