#!/usr/bin/env bash
# What the operators' tools cost on a local 3-node cluster (docs/operations.md "Costs"):
#
#   1. aspen-tui at --refresh 1000 in an 80x24 tmux pane: CPU (% of one core) and memory
#      (peak RSS) over --secs seconds, side by side with the baseline an operator has without
#      it: `aspen-cli cluster status` run once a second (what `watch -n1` does).
#   2. aspen-prometheus-adapter: time for one /metrics scrape of all 3 members (p50, p99 of
#      --scrapes scrapes, as curl sees it) and bytes per scrape (plain, and gzip as Prometheus
#      asks for it), side by side with fetching the 3 pages with `aspen-cli metrics --node N`.
#
#   bench/ops-tools.sh [--secs 60] [--scrapes 100] [--data-dir DIR]
#
# Starts its own cluster (scripts/cluster.sh on ports 17401-17403) unless --data-dir names a
# running one made by cluster.sh. Needs tmux and curl. Binaries from ./build or $ASPEN_BUILD_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${ASPEN_BUILD_DIR:-build}"
SECS=60
SCRAPES=100
DATA=""
while [ $# -gt 0 ]; do
  case "$1" in
    --secs) SECS="$2"; shift 2 ;;
    --scrapes) SCRAPES="$2"; shift 2 ;;
    --data-dir) DATA="$2"; shift 2 ;;
    *) echo "ops-tools.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
for tool in tmux curl; do command -v "$tool" > /dev/null || { echo "ops-tools.sh: needs $tool" >&2; exit 2; }; done

work=$(mktemp -d /tmp/aspen-ops-bench-XXXXXX)
cluster_pid=""
cleanup() {
  tmux -S "$work/tmux.sock" kill-server 2> /dev/null || true
  [ -n "${adapter_pid:-}" ] && kill "$adapter_pid" 2> /dev/null || true
  [ -n "$cluster_pid" ] && kill -INT -- "-$cluster_pid" 2> /dev/null || true
  [ -n "$cluster_pid" ] && wait "$cluster_pid" 2> /dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
if [ -z "$DATA" ]; then
  DATA="$work/cluster"
  setsid scripts/cluster.sh --nodes 3 --base-port 17401 --data-dir "$DATA" --fresh > "$work/cluster.log" 2>&1 &
  cluster_pid=$!
  for _ in $(seq 1 600); do [ -s "$DATA/ticket" ] && [ -f "$DATA/cli.env" ] && break; sleep 0.1; done
fi
[ -s "$DATA/ticket" ] || { echo "ops-tools.sh: no cluster ticket in $DATA" >&2; exit 1; }
set -a; . "$DATA/cli.env"; set +a
ticket=$(cat "$DATA/ticket")
export ASPEN_TICKET="$ticket"

# CPU seconds (user + system) of a process and its children so far, from /proc.
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15 + $16 + $17) / hz}' "/proc/$1/stat"; }
peak_rss_kib() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }

echo "== aspen-tui vs aspen-cli cluster status once a second, ${SECS}s each"
tmux -S "$work/tmux.sock" new-session -d -s tui -x 80 -y 24 \
  "env ASPEN_IDENTITY=$ASPEN_IDENTITY ASPEN_TOKEN_FILE=$ASPEN_TOKEN_FILE $PWD/$BUILD/aspen-tui --refresh 1000 --ticket $ticket"
sleep 2  # let it connect and draw (the measurement window starts after)
tui_pid=$(pgrep -n -f "aspen-tui --refresh 1000")
c0=$(cpu_s "$tui_pid"); t0=$(date +%s.%N)
sleep "$SECS"
c1=$(cpu_s "$tui_pid"); t1=$(date +%s.%N)
tui_cpu=$(echo "($c1 - $c0) / ($t1 - $t0) * 100" | bc -l)
tui_rss=$(peak_rss_kib "$tui_pid")
tmux -S "$work/tmux.sock" kill-server

