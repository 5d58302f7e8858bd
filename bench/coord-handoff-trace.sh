#!/usr/bin/env bash
# What one contended hand-off costs the machine: on a fresh local 3-node cluster of this
# checkout, 16 clients on one lock (aspen-bench --workload lock --contended), and while they
# run, TRACE_SECS of kernel tracepoints over every process (perf record -a): fdatasync calls
# (by thread: the log's "storage", the state machine's "apply"), UDP datagrams sent, and
# context switches. Prints each per lock cycle. Needs root and perf (linux-perf).
#
#   bench/coord-handoff-trace.sh [WORKLOAD (lock)] [TRACE_SECS (0.5)]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${ASPEN_BUILD_DIR:-$here/build}
workload=${1:-lock}
trace_secs=${2:-0.5}
command -v perf >/dev/null || { echo "coord-handoff-trace: needs perf (Debian package linux-perf)" >&2; exit 77; }
source "$here/bench/ab-lib.sh"
dir=$(mktemp -d /tmp/aspen-handoff-trace.XXXXXX)
ab_start_cluster "$here" "$build" "$dir" 27400
trap 'ab_stop_cluster "$dir"' EXIT
set -a; . "$dir/data/cli.env"; set +a
"$build/aspen-bench" --ticket "$AB_TICKET" --workload "$workload" --contended --clients 16 --duration-s 6 \
  --key-prefix bench/trace/ --json > "$dir/bench.json" &
bench_pid=$!
sleep 2
perf record -a -q -o "$dir/perf.data" -e sched:sched_switch -e syscalls:sys_enter_fdatasync \
  -e syscalls:sys_enter_sendto -e syscalls:sys_enter_sendmmsg -- sleep "$trace_secs" >/dev/null 2>&1
wait "$bench_pid"
perf script -i "$dir/perf.data" -F comm,pid,event > "$dir/events.txt" 2>/dev/null
python3 - "$dir/bench.json" "$dir/events.txt" "$trace_secs" "$workload" <<'PY'
import collections, json, sys
ops_per_s = json.load(open(sys.argv[1]))["ops_per_s"]
cycles = ops_per_s * float(sys.argv[3])
count = collections.Counter()
for line in open(sys.argv[2]):
    f = line.split()
    if len(f) < 3:
        continue
    comm, event = f[0], f[-1].rstrip(":")
    if event.endswith("sys_enter_fdatasync"):
        count["fdatasync, log (storage threads)" if comm == "storage" else
              "fdatasync, state machine (apply threads)" if comm == "apply" else "fdatasync, other"] += 1
    elif event.endswith("sys_enter_sendto") or event.endswith("sys_enter_sendmmsg"):
        count["UDP sends, nodes" if comm == "aspen-node" else "UDP sends, benchmark client" if comm == "aspen-bench"
              else "UDP sends, other"] += 1
    elif event.endswith("sched_switch"):
        count["context switches"] += 1
print("%s, 16 clients: %.0f cycles/s; per cycle, over %.0f cycles traced:" % (sys.argv[4], ops_per_s, cycles))
for k in sorted(count):
    print("  %-42s %6.2f" % (k, count[k] / cycles))
PY
