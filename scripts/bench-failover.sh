#!/usr/bin/env bash
# Measures how long writes stop when the leader of a 3-node cluster is killed (kill -9),
# with the default timeouts (heartbeat 100 ms, election timeout 1000 ms, as etcd's).
# Each run starts a fresh local cluster, loads it with 16 writers, kills the leader and
# reports the time to the first acknowledged write issued after the kill.
#
#   scripts/bench-failover.sh [RUNS]     (default 3; binaries from ./build)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-3}"
BUILD="${ASPEN_BUILD_DIR:-build}"
DATA=/tmp/aspen-failover-bench
for run in $(seq 1 "$RUNS"); do
  echo "== run $run of $RUNS"
  rm -rf "$DATA"
  scripts/cluster.sh --fresh --data-dir "$DATA" --base-port 7101 > /tmp/aspen-failover-cluster.log 2>&1 &
  cluster_pid=$!
  for _ in $(seq 1 200); do [ -s "$DATA/ticket" ] && break; sleep 0.1; done
  if [ ! -s "$DATA/ticket" ]; then
    echo "the cluster did not start:"; tail -20 /tmp/aspen-failover-cluster.log; kill -TERM $cluster_pid; exit 1
  fi
  if [ -f "$DATA/cli.env" ]; then set -a; . "$DATA/cli.env"; set +a; fi  # the key and token cluster.sh made
  "$BUILD/aspen-failover-bench" --ticket "$(cat "$DATA/ticket")" --pid-dir "$DATA" || true
  kill -TERM $cluster_pid
  wait $cluster_pid 2>/dev/null || true
done
