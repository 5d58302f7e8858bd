#!/usr/bin/env bash
# Where the time of a single-client put goes, on a fresh local 3-node cluster: the client's
# latency next to what each hop costs, from the nodes' own metrics over the same run.
#
#   bench/put-hops.sh [BUILD=build] [SECS=8] [CLIENTS=1]
#
# Prints, per put (means over the run unless marked p50):
#   client put             what aspen-bench saw (p50 and mean)
#   client round trip      a stale get at the leader: client <-> node over QUIC, plus a read
#   leader core            from the put's arrival in the leader's core to its answer
#   leader log write       the leader's log write + fdatasync (runs while followers append)
#   follower log write     the same on the followers
#   apply                  the LMDB transaction applying committed entries (off the put's path)
#   peer round trip        QUIC smoothed RTT between the leader and its followers
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=$(readlink -f "${1:-build}")
SECS=${2:-8}
CLIENTS=${3:-1}
PORT=7951
dir=$(mktemp -d /tmp/aspen-puthops-XXXXXX)
ASPEN_BUILD_DIR=$BUILD scripts/cluster.sh --fresh --data-dir "$dir/data" --base-port $PORT > "$dir/cluster.log" 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 1 120); do
  grep -q "is running" "$dir/cluster.log" 2>/dev/null && [ -s "$dir/data/ticket" ] && break
  sleep 0.5
done
ticket=$(cat "$dir/data/ticket")
if [ -f "$dir/data/cli.env" ]; then set -a; . "$dir/data/cli.env"; set +a; fi  # the key and token cluster.sh made
cli() { env -u ASPEN_TICKET "$BUILD/aspen-cli" --ticket "$ticket" "$@"; }
scrape() { for n in 1 2 3; do cli metrics --node "$n"; done; }
"$BUILD/aspen-bench" --ticket "$ticket" --workload put --clients 1 --duration-s 2 --json > /dev/null  # warm-up
scrape > "$dir/before.txt"
put=$("$BUILD/aspen-bench" --ticket "$ticket" --workload put --clients "$CLIENTS" --duration-s "$SECS" --json)
scrape > "$dir/after.txt"
get=$("$BUILD/aspen-bench" --ticket "$ticket" --workload get-stale --clients 1 --duration-s 3 --no-preload --json)
python3 - "$dir/before.txt" "$dir/after.txt" "$put" "$get" <<'PY'
import json, re, sys
def parse(path):
    vals, rtts = {}, {}
    for line in open(path):
        m = re.match(r'aspen_(\w+)\{node_id="(\d+)"(?:,peer="([^"]+)",alpn="([^"]+)")?\} (\S+)', line)
        if not m:
            continue
        name, node, peer, alpn, v = m.groups()
        if peer:
            rtts.setdefault(int(node), []).append((alpn, float(v)))
        else:
            vals[(int(node), name)] = float(v)
    return vals, rtts
b, _ = parse(sys.argv[1])
a, rtts = parse(sys.argv[2])
put, get = json.loads(sys.argv[3]), json.loads(sys.argv[4])
d = lambda n, k: a.get((n, k), 0) - b.get((n, k), 0)
leader = next(n for n in (1, 2, 3) if a.get((n, "raft_is_leader")) == 1)
followers = [n for n in (1, 2, 3) if n != leader]
def per(n, total, count):
    # total: a histogram's _sum in seconds; the result is in microseconds.
    c = d(n, count)
    return d(n, total) * 1e6 / c if c else float("nan")
puts = d(leader, "core_writes_answered_total")
print(f"puts measured: {puts:.0f} ({put['ops_per_s']:.0f}/s), leader node {leader}")
print(f"client put             p50 {put['latency_ms']['p50']*1000:7.0f} us   mean {put['latency_ms'].get('mean', float('nan'))*1000:7.0f} us")
print(f"client round trip      p50 {get['latency_ms']['p50']*1000:7.0f} us   (stale get at the leader)")
print(f"leader core                  mean {per(leader, 'raft_write_commit_duration_seconds_sum', 'raft_write_commit_duration_seconds_count'):7.0f} us   (arrival to answer)")
print(f"leader log write             mean {per(leader, 'storage_log_write_duration_seconds_sum', 'storage_log_write_duration_seconds_count'):7.0f} us   "
      f"({d(leader, 'storage_log_writes_total') / max(puts, 1):.2f} per put, "
      f"{d(leader, 'storage_entries_written_total') / max(d(leader, 'storage_log_writes_total'), 1):.1f} entries per write)")
for n in (1, 2, 3):
    busy = d(n, 'storage_batch_duration_seconds_sum')
    print(f"node {n} storage thread busy  {busy / max(puts / put['ops_per_s'], 1e-9) * 100:5.1f} % of the run")
for f in followers:
    print(f"follower {f} log write         mean {per(f, 'storage_log_write_duration_seconds_sum', 'storage_log_write_duration_seconds_count'):7.0f} us   "
          f"({d(f, 'storage_log_writes_total') / max(puts, 1):.2f} per put)")
print(f"leader apply                 mean {per(leader, 'storage_apply_duration_seconds_sum', 'storage_apply_duration_seconds_count'):7.0f} us   "
      f"({d(leader, 'storage_applies_total') / max(puts, 1):.2f} per put, off the put's path)")
for alpn, s in rtts.get(leader, []):
    print(f"peer round trip ({alpn})  {s * 1e6:7.0f} us")
PY
