#!/usr/bin/env bash
# Configures and builds Aspen with CMake + Ninja into build/ (or $ASPEN_BUILD_DIR).
#   scripts/build.sh               release build with tests and benchmarks
#   scripts/build.sh --sanitize    AddressSanitizer + UndefinedBehaviorSanitizer build in build-asan/
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir="${ASPEN_BUILD_DIR:-build}"
extra=()
if [ "${1:-}" = "--sanitize" ]; then
  build_dir="${ASPEN_BUILD_DIR:-build-asan}"
  extra+=(-DASPEN_SANITIZE=ON -DASPEN_BUILD_BENCH=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo)
fi
jobs="${ASPEN_JOBS:-$(nproc)}"
cmake -S . -B "$build_dir" -G Ninja "${extra[@]}" >/dev/null
ninja -C "$build_dir" -j "$jobs"
echo "build: $build_dir is up to date"
