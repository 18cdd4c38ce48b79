#!/usr/bin/env bash
# Brings the compose stack up on this machine at scale (three brokers behind the one name
# `broker`: broker-0 and two `broker` replicas; two Job controller replicas), waits until
# every service's health check passes, stops two brokers, talks to the stack with the real CLI, and takes it down again. Used by
# the test command (scripts/test.sh) and handy by hand.
set -euo pipefail
cd "$(dirname "$0")/.."

compose() {
  if command -v docker-compose >/dev/null; then docker-compose "$@"; else docker compose "$@"; fi
}
export BOSUN_PORT=${BOSUN_PORT:-17440} BOSUN_METRICS_PORT=${BOSUN_METRICS_PORT:-19440}
export BOSUN_SERVER=http://127.0.0.1:$BOSUN_PORT
project=bosun-smoke-$$
bosun=${CARGO_TARGET_DIR:-target}/release/bosun
started=$SECONDS
# An image of its own, so concurrent builds of bosun:local elsewhere do not race this run.
export BOSUN_IMAGE=${BOSUN_IMAGE:-bosun:$project}

deploy/build-images.sh
cleanup() {
  local status=$?
  # The stack's logs only matter when something failed.
  [ "$status" = 0 ] || compose -p "$project" -f deploy/docker-compose.yml logs --tail=50 >&2 || true
  compose -p "$project" -f deploy/docker-compose.yml down -v >/dev/null 2>&1 || true
  [ "$BOSUN_IMAGE" != "bosun:$project" ] || docker rmi "$BOSUN_IMAGE" >/dev/null 2>&1 || true
}

# Runs "$@" once a second until it succeeds, for at most $1 seconds.
retry() {
  local limit=$1 deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    if [ $SECONDS -ge $deadline ]; then echo "gave up after ${limit}s: $*" >&2; return 1; fi
    sleep 1
  done
}
pod_phase_is() { [ "$("$bosun" get pod "$1" -o 'jsonpath={.status.phase}' 2>/dev/null)" = "$2" ]; }
nodes_ready() {
  local out
  out=$("$bosun" get nodes 2>/dev/null) || return 1
  echo "$out" | grep -Eq '^node-1 +Ready' && echo "$out" | grep -Eq '^node-2 +Ready'
}
trap cleanup EXIT
# Every service but the named nodes scales; the smoke runs two of the broker and of the Job
# controller (the replicas do not share work yet: both Job controllers act on every Job,
# which every write being conflict-checked keeps correct).
compose -p "$project" -f deploy/docker-compose.yml up -d --scale broker=2 --scale job-controller=2

# Which container of the project is `service` number `n`.
container() {
  docker ps -aq --filter "label=com.docker.compose.project=$project" \
    --filter "label=com.docker.compose.service=$1" --filter "label=com.docker.compose.container-number=$2"
}
# Every container of the project, and whether its health check passes.
all_healthy() {
  local statuses
  statuses=$(docker ps -a --filter "label=com.docker.compose.project=$project" --format '{{.Label "com.docker.compose.service"}} {{.Status}}')
  [ "$(echo "$statuses" | wc -l)" = 12 ] && ! echo "$statuses" | grep -vq '(healthy)'
}
echo "== every service healthy (etcd, broker-0 and 2 brokers, scheduler, gc, 2 Job controllers, CronJob and DaemonSet controllers, 2 nodes)"
retry 120 all_healthy || { docker ps -a --filter "label=com.docker.compose.project=$project" --format '{{.Names}} {{.Status}}' >&2; exit 1; }
docker ps --filter "label=com.docker.compose.project=$project" --format '{{.Names}}\t{{.Status}}'

# The CLI talks to broker-0 (on BOSUN_PORT); each `broker` replica answers on its own port.
for n in 1 2; do
  addr=$(compose -p "$project" -f deploy/docker-compose.yml port --index=$n broker 7440)
  echo "== broker $n published on $addr"
  "$bosun" get nodes --server "http://$addr" >/dev/null
done

echo "== bosun against the compose stack"
"$bosun" apply -f tests/manifests/examples/job-pi.yaml
"$bosun" get jobs
"$bosun" get job pi -o name | grep -qx 'job.batch/pi'
"$bosun" delete job pi

echo "== both node agents register Ready"
retry 60 nodes_ready
"$bosun" get nodes

echo "== a pod runs on a node, and its logs come through the broker"
"$bosun" apply -f tests/manifests/examples/pod-hello.yaml
retry 60 pod_phase_is hello Succeeded
"$bosun" get pod hello -o wide
logs=$("$bosun" logs hello)
[ "$logs" = hello ] || { echo "bosun logs hello printed: $logs" >&2; exit 1; }
"$bosun" delete pod hello

echo "== two of the three brokers stop: the services reach broker-0 through the same name"
docker stop "$(container broker 1)" "$(container broker 2)" >/dev/null

echo "== the Job controllers run a Job to completion"
"$bosun" apply -f tests/manifests/examples/job-batch.yaml
"$bosun" wait --for=condition=complete job/batch-job --timeout=90s
"$bosun" get job batch-job
[ "$("$bosun" get job batch-job -o 'jsonpath={.status.succeeded}')" = 1 ] || { echo "batch-job did not count its pod" >&2; exit 1; }
"$bosun" delete job batch-job

echo "== the CronJob controller schedules a CronJob"
cronjob_scheduled() { [ -n "$("$bosun" get cronjob hello -o 'jsonpath={.status.nextScheduleTime}' 2>/dev/null)" ]; }
"$bosun" apply -f tests/manifests/examples/cronjob-hello.yaml
retry 30 cronjob_scheduled
"$bosun" get cronjob hello
"$bosun" delete cronjob hello
echo "compose smoke test passed in $((SECONDS - started))s (with the image build)"
