#!/usr/bin/env bash
# Installs what is missing, builds the Release product into build-release/
# and makes the Debian packages (docs/install.md):
#   build-release/packages/tocsin_<version>_<arch>.deb
#   build-release/packages/tocsin-dev_<version>_all.deb
# then runs lintian on them when it is installed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/build-release.sh" tocsin tocsin_package_docs
cd "$root/build-release"
rm -rf packages
cpack -G DEB >/dev/null
if command -v lintian >/dev/null 2>&1; then
  lintian --fail-on error packages/*.deb
fi
ls -1 "$PWD"/packages/*.deb
