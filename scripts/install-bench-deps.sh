#!/usr/bin/env bash
# Installs what the comparison benchmarks need beyond scripts/install-deps.sh:
# Prometheus Alertmanager (Debian's package) for alertmanager_bench. The
# benchmark starts /usr/bin/prometheus-alertmanager itself, with its own
# config, storage and port, so the package's own service must not run.
# Idempotent: when everything is present it prints nothing and exits 0.
set -euo pipefail

sudo_cmd=""
[ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"

if ! dpkg -s prometheus-alertmanager >/dev/null 2>&1; then
  echo "installing: prometheus-alertmanager"
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get update -qq
  $sudo_cmd apt-get install -y -qq --no-install-recommends \
    prometheus-alertmanager >/dev/null
fi

# The package enables and starts its service on install (where the policy
# lets it): a second Alertmanager would hold :9093 and :9094 and take CPU
# from the benchmark. Stopping it is quiet and harmless when it is not there.
if [ -d /run/systemd/system ]; then
  $sudo_cmd systemctl disable --now prometheus-alertmanager \
    >/dev/null 2>&1 || true
elif [ -x /etc/init.d/prometheus-alertmanager ]; then
  $sudo_cmd /etc/init.d/prometheus-alertmanager stop >/dev/null 2>&1 || true
  $sudo_cmd update-rc.d prometheus-alertmanager disable >/dev/null 2>&1 || true
fi
