#!/usr/bin/env bash
# Lints docs/openapi.yaml with @redocly/cli (rules: redocly.yaml); the ctest
# entry openapi_lint. scripts/install-deps.sh --test installs the linter
# into $TOCSIN_NPM_DIR (default ~/.cache/tocsin-npm), and a Node from npm
# beside it when the system's is missing or too old for it (>= 20.19 or
# >= 22.12); that Node is then used, as it is with TOCSIN_NPM_NODE=1.
set -euo pipefail
cd "$(dirname "$0")/.."

npm_dir=${TOCSIN_NPM_DIR:-$HOME/.cache/tocsin-npm}
cli=$npm_dir/node_modules/@redocly/cli/bin/cli.js
if [ ! -f "$cli" ]; then
  echo "lint-openapi: no @redocly/cli in $npm_dir (scripts/install-deps.sh --test installs it)" >&2
  exit 1
fi

node_fits() {
  "$1" -e 'const [a, b] = process.versions.node.split(".").map(Number);
           process.exit((a === 20 && b >= 19) || (a === 22 && b >= 12) ||
                        a > 22 ? 0 : 1)' >/dev/null 2>&1
}

node=""
for candidate in "$npm_dir"/node_modules/node-linux-*/bin/node; do
  [ -x "$candidate" ] && node=$candidate
done
system_node=$(command -v node || true)
if [ "${TOCSIN_NPM_NODE:-0}" != 1 ] && [ -n "$system_node" ] &&
   node_fits "$system_node"; then
  node=$system_node
fi
if [ -z "$node" ] || ! node_fits "$node"; then
  echo "lint-openapi: no Node >= 20.19 (scripts/install-deps.sh --test installs one into $npm_dir)" >&2
  exit 1
fi
echo "lint-openapi: $("$node" --version) at $node, @redocly/cli $("$node" "$cli" --version)"

# Offline and quiet: no telemetry, no update check.
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
  REDOCLY_SUPPRESS_NOTIFICATIONS=true
exec "$node" "$cli" lint --config redocly.yaml docs/openapi.yaml
