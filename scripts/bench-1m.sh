#!/usr/bin/env bash
# Loads a fresh 3-node local cluster with a million keys (256-byte values) and reports what
# that costs each member: memory, disk, and how long a restarted member takes to serve a
# linearizable read again. These are the "1M keys" rows of the performance targets.
#
#   scripts/bench-1m.sh [KEYS]     (default 1000000; binaries from ./build)
#
# Memory is reported twice: RSS (what `ps` shows; it includes LMDB's memory-mapped data file,
# which is page cache the kernel can reclaim) and the anonymous part of it (heap, stacks),
# which is what the process itself holds.
set -euo pipefail
cd "$(dirname "$0")/.."
KEYS="${1:-1000000}"
BUILD="${ASPEN_BUILD_DIR:-build}"
DATA=/tmp/aspen-bench-1m
PORT=7301
CLI="$BUILD/aspen-cli"

rm -rf "$DATA"
scripts/cluster.sh --fresh --data-dir "$DATA" --base-port "$PORT" > /tmp/aspen-bench-1m-cluster.log 2>&1 &
cluster_pid=$!
cleanup() {
  kill -TERM "$cluster_pid" 2>/dev/null || true
  [ -n "${restarted_pid:-}" ] && kill -TERM "$restarted_pid" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 1 200); do [ -s "$DATA/ticket" ] && break; sleep 0.1; done
[ -s "$DATA/ticket" ] || { echo "the cluster did not start:"; tail -20 /tmp/aspen-bench-1m-cluster.log; exit 1; }
export ASPEN_TICKET="$(cat "$DATA/ticket")"
if [ -f "$DATA/cli.env" ]; then set -a; . "$DATA/cli.env"; set +a; fi  # the key and token cluster.sh made

echo "== loading $KEYS keys (SetMulti batches), then 5 s of linearizable gets over them"
start=$(date +%s%N)
"$BUILD/aspen-bench" --workload get --key-space "$KEYS" --clients 16 --duration-s 5 --timeout-ms 60000 | tail -4
echo "load + gets took $(( ($(date +%s%N) - start) / 1000000 )) ms"

leader=$("$CLI" --json cluster status | sed -n 's/.*"leader_id": *\([0-9]*\).*/\1/p' | head -1)
echo
echo "== per member (leader is node $leader)"
printf "%-6s %10s %12s %10s\n" node "RSS MiB" "anon MiB" "disk MiB"
for i in 1 2 3; do
  pid=$(cat "$DATA/node-$i.pid")
  rss_kb=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
  anon_kb=$(awk '/^RssAnon/ {print $2}' "/proc/$pid/status")
  disk_mb=$(du -sm "$DATA/node-$i" | cut -f1)
  printf "%-6s %10d %12d %10d\n" "$i" $((rss_kb / 1024)) $((anon_kb / 1024)) "$disk_mb"
done

follower=1
[ "$leader" = 1 ] && follower=2
echo
echo "== restart of node $follower (SIGTERM, start again, first linearizable read it serves)"
pid=$(cat "$DATA/node-$follower.pid")
kill -TERM "$pid"
while kill -0 "$pid" 2>/dev/null; do sleep 0.01; done
start=$(date +%s%N)
"$BUILD/aspen-node" --node-id "$follower" --cookie-file "$DATA/cookie" --data-dir "$DATA/node-$follower" \
  --bind "127.0.0.1:$((PORT + follower - 1))" >> "$DATA/node-$follower.log" 2>&1 &
restarted_pid=$!
key=$(printf "bench/%010d" $((KEYS - 1)))
for _ in $(seq 1 1000); do
  "$CLI" --timeout-ms 1000 kv get "$key" --node "$follower" > /dev/null 2>&1 && break
  sleep 0.005
done
echo "node $follower served a linearizable read $(( ($(date +%s%N) - start) / 1000000 )) ms after it was started"
