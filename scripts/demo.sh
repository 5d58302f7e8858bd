#!/usr/bin/env bash
# Installs what is missing, builds Aspen and runs its main job: a local 3-node cluster on
# 127.0.0.1 with a short demonstration (writes, reads, scans, compare-and-swap, a lease, then
# a kill -9 of the leader, the first write after it, and the crashed node catching up).
# The cluster is stopped at the end; `scripts/cluster.sh` keeps one running instead.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
echo
echo "== Aspen: a local 3-node cluster =="
scripts/cluster.sh --fresh --demo --data-dir ./data/demo
echo
echo "Keep a cluster running with:  scripts/cluster.sh   (Ctrl+C stops it)"
