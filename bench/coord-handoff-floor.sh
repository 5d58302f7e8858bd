#!/usr/bin/env bash
# What bounds a contended lock: on one fresh 3-node cluster of this checkout, the latency of
# one write (put, cas; 1 client), of one uncontended lock cycle (join + release: 2 writes;
# 1 client), and the contended lock (16 clients, one lock), SECS seconds each. A FIFO
# hand-off is one committed write plus one watch event, so the contended rate cannot pass
# 1 / (one write's latency). Prints one line per workload.
#
#   bench/coord-handoff-floor.sh [SECS (6)]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${ASPEN_BUILD_DIR:-$here/build}
secs=${1:-6}
source "$here/bench/ab-lib.sh"
dir=$(mktemp -d /tmp/aspen-handoff-bench.XXXXXX)
ab_start_cluster "$here" "$build" "$dir" 27300
trap 'ab_stop_cluster "$dir"' EXIT
set -a; . "$dir/data/cli.env"; set +a
run() {
  local label=$1; shift
  "$build/aspen-bench" --ticket "$AB_TICKET" "$@" --duration-s "$secs" --json |
    python3 -c 'import json, sys
j = json.load(sys.stdin); l = j["latency_ms"]
print("%-28s %7.0f ops/s  p50 %.2f ms  p99 %.2f ms  errors %s" % (sys.argv[1], j["ops_per_s"], l["p50"], l["p99"], j.get("errors", 0)))' "$label"
}
run "put, 1 client" --workload put --clients 1 --key-prefix bench/put/
run "cas, 1 client" --workload cas --clients 1 --key-prefix bench/cas/
run "lock cycle, 1 client" --workload lock --clients 1 --key-prefix bench/lock1/
run "lock, 16 clients, one lock" --workload lock --clients 16 --contended --key-prefix bench/lock16/
