#!/usr/bin/env bash
# Runs the micro-benchmarks (not part of the test suite).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
scripts/build.sh >/dev/null
exec ./build/aspen_bench --benchmark_min_time=2 "$@"
