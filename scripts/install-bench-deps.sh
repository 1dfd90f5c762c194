#!/usr/bin/env bash
# Installs what the comparison benchmarks need beyond scripts/install-deps.sh:
# Prometheus Alertmanager (Debian's package) for alertmanager_bench and
# cluster_bench, nginx (nginx-light) for `e2e_bench --sink nginx` and
# cluster_bench, and PostgreSQL 15 for `--store postgres` and cluster_bench.
# The benchmarks start /usr/bin/prometheus-alertmanager, /usr/sbin/nginx and
# PostgreSQL (a cluster of their own, tests/support/pg_cluster) themselves,
# with their own config and port, so the packages' own services must not
# run.
# Idempotent: when everything is present it prints nothing and exits 0.
set -euo pipefail

sudo_cmd=""
[ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"

missing=()
for pkg in prometheus-alertmanager nginx-light postgresql-15; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get update -qq
  $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    >/dev/null
fi

# The packages enable and start their services on install (where the policy
# lets them): a second Alertmanager would hold :9093 and :9094, an nginx :80,
# and both take CPU from the benchmarks. Stopping them is quiet and harmless
# when they are not there. PostgreSQL's own cluster (:5432) is stopped only
# when it was installed just now: one that was there before may be in use.
services=(prometheus-alertmanager nginx)
[[ " ${missing[*]:-} " == *" postgresql-15 "* ]] && services+=(postgresql)
for service in "${services[@]}"; do
  if [ -d /run/systemd/system ]; then
    $sudo_cmd systemctl disable --now "$service" >/dev/null 2>&1 || true
  elif [ -x "/etc/init.d/$service" ]; then
    $sudo_cmd "/etc/init.d/$service" stop >/dev/null 2>&1 || true
    $sudo_cmd update-rc.d "$service" disable >/dev/null 2>&1 || true
  fi
done
