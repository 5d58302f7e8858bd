#!/usr/bin/env bash
# Installs what is missing, builds Aspen and runs its main job.
#
# Today the main job is the deterministic cluster simulator: it runs Raft clusters of 1-5
# nodes through crashes, partitions, message loss, membership changes and leadership
# transfers, checks every safety invariant after each event and the client history for
# linearizability, and prints a summary per seed. (When aspen-node lands, this script will
# start a local 3-node cluster instead.)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
echo
echo "== Aspen simulator: 20 seeds, every fault enabled =="
./build/aspen-sim --seeds 1:20
echo
echo "Replay any seed exactly with:  ./build/aspen-sim --seed N --verbose"
