#!/usr/bin/env bash
# Watch numbers on a fresh local 3-node cluster per run (scripts/cluster.sh): put-ack to
# event latency with 1, 100 and 1,000 watchers on one member, the node memory per idle
# watcher, and the events per second one watcher takes.
#
#   bench/watch-latency.sh [BUILD=build] [WRITES=1000] [RATE=200]
# Needs BUILD/aspen-watch-bench (ninja -C build aspen-watch-bench aspen-node aspen-cli).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
WRITES=${2:-1000}
RATE=${3:-200}
PORT=7981

. bench/ab-lib.sh

run() {
  dir=$(mktemp -d /tmp/aspen-watch-XXXXXX)
  ab_start_cluster . "$BUILD" "$dir" $PORT
  (
    set -a; . "$dir/data/cli.env"; set +a
    "$BUILD/aspen-watch-bench" --ticket "$AB_TICKET" --node 2 --node-pid "$(cat "$dir/data/node-2.pid")" "$@"
  ) || echo "(run failed)"
  ab_stop_cluster "$dir"
}

for n in 1 100 1000; do run --mode latency --watchers "$n" --writes "$WRITES" --rate "$RATE"; done
run --mode throughput --seconds 10
