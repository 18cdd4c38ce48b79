#!/usr/bin/env bash
# bosun's one run command, for a fresh machine: installs etcd (Debian's etcd-server) and
# protoc if missing, builds the release binaries, and runs `bosun up`, which starts etcd as a
# child process (data under ./.bosun), the broker and every service that exists, then applies
# the example manifests. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh

cargo build --release --bins --quiet
exec target/release/bosun up -f tests/manifests/examples "$@"
