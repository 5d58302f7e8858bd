#!/usr/bin/env bash
# Installs what is missing, builds Aspen and runs the whole test suite through ctest.
#   scripts/test.sh              release build + all tests
#   scripts/test.sh --sanitize   the same under AddressSanitizer + UndefinedBehaviorSanitizer
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
build_dir=build
if [ "${1:-}" = "--sanitize" ]; then
  build_dir=build-asan
  scripts/build.sh --sanitize
else
  scripts/build.sh
fi
cd "$build_dir"
# Tests labelled weekly (long runs, scripts/weekly.sh) are left out.
ctest --output-on-failure -j "$(nproc)" --timeout 900 -LE weekly
