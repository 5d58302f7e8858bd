#!/usr/bin/env bash
# Gossip discovery numbers (docs/operations.md, "Discovery"): N nodes started one after
# another with nothing but the cookie, on consecutive ports that are their probe range.
#
#   1. time to discover: from the first node's start until every node's `cluster peers`
#      lists every other node as heard by gossip;
#   2. gossip bytes per node per minute: aspen_gossip_sent_bytes_total over --secs seconds
#      of steady state at the default interval (message bytes; QUIC and UDP headers and the
#      handshakes of new connections are not in it).
#
#   bench/gossip-discovery.sh [--nodes 3] [--secs 60] [--base-port 17600]
#
# Binaries from ./build or $ASPEN_BUILD_DIR. Prints one line per number.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${ASPEN_BUILD_DIR:-build}"
NODES=3
SECS=60
BASE=17600
while [ $# -gt 0 ]; do
  case "$1" in
    --nodes) NODES="$2"; shift 2 ;;
    --secs) SECS="$2"; shift 2 ;;
    --base-port) BASE="$2"; shift 2 ;;
    *) echo "gossip-discovery.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
LAST=$((BASE + NODES - 1))
work=$(mktemp -d /tmp/aspen-gossip-bench-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2> /dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
(umask 077; head -c 32 /dev/urandom | base64 > "$work/cookie")
"$BUILD/aspen-cli" --help > /dev/null
export ASPEN_IDENTITY="$work/cli.key"

now_ms() { date +%s%3N; }
start_ms=$(now_ms)
for i in $(seq 1 "$NODES"); do
  port=$((BASE + i - 1))
  "$BUILD/aspen-node" --node-id "$i" --cookie-file "$work/cookie" --bind "127.0.0.1:$port" \
    --data-dir "$work/n$i" --gossip-probe-ports "$BASE-$LAST" > "$work/n$i.log" 2>&1 &
  pids+=($!)
  until grep -q ASPEN_NODE_READY "$work/n$i.log" 2> /dev/null; do sleep 0.05; done
done
ticket_of() { grep -m1 '^ASPEN_TICKET ' "$work/n$1.log" | cut -d' ' -f2; }
heard_by() {  # how many other nodes node $1 heard of by gossip
  "$BUILD/aspen-cli" --ticket "$(ticket_of "$1")" --json cluster peers --node "$1" 2> /dev/null |
    python3 -c 'import json,sys; j=json.load(sys.stdin); print(sum(1 for p in j["peers"] if any(s["source"]=="gossip" for s in p["sources"])))' \
    2> /dev/null || echo 0
}
deadline=$(( $(now_ms) + 60000 ))
while :; do
  done_nodes=0
  for i in $(seq 1 "$NODES"); do
    [ "$(heard_by "$i")" -ge $((NODES - 1)) ] && done_nodes=$((done_nodes + 1))
  done
  [ "$done_nodes" -eq "$NODES" ] && break
  [ "$(now_ms)" -gt "$deadline" ] && { echo "gossip-discovery.sh: not every node found every other in 60 s" >&2; exit 1; }
done
echo "time to discover $NODES nodes: $(( $(now_ms) - start_ms )) ms (from the first start; starts took part of it)"

sent() {
  "$BUILD/aspen-cli" --ticket "$(ticket_of "$1")" metrics --node "$1" 2> /dev/null |
    awk '/^aspen_gossip_sent_bytes_total/ {print $2}'
}
declare -A before
for i in $(seq 1 "$NODES"); do before[$i]=$(sent "$i"); done
sleep "$SECS"
total=0
for i in $(seq 1 "$NODES"); do total=$(( total + $(sent "$i") - ${before[$i]} )); done
echo "gossip bytes sent per node per minute: $(( total * 60 / SECS / NODES )) (over $SECS s, $NODES nodes, default interval)"
