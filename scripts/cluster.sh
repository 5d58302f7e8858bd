#!/usr/bin/env bash
# Starts a local Aspen cluster of N nodes on 127.0.0.1, forms it (init on node 1, the others
# added as learners and promoted to voters), prints the ticket and example commands, and
# stops every node on Ctrl+C. Data survives in the data directory: running the script again
# restarts the same cluster.
#
#   scripts/cluster.sh [--nodes N] [--base-port P] [--data-dir DIR] [--demo] [--fresh]
#
#   --nodes N       how many nodes (default 3)
#   --base-port P   node i listens on UDP port P+i-1 (default 7001)
#   --data-dir DIR  where nodes keep their data (default ./data/cluster)
#   --demo          run a short demonstration (writes, reads, a transaction, a lease, a
#                   leader crash and recovery), then stop the cluster
#   --fresh         delete the data directory first
#
# Binaries come from ./build (run scripts/build.sh first) or $ASPEN_BUILD_DIR.
set -euo pipefail

cd "$(dirname "$0")/.."
BUILD="${ASPEN_BUILD_DIR:-build}"
NODES=3
BASE_PORT=7001
DATA=./data/cluster
DEMO=0
FRESH=0
while [ $# -gt 0 ]; do
  case "$1" in
    --nodes) NODES="$2"; shift 2 ;;
    --base-port) BASE_PORT="$2"; shift 2 ;;
    --data-dir) DATA="$2"; shift 2 ;;
    --demo) DEMO=1; shift ;;
    --fresh) FRESH=1; shift ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "cluster.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
if ! [[ "$NODES" =~ ^[0-9]+$ ]] || [ "$NODES" -lt 1 ] || [ "$NODES" -gt 9 ]; then
  echo "cluster.sh: --nodes must be between 1 and 9" >&2; exit 2
fi
NODE_BIN="$BUILD/aspen-node"
CLI_BIN="$BUILD/aspen-cli"
for b in "$NODE_BIN" "$CLI_BIN"; do
  [ -x "$b" ] || { echo "cluster.sh: $b not found; run scripts/build.sh first" >&2; exit 2; }
done

