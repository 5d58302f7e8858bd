#!/usr/bin/env python3
"""Runs one aspen-bench command (its --json output) against a local cluster started by
scripts/cluster.sh and prints one line: throughput, latency, and the CPU time (user + system)
per operation spent by the cluster's nodes together, by the busiest node, and by the
benchmark process itself.

    cpu-per-op.py DATA_DIR ROUND TAG WORKLOAD -- aspen-bench ARGS... --json

DATA_DIR is the cluster's data directory (it holds node-N.pid). Used by coord-contended-ab.sh.
"""
import glob, json, os, resource, subprocess, sys

def node_cpu_s(pids):
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            out[pid] = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
        except (OSError, IndexError, ValueError):
            out[pid] = 0.0
    return out

def main():
    sep = sys.argv.index("--")
    data, rnd, tag, workload = sys.argv[1:sep]
    cmd = sys.argv[sep + 1:]
    pids = []
    for p in sorted(glob.glob(os.path.join(data, "node-*.pid"))):
        with open(p) as f:
            pids.append(int(f.read().strip()))
    before = node_cpu_s(pids)
    child_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    child_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    after = node_cpu_s(pids)
    j = json.loads(out)
    ops = max(1, j.get("ops", round(j["ops_per_s"] * j.get("duration_s", 1))))
    per_node = [(after[p] - before[p]) * 1000 / ops for p in pids]
    client = ((child_after.ru_utime + child_after.ru_stime) - (child_before.ru_utime + child_before.ru_stime)) * 1000 / ops
    l = j["latency_ms"]
    print("round %s %s %-10s %8.0f ops/s  p50 %.1f ms  p99 %.1f ms  errors %s  cpu/op nodes %.3f max %.3f client %.3f ms"
          % (rnd, tag, workload, j["ops_per_s"], l["p50"], l["p99"], j.get("errors", 0),
             sum(per_node), max(per_node, default=0.0), client))

main()
