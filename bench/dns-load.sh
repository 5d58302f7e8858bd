#!/usr/bin/env bash
# aspen-dns under load, cached and uncached side by side: starts a local cluster
# (scripts/cluster.sh), creates a zone with A records, a wildcard and a missing name, starts
# two aspen-dns on it (default cache, and --cache-ttl-ms 0 --no-watch: every query reads the
# store), then runs aspen-dns-bench against each in alternating rounds and prints each round
# and the ratio of the medians.
#   bench/dns-load.sh [NODES] [ROUNDS] [SECONDS] [CONCURRENCY]      (defaults 3 3 5 16)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${ASPEN_BUILD_DIR:-$root/build}"
nodes="${1:-3}" rounds="${2:-3}" seconds="${3:-5}" conc="${4:-16}"
for b in aspen-node aspen-cli aspen-dns aspen-dns-bench; do
  [ -x "$BUILD/$b" ] || { echo "dns-load.sh: $BUILD/$b is missing; build it first" >&2; exit 2; }
done
work="$(mktemp -d /tmp/aspen-dns-load-XXXXXX)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
ASPEN_BUILD_DIR="$BUILD" "$root/scripts/cluster.sh" --nodes "$nodes" --base-port 7701 --data-dir "$work/cluster" --fresh \
  > "$work/cluster.out" 2>&1 &
pids+=($!)
for _ in $(seq 1 600); do [ -s "$work/cluster/ticket" ] && break; sleep 0.1; done
[ -s "$work/cluster/ticket" ] || { echo "the cluster did not start:" >&2; cat "$work/cluster.out" >&2; exit 1; }
set -a; . "$work/cluster/cli.env"; set +a
export ASPEN_TICKET="$(cat "$work/cluster/ticket")"
cli="$BUILD/aspen-cli"
"$cli" dns zone create bench.test. > /dev/null
names=()
for i in $(seq 1 20); do
  "$cli" dns set "host$i.bench.test." A "192.0.2.$i" > /dev/null
  names+=("host$i.bench.test.")
done
"$cli" dns set '*.svc.bench.test.' A 192.0.2.200 > /dev/null
names+=("api.svc.bench.test." "missing.bench.test.")
start_dns() {  # port, extra flags
  "$BUILD/aspen-dns" --listen "127.0.0.1:$1" "${@:2}" > "$work/dns-$1.out" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do grep -q ASPEN_DNS_READY "$work/dns-$1.out" && return 0; sleep 0.1; done
  echo "aspen-dns on $1 did not start" >&2; cat "$work/dns-$1.out" >&2; exit 1
}
start_dns 5491
start_dns 5492 --cache-ttl-ms 0 --no-watch
echo "nodes=$nodes rounds=$rounds seconds=$seconds concurrency=$conc names=${#names[@]} (20 A, 1 wildcard, 1 NXDOMAIN)"
declare -a cq up cp99 up99
for r in $(seq 1 "$rounds"); do
  for mode in cached uncached; do
    port=5491; [ "$mode" = uncached ] && port=5492
    out=$("$BUILD/aspen-dns-bench" --server "127.0.0.1:$port" --concurrency "$conc" --duration-s "$seconds" "${names[@]}")
    echo "round $r $mode: $out"
    qps=$(echo "$out" | grep -o 'qps=[0-9]*' | cut -d= -f2); p99=$(echo "$out" | grep -o 'p99_us=[0-9]*' | cut -d= -f2)
    if [ "$mode" = cached ]; then cq+=("$qps"); cp99+=("$p99"); else up+=("$qps"); up99+=("$p99"); fi
  done
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mc=$(median "${cq[@]}"); mu=$(median "${up[@]}"); pc=$(median "${cp99[@]}"); pu=$(median "${up99[@]}")
echo "median cached:   qps=$mc p99_us=$pc"
echo "median uncached: qps=$mu p99_us=$pu"
awk -v a="$mc" -v b="$mu" -v c="$pc" -v d="$pu" 'BEGIN { printf "cached/uncached: qps x%.1f, p99 x%.2f\n", a/b, c/d }'
