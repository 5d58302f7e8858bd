#!/usr/bin/env bash
# Blob numbers on a fresh local 3-node cluster (scripts/cluster.sh), one SIZE_MIB file of
# random bytes, side by side in one run:
#   b3sum          hashing the file alone (the floor under any add)
#   add            aspen-cli blob add FILE to node 1 (stream, hash, outboard, fsync, record)
#   get            aspen-cli blob get HASH from node 1 (range encoding, verified by the CLI)
#   replication    blob tag set, until nodes 2 and 3 hold it verified (fetched from node 1)
#   transport      the transport's bulk figure on one stream (aspen_bench, if built)
#
#   bench/blob-throughput.sh [BUILD=build] [SIZE_MIB=1024]
# Needs BUILD/aspen-node and BUILD/aspen-cli; b3sum (Debian package b3sum).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
SIZE_MIB=${2:-1024}
PORT=7991

. bench/ab-lib.sh

dir=$(mktemp -d /tmp/aspen-blob-XXXXXX)
trap 'ab_stop_cluster "$dir" 2>/dev/null || rm -rf "$dir"' EXIT
head -c $((SIZE_MIB << 20)) /dev/urandom > "$dir/blob.bin"
ab_start_cluster . "$BUILD" "$dir" $PORT
set -a; . "$dir/data/cli.env"; set +a
cli() { "$BUILD/aspen-cli" --ticket "$AB_TICKET" --timeout-ms 600000 "$@"; }
now() { date +%s.%N; }
rate() { awk -v mib="$SIZE_MIB" -v a="$1" -v b="$2" 'BEGIN { s = b - a; printf "%6.2f s  %7.1f MiB/s", s, mib / s }'; }

sync
t0=$(now); want=$(b3sum --no-names "$dir/blob.bin"); t1=$(now)
echo "b3sum          $(rate "$t0" "$t1")"
t0=$(now); hash=$(cli blob add "$dir/blob.bin" --node 1); t1=$(now)
echo "add            $(rate "$t0" "$t1")"
[ "$hash" = "$want" ] || { echo "hash mismatch: $hash vs b3sum $want" >&2; exit 1; }
t0=$(now); cli blob get "$hash" --node 1 -o "$dir/out.bin"; t1=$(now)
echo "get            $(rate "$t0" "$t1")"
cmp -s "$dir/blob.bin" "$dir/out.bin" || { echo "get returned other bytes" >&2; exit 1; }
rm -f "$dir/out.bin"
holders() { cli --json blob status "$hash" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["holders"]))'; }
t0=$(now); cli blob tag set bench "$hash" >/dev/null
until [ "$(holders)" = 3 ]; do sleep 0.2; done; t1=$(now)
echo "replication    $(rate "$t0" "$t1")  (to 2 more members, fetched in parallel from node 1)"
if [ -x "$BUILD/aspen_bench" ]; then
  "$BUILD/aspen_bench" --benchmark_filter='BM_TransportQuicBulk' 2>/dev/null | grep -i -E 'bulk|bytes' || true
fi
