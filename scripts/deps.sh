#!/usr/bin/env bash
# Installs what building and running bosun need from Debian's packages, when missing:
# etcd (the server the broker stores everything in) and protoc with the well-known .proto
# files (etcd-client's build script compiles etcd's protos with it), python3 with the
# prometheus_client package (the metrics test's parsers) with `--test` only, Debian's `cron`
# daemon (the `cronjobs` benchmark's comparison) with `--bench` only.
#
#   scripts/deps.sh          # what building and running need
#   scripts/deps.sh --test   # and what the tests need
#   scripts/deps.sh --bench  # and what the benchmarks need
set -euo pipefail
need=()
command -v etcd >/dev/null || need+=(etcd-server etcd-client)
if ! command -v protoc >/dev/null || [ ! -f /usr/include/google/protobuf/descriptor.proto ]; then
  need+=(protobuf-compiler libprotobuf-dev)
fi
# The metrics test (tests/tests/metrics.rs) parses every service's /metrics with the Python
# prometheus_client parsers. Debian's own python3 refuses pip outside a virtualenv (PEP 668):
# there the Debian package provides it.
if [ "${1:-}" != --test ]; then
  :
elif ! command -v python3 >/dev/null; then
  need+=(python3 python3-prometheus-client)
elif ! python3 -c 'import prometheus_client' 2>/dev/null; then
  echo "== installing the python prometheus-client package"
  python3 -m pip install --user --quiet prometheus-client 2>/dev/null || need+=(python3-prometheus-client)
fi
# `bosun-bench cronjobs` runs Debian's cron daemon beside the CronJob controller.
if [ "${1:-}" = --bench ] && [ ! -x /usr/sbin/cron ]; then
  need+=(cron)
fi
[ ${#need[@]} -eq 0 ] && exit 0
echo "== installing ${need[*]}"
SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# The etcd package starts a system service where it can; bosun runs its own etcd.
$SUDO systemctl disable --now etcd >/dev/null 2>&1 || true
# Likewise cron: the benchmark starts its own daemon and refuses to run beside another.
$SUDO systemctl disable --now cron >/dev/null 2>&1 || true