[ "$FRESH" = 1 ] && rm -rf "$DATA"
mkdir -p "$DATA"
chmod 700 "$DATA"
# One secret cookie per local cluster, created on first start.
if [ ! -s "$DATA/cookie" ]; then
  (umask 077; head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$DATA/cookie")
fi

PIDS=()
stop_all() {
  trap - INT TERM EXIT
  if [ ${#PIDS[@]} -gt 0 ]; then
    echo
    echo "stopping ${#PIDS[@]} nodes..."
    kill -TERM "${PIDS[@]}" 2>/dev/null || true
    wait "${PIDS[@]}" 2>/dev/null || true
    echo "stopped. Logs and data are in $DATA"
  fi
}
trap stop_all INT TERM EXIT

# Waits (up to 15 s) for a line starting with $2 in file $1.
wait_for_line() {
  local file="$1" prefix="$2" i
  for i in $(seq 1 300); do
    if grep -q "^$prefix" "$file" 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "cluster.sh: timed out waiting for '$prefix' in $file:" >&2
  tail -20 "$file" >&2
  return 1
}

for i in $(seq 1 "$NODES"); do
  port=$((BASE_PORT + i - 1))
  log="$DATA/node-$i.log"
  : > "$log"
  "$NODE_BIN" --node-id "$i" --cookie-file "$DATA/cookie" --data-dir "$DATA/node-$i" --bind "127.0.0.1:$port" \
    --ticket-file "$DATA/node-$i.ticket" >> "$log" 2>&1 &
  PIDS+=($!)
  echo $! > "$DATA/node-$i.pid"
done
for i in $(seq 1 "$NODES"); do wait_for_line "$DATA/node-$i.log" ASPEN_TICKET; done

key_of() { grep -o 'public_key=[a-z0-9]*' "$DATA/node-$1.log" | head -1 | cut -d= -f2; }
# This cluster's operator: a key and the admin token `cluster init` makes for it, kept with
# the cluster's data rather than in ~/.config/aspen.
export ASPEN_IDENTITY="$DATA/identity.key" ASPEN_TOKEN_FILE="$DATA/token"
export ASPEN_TICKET
ASPEN_TICKET="$(cat "$DATA/node-1.ticket")"

if [ ! -f "$DATA/formed" ]; then
  echo "forming a new $NODES-node cluster..."
  rm -f "$DATA/root.key"
  "$CLI_BIN" cluster init --root-key-file "$DATA/root.key" > /dev/null
  echo "root key in $DATA/root.key (it can make any token for this cluster); admin token in $DATA/token"
  voters=(1)
  for i in $(seq 2 "$NODES"); do
    "$CLI_BIN" cluster add-learner "$i" "$(key_of "$i")" "127.0.0.1:$((BASE_PORT + i - 1))" > /dev/null
    voters+=("$i")
  done
  if [ "$NODES" -gt 1 ]; then "$CLI_BIN" cluster change-membership "${voters[@]}" > /dev/null; fi
  touch "$DATA/formed"
fi
# The ticket that names every member.
for _ in $(seq 1 100); do
  ASPEN_TICKET="$("$CLI_BIN" cluster ticket 2>/dev/null || true)"
  [ -n "$ASPEN_TICKET" ] && break
  sleep 0.1
done
# What a client program (aspen-cli, aspen-bench) needs besides the ticket, for scripts to
# source; written before the ticket, which scripts wait for.
printf 'ASPEN_IDENTITY=%s\nASPEN_TOKEN_FILE=%s\n' "$ASPEN_IDENTITY" "$ASPEN_TOKEN_FILE" > "$DATA/cli.env"
echo "$ASPEN_TICKET" > "$DATA/ticket"
"$CLI_BIN" cluster status

cat <<EOF

Aspen cluster of $NODES nodes is running (data and logs in $DATA).
Ticket (also in $DATA/ticket), and who you are to it (your key and admin token):
  export ASPEN_TICKET=$ASPEN_TICKET
  export ASPEN_IDENTITY=$ASPEN_IDENTITY ASPEN_TOKEN_FILE=$ASPEN_TOKEN_FILE

Try:
  $CLI_BIN kv set greeting hello
  $CLI_BIN kv get greeting
  $CLI_BIN kv scan --all
  $CLI_BIN cluster status
  $CLI_BIN metrics | grep aspen_raft
EOF

if [ "$DEMO" = 1 ]; then
  echo
  echo "=== demo ==="
  run() { echo "\$ aspen-cli $*"; "$CLI_BIN" "$@"; }
  run kv set greeting "hello from aspen"
  run kv get greeting
  for i in 1 2 3; do "$CLI_BIN" kv set "demo/item-$i" "value $i" > /dev/null; done
  run kv scan demo/
  run kv cas greeting "hello again" --expected "hello from aspen"
  run kv cas greeting "never written" --expected "stale value" || echo "(CAS refused as expected: exit $?)"
  run lease grant 30
  run auth whoami
  echo
  echo "a second user, whose token lets it read demo/ and nothing else:"
  reader_key=$("$CLI_BIN" --identity "$DATA/reader.key" identity show)
  "$CLI_BIN" auth token create --root-key-file "$DATA/root.key" --can read:demo/ --for "$reader_key" \
    --expires-in 1h -o "$DATA/reader.token" > /dev/null
  reader() { echo "\$ aspen-cli (as the reader) $*"; "$CLI_BIN" --identity "$DATA/reader.key" --token-file "$DATA/reader.token" "$@"; }
  reader kv get demo/item-1
  reader kv set demo/item-1 overwritten || echo "(refused, exit $?: the reader may only read demo/)"
  leader=$("$CLI_BIN" --json cluster status | sed -n 's/.*"leader_id": *\([0-9]*\).*/\1/p' | head -1)
  if [ "$NODES" -ge 3 ] && [ -n "$leader" ] && [ "$leader" != 0 ]; then
    echo
    echo "crashing the leader (node $leader) with kill -9..."
    { kill -9 "${PIDS[$((leader - 1))]}"; wait "${PIDS[$((leader - 1))]}"; } 2>/dev/null || true
    start=$(date +%s%N)
    # A write in flight when a leader dies may end with an ambiguous timeout; this one is
    # idempotent, so the demo simply tries again.
    for _ in $(seq 1 10); do
      "$CLI_BIN" --timeout-ms 15000 kv set after-crash "written while node $leader was down" > /dev/null 2>&1 && break
    done
    echo "first write after the crash succeeded in $(( ($(date +%s%N) - start) / 1000000 )) ms"
    run kv get after-crash
    run cluster status
    echo "restarting node $leader..."
    port=$((BASE_PORT + leader - 1))
    "$NODE_BIN" --node-id "$leader" --cookie-file "$DATA/cookie" --data-dir "$DATA/node-$leader" --bind "127.0.0.1:$port" \
      --ticket-file "$DATA/node-$leader.ticket" >> "$DATA/node-$leader.log" 2>&1 &
    PIDS[$((leader - 1))]=$!
    echo $! > "$DATA/node-$leader.pid"
    # A linearizable read served by the restarted node: it waits until the node caught up.
    for _ in $(seq 1 100); do
      "$CLI_BIN" --timeout-ms 2000 kv get after-crash --node "$leader" > /dev/null 2>&1 && break
      sleep 0.1
    done
    run kv get after-crash --node "$leader" || true
  fi
  echo "=== demo finished ==="
  exit 0
fi

echo
echo "Press Ctrl+C to stop the cluster."
wait
