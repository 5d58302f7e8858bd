#!/usr/bin/env bash
# Single-client put latency of two Aspen builds, measured alternately in one run (A, B, A, B,
# ...), each round on a fresh local 3-node cluster: ops/s, p50/p99, and the leader's storage
# transactions per put. Alternating is what makes the two comparable on a machine whose disk
# and CPU drift from minute to minute.
#
#   bench/put-latency-ab.sh CHECKOUT_A BUILD_A CHECKOUT_B BUILD_B [ROUNDS=4] [SECS=6]
#   e.g. git worktree add /tmp/base <rev> && (cd /tmp/base && scripts/build.sh)
#        bench/put-latency-ab.sh /tmp/base /tmp/base/build . build
set -euo pipefail
ROUNDS=${5:-4}
SECS=${6:-6}
PORT=7901

. "$(dirname "$0")/ab-lib.sh"

one_round() {  # checkout build tag
  local build tag dir ticket
  build=$(readlink -f "$2"); tag=$3
  dir=$(mktemp -d /tmp/aspen-putab-XXXXXX)
  ab_start_cluster "$1" "$2" "$dir" $PORT
  ticket=$AB_TICKET
  if [ -f "$dir/data/cli.env" ]; then set -a; . "$dir/data/cli.env"; set +a; fi  # the key and token cluster.sh made
  "$build/aspen-bench" --ticket "$ticket" --workload put --clients 1 --duration-s 2 --json > /dev/null  # warm-up
  local before after
  before=$(env -u ASPEN_TICKET "$build/aspen-cli" --ticket "$ticket" metrics | awk '/^aspen_storage_writes_total\{node_id="1"\}/ {print $2}')
  local json
  json=$("$build/aspen-bench" --ticket "$ticket" --workload put --clients 1 --duration-s "$SECS" --json)
  after=$(env -u ASPEN_TICKET "$build/aspen-cli" --ticket "$ticket" metrics | awk '/^aspen_storage_writes_total\{node_id="1"\}/ {print $2}')
  python3 - "$tag" "$json" "$before" "$after" "$SECS" <<'PY'
import json, sys
tag, raw, before, after, secs = sys.argv[1], json.loads(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
puts = raw["ops_per_s"] * secs
print(f"{tag}: {raw['ops_per_s']:.0f} puts/s, p50 {raw['latency_ms']['p50']:.2f} ms, p99 {raw['latency_ms']['p99']:.2f} ms, "
      f"node 1 storage transactions per put {(after - before) / puts:.2f} (node 1 is the leader unless an election moved it)")
PY
  ab_stop_cluster "$dir"
}

for round in $(seq 1 "$ROUNDS"); do
  one_round "$1" "$2" A
  one_round "$3" "$4" B
done
