#!/usr/bin/env bash
# Builds the `bosun:local` image from what this machine has: release binaries built here,
# etcd from Debian's etcd-server package, and a base image that is either BASE_IMAGE (when
# present or pullable) or `bosun-base:local`, assembled from the host's own glibc.
set -euo pipefail
cd "$(dirname "$0")/.."

image=${BOSUN_IMAGE:-bosun:local}
# Where cargo puts the release binaries (CARGO_TARGET_DIR, when set).
release=${CARGO_TARGET_DIR:-target}/release
base=${BASE_IMAGE:-debian:bookworm-slim}
stage=deploy/.stage

command -v etcd >/dev/null || { echo "etcd is missing: apt-get install -y etcd-server etcd-client" >&2; exit 1; }

echo "== building release binaries"
cargo build --release --bins --quiet
rm -rf "$stage" && mkdir -p "$stage/bin"
for b in "$release"/bosun "$release"/bosun-*; do
  [ -f "$b" ] && [ -x "$b" ] && cp "$b" "$stage/bin/"
done
# Every binary the compose stack runs must be there (a crate renamed or dropped from the
# workspace would otherwise surface only as a container that cannot start).
for b in bosun bosun-broker bosun-scheduler bosun-gc bosun-job-controller bosun-cronjob-controller bosun-daemonset-controller bosun-node-agent; do
  [ -x "$stage/bin/$b" ] || { echo "$release/$b was not built; is it still a workspace binary?" >&2; exit 1; }
done
cp "$(command -v etcd)" "$(command -v etcdctl)" "$stage/bin/"
# The node agent's process runtime runs each container through `sh -c` with a shim that uses
# `mv`, and signals process groups with `kill` (which slim bases lack); pods get a few
# everyday tools too. They are the host's, like the binaries.
tools="kill mv cat sleep ls env true false date rm mkdir hostname"
for t in $tools; do
  p=$(command -v "$t" || true)
  [ -n "$p" ] && [ -x "$p" ] && cp -L "$p" "$stage/bin/$t"
done
cp deploy/Dockerfile "$stage/"

if ! docker image inspect "$base" >/dev/null 2>&1 && ! docker pull -q "$base" >/dev/null 2>&1; then
  # The tag names the tool set (their libraries are in the base), so a base assembled before
  # a tool was added is not reused.
  base=bosun-base:local-$(echo "$tools" | md5sum | cut -c1-8)
  if ! docker image inspect "$base" >/dev/null 2>&1; then
    echo "== no registry: assembling $base from this machine's glibc"
    root=$(mktemp -d)
    for f in /bin/dash "$stage"/bin/*; do
      for lib in $(ldd "$f" 2>/dev/null | grep -o '/[^ ]*' || true); do cp --parents -L "$lib" "$root/"; done
    done
    mkdir -p "$root/bin" && cp -L /bin/dash "$root/bin/dash" && ln -sf dash "$root/bin/sh"
    mkdir -p "$root/tmp" "$root/etc" "$root/var/lib" && chmod 1777 "$root/tmp"
    echo 'root:x:0:0:root:/root:/bin/sh' > "$root/etc/passwd"
    echo 'hosts: files dns' > "$root/etc/nsswitch.conf"
    tar -C "$root" -c . | docker import - "$base" >/dev/null
    rm -rf "$root"
  fi
fi

echo "== building $image on $base"
docker build -q --build-arg "BASE_IMAGE=$base" -t "$image" "$stage" >/dev/null
echo "built $image"
