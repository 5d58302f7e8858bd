#!/usr/bin/env bash
# Contended coordination primitives (16 clients on one object) under two or more Aspen
# builds, alternated round by round (A, B, ..., A, B, ...), each run on a fresh local 3-node
# cluster of that build. One line per run (ops/s, p50, p99), then per build and workload the
# median ops/s and p99 over the rounds. For a change whose effect is smaller than this
# machine's drift from minute to minute: many short rounds, compared by their medians.
# Each run also reports the CPU time spent per operation by the three nodes together and by
# the benchmark client (bench/cpu-per-op.py): on a machine whose two cores are shared, less
# CPU per operation is what lets a serial hand-off go faster, and it drifts far less than
# throughput does.
#
#   bench/coord-contended-ab.sh ROUNDS SECS WORKLOADS BUILD_A BUILD_B [BUILD_C ...]
#   e.g. git worktree add /tmp/base <rev> && (cd /tmp/base && scripts/build.sh)
#        bench/coord-contended-ab.sh 10 4 "lock" /tmp/base/build build
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
rounds=$1; secs=$2; workloads=$3; shift 3
builds=(); for b in "$@"; do builds+=("$(readlink -f "$b")"); done
tags=(A B C D E F)
source "$here/bench/ab-lib.sh"
results=$(mktemp /tmp/aspen-coord-ab-results.XXXXXX)
for r in $(seq 1 "$rounds"); do
  for i in "${!builds[@]}"; do
    build=${builds[$i]}; tag=${tags[$i]}
    dir=$(mktemp -d /tmp/aspen-coord-ab.XXXXXX)
    ab_start_cluster "$here" "$build" "$dir" 27500
    for w in $workloads; do
      (set -a; . "$dir/data/cli.env"; set +a
       python3 "$here/bench/cpu-per-op.py" "$dir/data" "$r" "$tag" "$w" -- \
         "$build/aspen-bench" --ticket "$AB_TICKET" --workload "$w" --contended --clients 16 \
           --duration-s "$secs" --key-prefix "bench/r$r/" --json) | tee -a "$results"
    done
    ab_stop_cluster "$dir"
  done
done
echo "medians over $rounds rounds:"
for i in "${!builds[@]}"; do echo "  ${tags[$i]} = ${builds[$i]}"; done
python3 - "$results" <<'PY'
import statistics, sys, collections
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    f = line.split()
    runs[(f[3], f[2])].append((float(f[4]), float(f[10]), float(f[16]), float(f[18]), float(f[20])))
for (w, tag), v in sorted(runs.items()):
    med = [statistics.median(x[i] for x in v) for i in range(5)]
    print("  %-10s %s  ops/s %7.0f   p99 %7.1f ms   CPU ms per op: nodes %.3f (busiest %.3f) client %.3f" % (w, tag, *med))
PY
rm -f "$results"