# The baseline: a fresh aspen-cli process a second, as `watch -n1 aspen-cli cluster status`.
# Its CPU is what the loop's children used (bash's `times`, in ms), over the wall time.
t0=$(date +%s.%N)
children=$(SECS="$SECS" CLI="$BUILD/aspen-cli" bash -c '
  end=$(( $(date +%s) + SECS ))
  while [ "$(date +%s)" -lt "$end" ]; do "$CLI" cluster status > /dev/null; sleep 1; done
  times' | tail -1)
t1=$(date +%s.%N)
base_cpu_s=$(echo "$children" | awk '{ split($1, u, /[ms]/); split($2, s, /[ms]/); print u[1] * 60 + u[2] + s[1] * 60 + s[2] }')
base_cpu=$(echo "$base_cpu_s / ($t1 - $t0) * 100" | bc -l)
base_rss=$( { /usr/bin/time -f "%M" "$BUILD/aspen-cli" cluster status > /dev/null; } 2>&1 | tail -1)
printf "%-40s %8s %12s\n" "" "CPU %" "peak RSS"
printf "%-40s %8.2f %9d KiB\n" "aspen-tui --refresh 1000" "$tui_cpu" "$tui_rss"
printf "%-40s %8.2f %9d KiB\n" "aspen-cli cluster status, 1/s" "$base_cpu" "$base_rss"
printf "%-40s %8.2f %12.2f\n" "ratio tui / cli" "$(echo "$tui_cpu / $base_cpu" | bc -l)" "$(echo "$tui_rss / $base_rss" | bc -l)"

echo
echo "== one scrape of 3 members: aspen-prometheus-adapter vs aspen-cli metrics x3, ${SCRAPES} each"
"$BUILD/aspen-prometheus-adapter" --listen 127.0.0.1:0 > "$work/adapter.out" 2>&1 &
adapter_pid=$!
for _ in $(seq 1 100); do grep -q ASPEN_ADAPTER_READY "$work/adapter.out" && break; sleep 0.1; done
listen=$(sed -n 's/.*listen=\([^ ]*\).*/\1/p' "$work/adapter.out")
curl -s -o /dev/null "http://$listen/metrics"  # connections warm, as they are between scrapes
: > "$work/adapter.times"
for _ in $(seq 1 "$SCRAPES"); do
  curl -s -o /dev/null -w "%{time_total}\n" "http://$listen/metrics" >> "$work/adapter.times"
done
plain=$(curl -s "http://$listen/metrics" | wc -c)
gzipped=$(curl -s -H "Accept-Encoding: gzip" -o "$work/page.gz" -w "%{size_download}" "http://$listen/metrics")
samples=$(curl -s "http://$listen/metrics" | grep -vc "^#")
: > "$work/cli.times"
for _ in $(seq 1 "$SCRAPES"); do
  s=$(date +%s.%N)
  for n in 1 2 3; do "$BUILD/aspen-cli" metrics --node "$n" > /dev/null; done
  e=$(date +%s.%N)
  echo "$e - $s" | bc -l >> "$work/cli.times"
done
pct() { sort -g "$1" | awk -v q="$2" '{a[NR]=$1} END {i=int(NR*q+0.999); if (i<1) i=1; printf "%.1f", a[i]*1000}'; }
printf "%-40s %8s %8s\n" "" "p50 ms" "p99 ms"
printf "%-40s %8s %8s\n" "adapter /metrics (3 members)" "$(pct "$work/adapter.times" 0.5)" "$(pct "$work/adapter.times" 0.99)"
printf "%-40s %8s %8s\n" "aspen-cli metrics --node 1,2,3" "$(pct "$work/cli.times" 0.5)" "$(pct "$work/cli.times" 0.99)"
printf "%-40s %8.2f %8.2f\n" "ratio adapter / cli" \
  "$(echo "$(pct "$work/adapter.times" 0.5) / $(pct "$work/cli.times" 0.5)" | bc -l)" \
  "$(echo "$(pct "$work/adapter.times" 0.99) / $(pct "$work/cli.times" 0.99)" | bc -l)"
echo "bytes per scrape: $plain plain, $gzipped gzip (what Prometheus fetches); $samples samples"
