#!/usr/bin/env bash
# Throughput and latency of two Aspen builds on the same workloads, measured alternately in
# one run (A, B, A, B, ...), each round on a fresh local 3-node cluster: what a change costs,
# e.g. capability tokens (B) against the commit before them (A).
#
#   bench/auth-ab.sh CHECKOUT_A BUILD_A CHECKOUT_B BUILD_B [ROUNDS=3] [SECS=5]
#   e.g. git worktree add /tmp/base <rev> && (cd /tmp/base && scripts/build.sh)
#        bench/auth-ab.sh /tmp/base /tmp/base/build . build
# Prints one line per build, workload and round, then the medians side by side.
set -euo pipefail
ROUNDS=${5:-3}
SECS=${6:-5}
PORT=7951
OUT=$(mktemp /tmp/aspen-authab-XXXXXX.jsonl)

. "$(dirname "$0")/ab-lib.sh"

one_round() {  # checkout build tag
  local build tag dir ticket
  build=$(readlink -f "$2"); tag=$3
  dir=$(mktemp -d /tmp/aspen-authab-XXXXXX)
  ab_start_cluster "$1" "$2" "$dir" $PORT
  ticket=$AB_TICKET
  (
    # The key and token cluster.sh made, if this build has them; in a subshell, so nothing
    # carries over to the other build's round.
    if [ -f "$dir/data/cli.env" ]; then set -a; . "$dir/data/cli.env"; set +a; fi
    bench() { "$build/aspen-bench" --ticket "$ticket" "$@"; }
    bench --workload get --key-space 1000 --clients 16 --requests 1 --json > /dev/null  # preload
    for spec in "put 1" "put 64" "get 1" "get 64"; do
      set -- $spec
      json=$(bench --workload "$1" --key-space 1000 --clients "$2" --duration-s "$SECS" --no-preload --json)
      python3 -c 'import json,sys; r=json.loads(sys.argv[4]); print(json.dumps({"build":sys.argv[1],"workload":sys.argv[2],"clients":int(sys.argv[3]),"ops":r["ops_per_s"],"p50":r["latency_ms"]["p50"],"p99":r["latency_ms"]["p99"]}))' \
        "$tag" "$1" "$2" "$json" | tee -a "$OUT"
    done
  )
  ab_stop_cluster "$dir"
}

for round in $(seq 1 "$ROUNDS"); do
  one_round "$1" "$2" A
  one_round "$3" "$4" B
done
python3 - "$OUT" <<'PY'
import json, sys, statistics as st
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print("| workload | clients | A ops/s | A p50/p99 ms | B ops/s | B p50/p99 ms | B/A ops |")
print("|---|---|---|---|---|---|---|")
keys = []
for r in rows:
    k = (r["workload"], r["clients"])
    if k not in keys: keys.append(k)
for wl, c in keys:
    def med(b, f): return st.median([r[f] for r in rows if r["build"] == b and r["workload"] == wl and r["clients"] == c])
    a, b = med("A", "ops"), med("B", "ops")
    print(f"| {wl} | {c} | {a:.0f} | {med('A','p50'):.2f}/{med('A','p99'):.2f} | {b:.0f} | {med('B','p50'):.2f}/{med('B','p99'):.2f} | {b/a:.2f} |")
PY
