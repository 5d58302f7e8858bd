#!/usr/bin/env bash
# The formation soak (not part of the test suite): forms CLUSTERS fresh local 3-node clusters
# one after another with scripts/cluster.sh, while other processes load the CPU and the disk
# and a stale ASPEN_TICKET (a cluster that no longer exists) sits in the environment, and
# checks that every one elects a leader and takes a write. Prints one line per cluster and a
# summary; exits 1 if any cluster failed, keeping its data directory and logs.
#
#   scripts/formation-soak.sh [CLUSTERS (200)] [--no-load]
#
# Binaries come from ./build or $ASPEN_BUILD_DIR (scripts/build.sh first).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${ASPEN_BUILD_DIR:-build}"
CLUSTERS=200
LOAD=1
for arg in "$@"; do
  case "$arg" in
    --no-load) LOAD=0 ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) if [[ "$arg" =~ ^[0-9]+$ ]] && [ "$arg" -ge 1 ]; then CLUSTERS=$arg; else
         echo "formation-soak.sh: unknown argument $arg (see --help)" >&2; exit 2; fi ;;
  esac
done
for bin in aspen-node aspen-cli; do
  [ -x "$BUILD/$bin" ] || { echo "formation-soak.sh: $BUILD/$bin not found: run scripts/build.sh first" >&2; exit 2; }
done

WORK=$(mktemp -d /tmp/aspen-formation-soak.XXXXXX)
LOAD_PIDS=()
CLUSTER_PID=
stop_all() {
  [ -n "$CLUSTER_PID" ] && kill -TERM "$CLUSTER_PID" 2>/dev/null && wait "$CLUSTER_PID" 2>/dev/null
  for p in "${LOAD_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -f "$WORK/load.bin"
}
trap stop_all EXIT
trap 'exit 130' INT TERM

if [ "$LOAD" = 1 ]; then
  # One process busy on each core, and one writing and syncing 64 MiB at a time.
  for _ in $(seq 1 "$(nproc)"); do (while :; do :; done) & LOAD_PIDS+=($!); done
  (while :; do dd if=/dev/zero of="$WORK/load.bin" bs=1M count=64 conv=fsync status=none; done) &
  LOAD_PIDS+=($!)
fi

# A ticket of a cluster that is gone: formed once, then stopped and deleted. Everything below
# runs with it exported, as in a shell where an operator once pasted it.
stale_dir="$WORK/stale"
scripts/cluster.sh --fresh --data-dir "$stale_dir" --base-port 27901 > "$WORK/stale.log" 2>&1 &
stale_pid=$!
for _ in $(seq 1 300); do grep -q "is running" "$WORK/stale.log" 2>/dev/null && break; sleep 0.2; done
if ! grep -q "is running" "$WORK/stale.log"; then
  echo "formation-soak.sh: the cluster that provides the stale ticket did not form:"; tail -20 "$WORK/stale.log"; exit 1
fi
export ASPEN_TICKET
ASPEN_TICKET=$(cat "$stale_dir/ticket")
kill -TERM "$stale_pid"; wait "$stale_pid" 2>/dev/null || true
rm -rf "$stale_dir"

ok=0
failed=0
times_ms=()
now_ms() { date +%s%3N; }
for i in $(seq 1 "$CLUSTERS"); do
  dir="$WORK/c$i"
  port=$((28001 + (i % 20) * 10))
  started=$(now_ms)
  scripts/cluster.sh --fresh --data-dir "$dir/data" --base-port "$port" > "$dir.log" 2>&1 &
  CLUSTER_PID=$!
  verdict="no leader within 60 s"
  for _ in $(seq 1 600); do
    if grep -q "is running" "$dir.log" 2>/dev/null && [ -s "$dir/data/ticket" ]; then verdict=formed; break; fi
    kill -0 "$CLUSTER_PID" 2>/dev/null || { verdict="cluster.sh exited"; break; }
    sleep 0.1
  done
  if [ "$verdict" = formed ]; then
    # The write goes to this cluster: its ticket on the command line, its operator's key.
    if (set -a; [ -f "$dir/data/cli.env" ] && . "$dir/data/cli.env"; set +a
        "$BUILD/aspen-cli" --ticket "$(cat "$dir/data/ticket")" kv set soak/key "cluster $i") > "$dir.write" 2>&1; then
      verdict=ok
    else
      verdict="the write failed: $(tail -1 "$dir.write")"
    fi
  fi
  elapsed=$(( $(now_ms) - started ))
  kill -TERM "$CLUSTER_PID" 2>/dev/null || true
  wait "$CLUSTER_PID" 2>/dev/null || true
  CLUSTER_PID=
  if [ "$verdict" = ok ]; then
    ok=$((ok + 1)); times_ms+=("$elapsed")
    rm -rf "$dir" "$dir.log" "$dir.write"
  else
    failed=$((failed + 1))
    echo "cluster $i: FAILED: $verdict (kept: $dir, $dir.log)"
  fi
  echo "cluster $i: $verdict in $elapsed ms"
done

sorted=$(printf '%s\n' "${times_ms[@]:-0}" | sort -n)
median=$(echo "$sorted" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
max=$(echo "$sorted" | tail -1)
echo "formation soak: $ok of $CLUSTERS clusters elected a leader and took a write, $failed failed;" \
  "start to first write median $median ms, max $max ms (load: $([ "$LOAD" = 1 ] && echo on || echo off))"
[ "$failed" = 0 ] && rm -rf "$WORK"
[ "$failed" = 0 ]
