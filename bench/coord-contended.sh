#!/usr/bin/env bash
# Contended coordination primitives side by side in one run: 16 clients on one object, each
# workload for SECS seconds, the list alternated ROUNDS times on one fresh 3-node cluster of
# this checkout. Prints one line per run (ops/s, p50, p99).
#
#   bench/coord-contended.sh [ROUNDS (2)] [SECS (10)] [WORKLOADS ("lock-poll lock")]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${ASPEN_BUILD_DIR:-$here/build}
rounds=${1:-2}; secs=${2:-10}; workloads=${3:-"lock-poll lock"}
source "$here/bench/ab-lib.sh"
dir=$(mktemp -d /tmp/aspen-coord-bench.XXXXXX)
ab_start_cluster "$here" "$build" "$dir" 27100
trap 'ab_stop_cluster "$dir"' EXIT
# The key and token cluster.sh made for its operator.
set -a; . "$dir/data/cli.env"; set +a
for r in $(seq 1 "$rounds"); do
  for w in $workloads; do
    out=$("$build/aspen-bench" --ticket "$AB_TICKET" --workload "$w" --contended --clients 16 \
      --duration-s "$secs" --key-prefix "bench/r$r/" --json)
    python3 - "$r" "$w" "$out" <<'PY'
import json, sys
j = json.loads(sys.argv[3]); l = j["latency_ms"]
print("round %s %-10s %8.0f ops/s  p50 %.1f ms  p99 %.1f ms  errors %s"
      % (sys.argv[1], sys.argv[2], j["ops_per_s"], l["p50"], l["p99"], j.get("errors", 0)))
PY
  done
done
