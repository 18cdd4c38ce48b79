#!/usr/bin/env bash
# The compose stack at scale under faults (issue 12): builds the images from this checkout,
# then runs tests/tests/compose_scale.rs — three Job controller replicas, one killed, one
# paused past its lease and one cut off the network, each Job counted exactly; and the
# negative control, the same faults with the broker's fence check switched off.
#
#   deploy/chaos.sh                 # both tests
#   deploy/chaos.sh three_job       # the ones whose name contains "three_job"
set -euo pipefail
cd "$(dirname "$0")/.."
export BOSUN_IMAGE=${BOSUN_IMAGE:-bosun:chaos-$$}
deploy/build-images.sh
cleanup() { docker rmi "$BOSUN_IMAGE" >/dev/null 2>&1 || true; }
[ "$BOSUN_IMAGE" != "bosun:chaos-$$" ] || trap cleanup EXIT
cargo build --workspace --bins --quiet
cargo nextest run -p bosun-tests --test compose_scale --run-ignored only --no-fail-fast \
  --no-capture --test-threads 1 ${1:+-E "test(/$1/)"}
