#!/usr/bin/env bash
# The long checks kept out of the suite's 30 minutes (ctest label "weekly"): today the
# simulator's Figure 8 catch rate over 2,000 seeds through the mutation suite. Builds first.
#   scripts/weekly.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
cd build
ctest --output-on-failure --timeout 7200 -L weekly
