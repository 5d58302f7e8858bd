#!/usr/bin/env bash
# What hostile clients cost a well-behaved one, in one run per round, each round on a fresh
# local 3-node cluster (scripts/cluster.sh): the well-behaved client's put throughput and
# p50/p99 without hostile clients, with the hostile clients of
# tests/integration/hostile_clients_test.cc attacking node 1 (the leader cluster.sh makes),
# and without them again; node 1's peak RSS (VmHWM) in each phase; the ratio of throughput
# under attack to the clean mean.
#
#   bench/hostile-load.sh [BUILD=build] [ROUNDS=3] [PHASE_S=10]
# Needs BUILD/aspen-hostile-bench (ninja -C build aspen-hostile-bench aspen-node aspen-cli).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
ROUNDS=${2:-3}
PHASE_S=${3:-10}
PORT=7971

. bench/ab-lib.sh

for round in $(seq 1 "$ROUNDS"); do
  dir=$(mktemp -d /tmp/aspen-hostile-XXXXXX)
  ab_start_cluster . "$BUILD" "$dir" $PORT
  (
    set -a; . "$dir/data/cli.env"; set +a
    echo "round $round:"
    "$BUILD/aspen-hostile-bench" --ticket "$AB_TICKET" --node-id 1 --pid "$(cat "$dir/data/node-1.pid")" \
      --phase-s "$PHASE_S"
  )
  ab_stop_cluster "$dir"
done
