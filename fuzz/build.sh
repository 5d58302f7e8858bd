#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (the main build uses g++, which has no libFuzzer).
# The targets include only headers that clang's C++ library support can compile (frame.h
# depends on nothing but core/limits.h), so they are built here rather than in CMake.
#   fuzz/build.sh && build-fuzz/frame_decoder_fuzz -max_total_time=60
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$root/build-fuzz}"
mkdir -p "$out"
clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -I"$root" -I"$root/src" \
  "$root/fuzz/frame_decoder_fuzz.cc" "$root/src/transport/frame.cc" -o "$out/frame_decoder_fuzz"
echo "built $out/frame_decoder_fuzz"
