#!/usr/bin/env bash
# Installs what building and running bosun need from Debian's packages, when missing:
# etcd (the server the broker stores everything in) and protoc with the well-known .proto
# files (etcd-client's build script compiles etcd's protos with it).
set -euo pipefail
need=()
command -v etcd >/dev/null || need+=(etcd-server etcd-client)
if ! command -v protoc >/dev/null || [ ! -f /usr/include/google/protobuf/descriptor.proto ]; then
  need+=(protobuf-compiler libprotobuf-dev)
fi
[ ${#need[@]} -eq 0 ] && exit 0
echo "== installing ${need[*]}"
SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# The etcd package starts a system service where it can; bosun runs its own etcd.
$SUDO systemctl disable --now etcd >/dev/null 2>&1 || true
