#!/usr/bin/env bash
# bosun's one test command, for a fresh machine: installs what the build and the tests need
# (etcd from Debian's packages, protoc for etcd-client's build script, the Python
# prometheus_client parser for the metrics test), then runs the format
# and lint checks, every test (unit, integration and end-to-end against a real etcd), a
# one-shot run of each benchmark at a tiny size, and the docker-compose smoke test.
#
#   scripts/test.sh              # everything
#   SKIP_COMPOSE=1 scripts/test.sh   # without the docker-compose smoke test
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh --test

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings

echo "== one tonic in the tree"
dups=$(cargo tree --workspace -d --depth 0 -e normal,build | grep -c '^tonic ' || true)
[ "$dups" = 0 ] || { echo "more than one tonic version in the tree" >&2; cargo tree -d -i tonic >&2; exit 1; }

echo "== tests"
# The end-to-end tests run the real binaries (bosun, bosun-broker, bosun-node-agent...): build
# them all first, since cargo builds a package's binaries only for its own integration tests.
cargo build --workspace --bins --quiet
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
else
  cargo test --workspace --no-fail-fast
fi

echo "== release build (benchmarks and the compose image use it)"
cargo build --release --bins --quiet

echo "== benchmarks, once at a tiny size"
target/release/bosun-bench fanout --smoke
target/release/bosun-bench startup --smoke
target/release/bosun-bench sched --smoke
target/release/bosun-bench jobs --smoke
target/release/bosun-bench cronjobs --smoke   # @every 2s, no cron daemon: ~5 s
target/release/bosun-bench daemonsets --smoke # 20 sim nodes: create, RollingUpdate 10%
target/release/bosun-bench handoff --smoke    # 2 Job controller replicas: 1 kill, 1 SIGTERM

if [ -z "${SKIP_COMPOSE:-}" ]; then
  echo "== docker-compose smoke test"
  deploy/smoke.sh
fi
echo "all checks passed"
