# Shared by the A/B benchmark scripts (put-latency-ab.sh, auth-ab.sh): start a fresh local
# 3-node cluster of one checkout and build, and stop it. Source it; not a command.
#
#   ab_start_cluster CHECKOUT BUILD DIR PORT   # sets AB_PID and AB_TICKET; data in DIR/data
#   ab_stop_cluster DIR
ab_start_cluster() {
  local checkout build dir port
  checkout=$(readlink -f "$1"); build=$(readlink -f "$2"); dir=$3; port=$4
  (cd "$checkout" && ASPEN_BUILD_DIR=$build exec scripts/cluster.sh --fresh --data-dir "$dir/data" --base-port "$port") \
    > "$dir/cluster.log" 2>&1 &
  AB_PID=$!
  for _ in $(seq 1 120); do
    grep -q "is running" "$dir/cluster.log" 2>/dev/null && [ -s "$dir/data/ticket" ] && break
    sleep 0.5
  done
  AB_TICKET=$(cat "$dir/data/ticket")
}

ab_stop_cluster() {
  kill -TERM "$AB_PID"
  wait "$AB_PID" 2>/dev/null || true
  rm -rf "$1"
}
