#!/usr/bin/env bash
# The long simulator soak (not part of the test suite): 100,000 seeds by default.
#   scripts/soak.sh [FIRST:LAST] [extra aspen-sim flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
range="${1:-1:100000}"
shift || true
scripts/build.sh >/dev/null
exec ./build/aspen-sim --seeds "$range" --quiet "$@"
