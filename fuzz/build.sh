#!/usr/bin/env bash
# Builds the coverage-guided fuzz targets: clang 16 with libFuzzer, AddressSanitizer and
# UndefinedBehaviorSanitizer, one binary per target of fuzz/harness (build-fuzz/aspen-fuzz-*).
# Installs Debian's clang-16 and libFuzzer first if they are missing. The main build (g++)
# and the suite's replay of every corpus do not need any of this.
#   fuzz/build.sh [BUILD_DIR]      then   fuzz/run.sh MINUTES
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$root/build-fuzz}"
bash "$root/scripts/setup.sh"
need=()
for p in clang-16 libfuzzer-16-dev libclang-rt-16-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "fuzz/build.sh: installing ${need[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
cmake -S "$root" -B "$out" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++-16 \
  -DASPEN_FUZZ=ON -DASPEN_BUILD_BENCH=OFF -DASPEN_BUILD_TESTS=ON >/dev/null
targets=$(ninja -C "$out" -t targets all | sed -n 's/^\(aspen-fuzz-[a-z_]*\): CXX_EXECUTABLE_LINKER.*/\1/p')
# shellcheck disable=SC2086
ninja -C "$out" $targets
echo "built: $targets"
