#!/usr/bin/env bash
# aspen-fuse with ordinary tools, each beside a baseline in the same run: starts a local
# cluster (scripts/cluster.sh) and mounts it, then
#   - cp -r of 1,000 files of 4 KiB into the mount (baseline: the same cp to a local directory),
#   - cp -r of them out of a second, freshly started mount (cold caches), and diff -r,
#   - ls of a directory of 10,000 keys on a fresh mount, and ls -l (a stat each; baseline:
#     aspen-cli kv scan --all --keys-only of the same prefix),
# each ROUNDS times; prints every round and the medians. Needs FUSE (root or fusermount3).
#   bench/fuse-load.sh [NODES] [ROUNDS]                   (defaults 3 3)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${ASPEN_BUILD_DIR:-$root/build}"
nodes="${1:-3}" rounds="${2:-3}"
for b in aspen-node aspen-cli aspen-fuse aspen-bench; do
  [ -x "$BUILD/$b" ] || { echo "fuse-load.sh: $BUILD/$b is missing; build it first" >&2; exit 2; }
done
work="$(mktemp -d /tmp/aspen-fuse-load-XXXXXX)"
pids=()
mounts=()
cleanup() {
  for m in "${mounts[@]}"; do
    if grep -q " $m fuse" /proc/mounts; then fusermount3 -u "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; fi
  done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
ASPEN_BUILD_DIR="$BUILD" "$root/scripts/cluster.sh" --nodes "$nodes" --base-port 7801 --data-dir "$work/cluster" --fresh \
  > "$work/cluster.out" 2>&1 &
pids+=($!)
for _ in $(seq 1 600); do [ -s "$work/cluster/ticket" ] && break; sleep 0.1; done
[ -s "$work/cluster/ticket" ] || { echo "the cluster did not start:" >&2; cat "$work/cluster.out" >&2; exit 1; }
set -a; . "$work/cluster/cli.env"; set +a
export ASPEN_TICKET="$(cat "$work/cluster/ticket")"

mount_fresh() {  # directory
  mkdir -p "$1"
  "$BUILD/aspen-fuse" "$1" --prefix fsbench
  mounts+=("$1")
}
unmount() { fusermount3 -u "$1"; }
now() { date +%s.%N; }
rate() { awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN { printf "%.0f", n / (b - a) }'; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

src="$work/src"
mkdir -p "$src"
for i in $(seq 1 1000); do head -c 4096 /dev/urandom > "$src/f$i"; done
# 10,000 keys under one directory, written by aspen-bench's preload.
"$BUILD/aspen-bench" --workload get --key-space 10000 --key-prefix fsbench/ls/k --value-size 16 --duration-s 1 \
  --clients 4 > "$work/preload.out"

declare -a in_rates base_rates out_rates ls_s lsl_s scan_s
for r in $(seq 1 "$rounds"); do
  t0=$(now); cp -r "$src" "$work/local-$r"; t1=$(now)
  base_rates+=("$(rate 1000 "$t0" "$t1")")
  mount_fresh "$work/mnt-in-$r"
  t0=$(now); cp -r "$src" "$work/mnt-in-$r/in-$r"; t1=$(now)
  in_rates+=("$(rate 1000 "$t0" "$t1")")
  unmount "$work/mnt-in-$r"
  mount_fresh "$work/mnt-out-$r"
  t0=$(now); cp -r "$work/mnt-out-$r/in-$r" "$work/out-$r"; t1=$(now)
  out_rates+=("$(rate 1000 "$t0" "$t1")")
  diff -r "$src" "$work/out-$r"
  unmount "$work/mnt-out-$r"
  mount_fresh "$work/mnt-ls-$r"
  t0=$(now); n=$(ls -f "$work/mnt-ls-$r/ls" | grep -c '^k'); t1=$(now)
  ls_s+=("$(secs "$t0" "$t1")")
  [ "$n" = 10000 ] || { echo "ls listed $n entries, not 10000" >&2; exit 1; }
  unmount "$work/mnt-ls-$r"
  mount_fresh "$work/mnt-lsl-$r"
  t0=$(now); ls -l "$work/mnt-lsl-$r/ls" > /dev/null; t1=$(now)
  lsl_s+=("$(secs "$t0" "$t1")")
  unmount "$work/mnt-lsl-$r"
  t0=$(now); n=$("$BUILD/aspen-cli" kv scan fsbench/ls/ --all --keys-only | wc -l); t1=$(now)
  scan_s+=("$(secs "$t0" "$t1")")
  echo "round $r: cp in ${in_rates[-1]} files/s (local dir ${base_rates[-1]} files/s), cp out (cold mount) ${out_rates[-1]} files/s," \
       "ls 10,000 keys ${ls_s[-1]} s, ls -l ${lsl_s[-1]} s (aspen-cli kv scan --all --keys-only ${scan_s[-1]} s, $n keys)"
done
mi=$(median "${in_rates[@]}"); mb=$(median "${base_rates[@]}"); mo=$(median "${out_rates[@]}")
ml=$(median "${ls_s[@]}"); mll=$(median "${lsl_s[@]}"); ms=$(median "${scan_s[@]}")
echo "median: cp in $mi files/s, cp out $mo files/s, local cp $mb files/s; ls $ml s, ls -l $mll s, kv scan $ms s"
awk -v a="$mi" -v b="$mb" -v c="$mo" -v l="$ml" -v s="$ms" \
  'BEGIN { printf "ratios: cp in / local cp = %.3f, cp out / local cp = %.3f, ls / kv scan = %.2f\n", a/b, c/b, l/s }'
