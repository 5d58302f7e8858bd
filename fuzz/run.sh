#!/usr/bin/env bash
# Runs every fuzz target for MINUTES minutes each (one after another, or JOBS at a time),
# from its seeds and the committed corpus, and reports per target: executions, coverage
# (libFuzzer's cov = edges reached, ft = features), corpus size, and crashes. New inputs go
# to build-fuzz/corpus/<target>/; a crash leaves build-fuzz/crash-* and fails the run.
#   fuzz/run.sh MINUTES [JOBS] [TARGET...]
# Afterwards, `fuzz/run.sh --merge` minimizes each run corpus into fuzz/corpus/<target>/
# (which the suite replays on every run) for committing.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/build-fuzz"
if [ "${1:-}" = "--merge" ]; then
  for bin in "$out"/aspen-fuzz-*; do
    t="${bin##*/aspen-fuzz-}"
    [ -d "$out/corpus/$t" ] || continue
    mkdir -p "$root/fuzz/corpus/$t"
    "$bin" -merge=1 -max_len=65536 "$root/fuzz/corpus/$t" "$out/corpus/$t" 2>&1 | tail -1
  done
  exit 0
fi
minutes="${1:?usage: fuzz/run.sh MINUTES [JOBS] [TARGET...]}"
jobs="${2:-1}"
shift $(( $# >= 2 ? 2 : 1 ))
[ -x "$out/aspen-fuzz-raft_step" ] || bash "$root/fuzz/build.sh" "$out"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for bin in "$out"/aspen-fuzz-*; do targets+=("${bin##*/aspen-fuzz-}"); done
fi
run_one() {
  local t="$1" log="$out/fuzz-$1.log"
  mkdir -p "$out/corpus/$t" "$out/seeds/$t"
  local dirs=("$out/corpus/$t" "$out/seeds/$t")
  [ -d "$root/fuzz/corpus/$t" ] && dirs+=("$root/fuzz/corpus/$t")
  (cd "$out" && ASPEN_FUZZ_SEED_DIR="$out/seeds/$t" "$out/aspen-fuzz-$t" -max_total_time=$((minutes * 60)) \
     -max_len=65536 -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 "${dirs[@]}" >"$log" 2>&1) || true
}
running=0
for t in "${targets[@]}"; do
  run_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then wait -n || true; running=$((running - 1)); fi
done
wait || true
status=0
printf '%-18s %12s %8s %8s %8s %s\n' target executions cov ft corpus result
for t in "${targets[@]}"; do
  log="$out/fuzz-$t.log"
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  last=$(grep -E '^#[0-9]+' "$log" | tail -1)
  cov=$(echo "$last" | grep -o 'cov: [0-9]*' | grep -o '[0-9]*' || echo "?")
  ft=$(echo "$last" | grep -o 'ft: [0-9]*' | grep -o '[0-9]*' || echo "?")
  corp=$(echo "$last" | grep -o 'corp: [0-9]*' | grep -o '[0-9]*' || echo "?")
  if grep -qE '^==[0-9]+== ?ERROR: |^SUMMARY: (libFuzzer|AddressSanitizer|UndefinedBehaviorSanitizer)|runtime error: |fuzz property broken' "$log"; then
    result="CRASH (see $log)"; status=1
  else
    result="ok"
  fi
  printf '%-18s %12s %8s %8s %8s %s\n' "$t" "$execs" "$cov" "$ft" "$corp" "$result"
done
exit $status
