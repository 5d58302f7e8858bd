#!/usr/bin/env bash
# What the history (MVCC) costs on disk, on a fresh local 3-node cluster (scripts/cluster.sh):
# the state machine's size (metric aspen_storage_used_bytes of node 1) before and after
# PUTS puts of VALUE bytes to 100 keys, per version, and after `kv compact` to the newest
# revision (plus a few writes, each of which moves the bounded deletion along).
#
#   bench/history-cost.sh [BUILD=build] [PUTS=20000] [VALUE=256]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
PUTS=${2:-20000}
VALUE=${3:-256}
PORT=7991

. bench/ab-lib.sh

dir=$(mktemp -d /tmp/aspen-history-XXXXXX)
ab_start_cluster . "$BUILD" "$dir" $PORT
(
  set -a; . "$dir/data/cli.env"; set +a
  export ASPEN_TICKET="$AB_TICKET"
  used() { "$BUILD/aspen-cli" metrics --node 1 | awk '/^aspen_storage_used_bytes/ {print $2}'; }
  wait_check() { sleep 1; }  # the node measures its storage every storage_check_interval_ms (250)
  wait_check
  before=$(used)
  "$BUILD/aspen-bench" --workload put --clients 16 --requests "$PUTS" --key-space 100 --value-size "$VALUE" \
    --key-prefix hist/ | grep "ops/s"
  wait_check
  after=$(used)
  rev=$("$BUILD/aspen-cli" --json kv get hist/0000000001 | python3 -c 'import sys, json; print(json.load(sys.stdin)["kv"]["mod_revision"])')
  "$BUILD/aspen-cli" kv compact "$rev"
  "$BUILD/aspen-bench" --workload put --clients 4 --requests 400 --key-space 100 --value-size "$VALUE" \
    --key-prefix hist/ > /dev/null
  wait_check
  compacted=$(used)
  echo "state machine bytes: $before before, $after after $PUTS puts of $VALUE B to 100 keys," \
       "$compacted after compacting to revision $rev (and 400 more puts)"
  python3 -c "print('bytes per version: %.0f' % (($after - $before) / $PUTS))"
)
ab_stop_cluster "$dir"
