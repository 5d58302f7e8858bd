#!/usr/bin/env bash
# Contended coordination primitives (16 clients on one object) under two Aspen builds,
# alternated round by round (A, B, A, B, ...), each round on a fresh local 3-node cluster of
# that build: one line per run (ops/s, p50, p99). For a change whose effect is smaller than
# this machine's drift from minute to minute (see put-latency-ab.sh).
#
#   bench/coord-contended-ab.sh BUILD_A BUILD_B [ROUNDS (3)] [SECS (8)] [WORKLOADS ("lock")]
#   e.g. git worktree add /tmp/base <rev> && (cd /tmp/base && scripts/build.sh)
#        bench/coord-contended-ab.sh /tmp/base/build build
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build_a=$(readlink -f "$1"); build_b=$(readlink -f "$2")
rounds=${3:-3}; secs=${4:-8}; workloads=${5:-"lock"}
source "$here/bench/ab-lib.sh"
for r in $(seq 1 "$rounds"); do
  for tag in A B; do
    build=$build_a; [ "$tag" = B ] && build=$build_b
    dir=$(mktemp -d /tmp/aspen-coord-ab.XXXXXX)
    ab_start_cluster "$here" "$build" "$dir" 27500
    for w in $workloads; do
      out=$(set -a; . "$dir/data/cli.env"; set +a
            "$build/aspen-bench" --ticket "$AB_TICKET" --workload "$w" --contended --clients 16 \
              --duration-s "$secs" --key-prefix "bench/r$r/" --json)
      python3 - "$r" "$tag" "$w" "$out" <<'PY'
import json, sys
j = json.loads(sys.argv[4]); l = j["latency_ms"]
print("round %s %s %-10s %8.0f ops/s  p50 %.1f ms  p99 %.1f ms  errors %s"
      % (sys.argv[1], sys.argv[2], sys.argv[3], j["ops_per_s"], l["p50"], l["p99"], j.get("errors", 0)))
PY
    done
    ab_stop_cluster "$dir"
  done
done
