#!/usr/bin/env bash
# Jepsen-style chaos run against real aspen-node processes (docs/reliability.md).
#
#   scripts/chaos.sh --duration 90s --seed N [--nemesis partition,kill,pause,netem,disk,member,clock]
#                    [--overlap] [--nodes 3] [--clients 4] [--keys 8] [--run-dir DIR]
#                    [--coord lock,counter,queue|none] [--coord-clients 3] [--stale-reads]
#   scripts/chaos.sh --cleanup        remove what crashed runs left (namespaces, links, nodes,
#                                     mounted disks, cgroups)
#
# Builds N network namespaces joined by a bridge (scripts/chaos/lib.sh), gives each node's
# data directory a small ext4 filesystem of its own (a loop-mounted image), starts one
# aspen-node in each namespace and forms the cluster, runs aspen-chaos-client's concurrent
# workload from a namespace of its own while a seeded nemesis injects faults (each logged
# with its wall-clock time), then heals everything and checks: the history is linearizable
# (aspen-lincheck, with a final read of every key so that a lost acknowledged write shows),
# every member converges (same applied index, same digest of the key space), the cluster
# takes writes again, and no node died unless the nemesis killed it.
#
# Nemeses (default: all of them, in a seeded order; one fault at a time unless --overlap):
#   partition  majority/minority split, isolated leader, one-way (a node stops hearing
#              another), bridge (one node sees both halves); nftables inside namespaces
#   kill       kill -9 of the leader or a random node (the fresh node too, while there is
#              one), restart after a few seconds
#   pause      SIGSTOP of the leader or a random node (the fresh node too) for longer than
#              the election timeout, then SIGCONT
#   netem      delay with jitter, loss, duplication and reordering (tc netem) on one or
#              every node; where the kernel has no netem, random loss (nftables) and a
#              rate limit (tc tbf) instead, and the timeline says so
#   disk       a full disk (the node's filesystem filled; the storage alarm refuses writes;
#              healed by removing the file and disarming the alarm) or a slow disk (the
#              node's writes throttled to a few IO/s with the blkio cgroup)
#   member     a voter removed and added back as a learner, or demoted to a learner, then
#              promoted again (aspen-cli cluster remove/add-learner/change-membership); or a
#              brand-new node (new id, data directory and key) started in a spare namespace,
#              added as a learner and promoted; a later member round removes and stops it
#   clock      a node's clock jumps (+-2 s or +-30 s), every node's clock jumps by its own
#              amount, or a node's clock drifts (50-500 ms per second, either way); through
#              aspen-node --test-clock-offset-file, a file per node in the run directory
#              rewritten while it runs; healed by putting every offset back to 0
# --overlap: half of the rounds start two faults of different classes (network, process,
#   disk, membership, clock) at once, e.g. a partition while the leader is paused.
#
# Beside the KV workload, --coord-clients clients (default 3) run the coordination
# workloads named by --coord (default lock,counter,queue; none: off): a lock with fencing
# tokens, a counter, a queue. After healing the counter is read, the queue drained, and
# their history (coord.txt) checked: no two holders at once, tokens increasing, the exact
# counter value with no value returned twice, no message lost or delivered after its ack.
#
# --stale-reads makes the clients read any one member without ReadIndex: not linearizable,
# so the verdict should be FAIL once faults leave a member behind (the checker's own test).
#
# Everything stays in the run directory (default ./data/chaos/<time>-seed<N>): timeline,
# history, checker output, node logs, the disk images with the nodes' data. The same seed
# gives the same schedule of fault kinds, nodes and durations (only which node leads at a
# moment depends on the run).
#
# Exit codes: 0 no violation, 1 a violation (the verdict says which), 2 inconclusive or the
# harness failed (cluster never formed, checker budget exhausted), 64 bad usage, 77 cannot
# run on this machine (not root, no network namespaces; the reason is printed).
set -uo pipefail
# The whole script is one group, read before it runs: a long run is not disturbed by an edit
# of this file (bash otherwise reads a script as it goes).
{

cd "$(dirname "$0")/.." || exit 2
ROOT=$(pwd)
# shellcheck source=chaos/lib.sh
source "$ROOT/scripts/chaos/lib.sh"

EXIT_VIOLATION=1
EXIT_HARNESS=2
EXIT_USAGE=64
EXIT_SKIP=77

BUILD="${ASPEN_BUILD_DIR:-build}"
DURATION_S=90
SEED=1
NEMESES=partition,kill,pause,netem,disk,member,clock
OVERLAP=0
COORD=lock,counter,queue
COORD_CLIENTS=3
CHAOS_NODES=3
CLIENTS=4
KEYS=8
RUN_DIR=""
WORKLOAD_FLAGS=()
HEARTBEAT_MS=100
ELECTION_TIMEOUT_MS=1000

usage() { sed -n '2,58p' "$0" | sed 's/^# \{0,1\}//'; }

parse_duration() {
  local d="$1"
  case "$d" in
    *h) echo $(( ${d%h} * 3600 )) ;;
    *m) echo $(( ${d%m} * 60 )) ;;
    *s) echo "${d%s}" ;;
    *) echo "$d" ;;
  esac
}

while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION_S=$(parse_duration "$2"); shift 2 ;;
    --seed) SEED="$2"; shift 2 ;;
    --nemesis) NEMESES="$2"; shift 2 ;;
    --nodes) CHAOS_NODES="$2"; shift 2 ;;
    --clients) CLIENTS="$2"; shift 2 ;;
    --keys) KEYS="$2"; shift 2 ;;
    --run-dir) RUN_DIR="$2"; shift 2 ;;
    --stale-reads) WORKLOAD_FLAGS+=(--stale-reads); shift ;;
    --overlap) OVERLAP=1; shift ;;
    --coord) COORD="$2"; shift 2 ;;
    --coord-clients) COORD_CLIENTS="$2"; shift 2 ;;
    --build-dir) BUILD="$2"; shift 2 ;;
    --cleanup)
      if [ "$(id -u)" != 0 ]; then echo "chaos: --cleanup needs root" >&2; exit $EXIT_SKIP; fi
      chaos_cleanup_stale --all; echo "chaos: clean"; exit 0 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "chaos: unknown option $1 (see --help)" >&2; exit $EXIT_USAGE ;;
  esac
done
for v in DURATION_S SEED CHAOS_NODES CLIENTS KEYS COORD_CLIENTS; do
  if ! [[ "${!v}" =~ ^[0-9]+$ ]]; then echo "chaos: bad number for $v: ${!v}" >&2; exit $EXIT_USAGE; fi
done
if [ "$CHAOS_NODES" -lt 3 ] || [ "$CHAOS_NODES" -gt 9 ]; then echo "chaos: --nodes must be 3..9" >&2; exit $EXIT_USAGE; fi
if [ "$DURATION_S" -lt 10 ]; then echo "chaos: --duration must be at least 10s" >&2; exit $EXIT_USAGE; fi
if [ "$COORD" != none ]; then
  IFS=, read -r -a kinds <<< "$COORD"
  for k in "${kinds[@]}"; do
    case "$k" in lock|counter|queue) ;; *) echo "chaos: unknown coordination workload '$k' (lock, counter, queue, or none)" >&2; exit $EXIT_USAGE ;; esac
  done
  if [ "$COORD_CLIENTS" -lt 1 ]; then echo "chaos: --coord-clients must be at least 1" >&2; exit $EXIT_USAGE; fi
fi
IFS=, read -r -a NEMESIS_LIST <<< "$NEMESES"
for n in "${NEMESIS_LIST[@]}"; do
  case "$n" in partition|kill|pause|netem|disk|member|clock) ;; *) echo "chaos: unknown nemesis '$n'" >&2; exit $EXIT_USAGE ;; esac
done

for b in aspen-node aspen-cli aspen-chaos-client aspen-lincheck; do
  if [ ! -x "$BUILD/$b" ]; then echo "chaos: $BUILD/$b not found; build it first" >&2; exit $EXIT_HARNESS; fi
done
BUILD=$(cd "$BUILD" && pwd)

if ! reason=$(chaos_unsupported_reason); then
  echo "chaos: SKIPPED: $reason"
  exit $EXIT_SKIP
fi
# Each node's data directory on a filesystem of its own, when the machine allows it; the
# disk nemesis needs it.
HAS_DISKS=1
if ! disk_reason=$(chaos_disk_unsupported_reason); then
  HAS_DISKS=0
  if [[ ",$NEMESES," == *,disk,* ]]; then echo "chaos: SKIPPED: the disk nemesis needs per-node disks: $disk_reason"; exit $EXIT_SKIP; fi
fi
HAS_SLOW_DISK=0
slow_reason=$(chaos_slow_disk_unsupported_reason) && HAS_SLOW_DISK=1

# --- the run's hosts ---------------------------------------------------------------------
mkdir -p "$CHAOS_STATE_DIR"
chaos_cleanup_stale
CHAOS_RID=$(printf '%04x' $(( (RANDOM << 1 ^ $$) & 0xffff )))
while [ -e "$CHAOS_STATE_DIR/$CHAOS_RID.state" ]; do CHAOS_RID=$(printf '%04x' $(( RANDOM & 0xffff ))); done
CHAOS_STATE="$CHAOS_STATE_DIR/$CHAOS_RID.state"
[ -n "$RUN_DIR" ] || RUN_DIR="$ROOT/data/chaos/$(date -u +%Y%m%dT%H%M%S)-seed$SEED"
# A directory an earlier run left (the suite reuses one) starts empty: old node data would
# make a different cluster. Anything else that is not empty is refused.
if [ -f "$RUN_DIR/timeline.log" ]; then
  rm -rf "$RUN_DIR"
elif [ -d "$RUN_DIR" ] && [ -n "$(ls -A "$RUN_DIR")" ]; then
  echo "chaos: $RUN_DIR is not empty and not a chaos run directory" >&2; exit $EXIT_USAGE
fi
mkdir -p "$RUN_DIR"
RUN_DIR=$(cd "$RUN_DIR" && pwd)
chmod 700 "$RUN_DIR"
echo "owner $$" > "$CHAOS_STATE"
chaos_record rundir "$RUN_DIR"
# The binaries this run uses, copied: a rebuild in the middle of a run (the build directory
# is shared) must not change what a restarted node runs, and the run stays reproducible.
mkdir -p "$RUN_DIR/bin"
for b in aspen-node aspen-cli aspen-chaos-client aspen-lincheck; do
  cp "$BUILD/$b" "$RUN_DIR/bin/$b" || exit $EXIT_HARNESS
done
BUILD="$RUN_DIR/bin"
TIMELINE="$RUN_DIR/timeline.log"
HISTORY="$RUN_DIR/history.txt"
: > "$TIMELINE"
: > "$HISTORY"

WORKLOAD_PID=""
finish() {
  trap - INT TERM EXIT
  [ -n "${SKEW_PID:-}" ] && kill -TERM "$SKEW_PID" 2> /dev/null
  [ -n "$WORKLOAD_PID" ] && kill -TERM "$WORKLOAD_PID" 2> /dev/null
  [ -n "${COORD_PID:-}" ] && kill -TERM "$COORD_PID" 2> /dev/null
  # Not our jobs any more: bash would report each node killed below as "Killed".
  disown -a 2> /dev/null
  chaos_cleanup_state "$CHAOS_STATE"
}
trap finish EXIT
trap 'echo; echo "chaos: interrupted, cleaning up"; exit 130' INT TERM

T0=$(date +%s%N)
log() {
  local line
  line=$(printf '%s +%6.1fs  %s' "$(chaos_ts)" "$(( ($(date +%s%N) - T0) / 1000000 ))e-3" "$*")
  echo "$line" | tee -a "$TIMELINE"
}

in_client() {
  chaos_in_ns "$(chaos_client_ns)" env ASPEN_IDENTITY="$RUN_DIR/identity.key" ASPEN_TOKEN_FILE="$RUN_DIR/token" \
    ASPEN_TICKET="${ASPEN_TICKET:-}" "$@"
}

declare -A NODE_PID=()
declare -A NODE_DOWN=()   # killed by the nemesis and not yet restarted
# Node i's test clock offset (aspen-node --test-clock-offset-file): outside its disk image,
# so that a full disk does not stop the clock nemesis. Written whole (a rename), so the node
# never reads half a number.
clock_file() { echo "$RUN_DIR/clock-$1"; }
set_clock() {
  printf '%s\n' "$2" > "$(clock_file "$1").tmp" && mv -f "$(clock_file "$1").tmp" "$(clock_file "$1")"
}
start_node() {
  local i=$1
  [ -f "$(clock_file "$i")" ] || set_clock "$i" 0
  (chaos_exec_in_ns "$(chaos_node_ns "$i")" "$BUILD/aspen-node" --node-id "$i" --cookie-file "$RUN_DIR/cookie" \
    --data-dir "$RUN_DIR/node-$i" --bind "$(chaos_node_ip "$i"):$CHAOS_PORT" --ticket-file "$RUN_DIR/node-$i.ticket" \
    --heartbeat-ms "$HEARTBEAT_MS" --election-timeout-ms "$ELECTION_TIMEOUT_MS" \
    --test-clock-offset-file "$(clock_file "$i")") >> "$RUN_DIR/node-$i.log" 2>&1 &
  NODE_PID[$i]=$!
  chaos_record pid "$!"
  chaos_disk_adopt "$i" "$!"
  unset "NODE_DOWN[$i]"
}

wait_for_line() {
  local file="$1" prefix="$2" _
  for _ in $(seq 1 300); do
    grep -q "^$prefix" "$file" 2> /dev/null && return 0
    sleep 0.05
  done
  return 1
}

log "run $CHAOS_RID: $CHAOS_NODES nodes, $CLIENTS clients, $KEYS keys, ${DURATION_S}s, seed $SEED, nemesis $NEMESES"
log "run directory $RUN_DIR"
# The member nemesis starts brand-new nodes in a spare namespace.
CHAOS_SPARES=0
[[ ",$NEMESES," == *,member,* ]] && CHAOS_SPARES=1
SPARE_IDX=$(( CHAOS_NODES + 1 ))
if ! chaos_net_up; then log "could not build the namespaces"; exit $EXIT_HARNESS; fi
HAS_NETEM=0
chaos_has_netem && HAS_NETEM=1
if [ "$HAS_DISKS" = 1 ]; then
  for i in $(seq 1 "$CHAOS_NODES"); do
    if ! chaos_disk_up "$i" "$RUN_DIR" > "$RUN_DIR/disks.log" 2>&1; then
      log "could not make node $i's disk:"; cat "$RUN_DIR/disks.log"; exit $EXIT_HARNESS
    fi
  done
  log "disks: each node's data on its own ${CHAOS_DISK_MB} MiB ext4 image; slow disk: $(
    [ "$HAS_SLOW_DISK" = 1 ] && echo "blkio write throttle" || echo "unavailable ($slow_reason)")"
else
  log "disks: data directories on the run directory's filesystem ($disk_reason)"
fi
(umask 077; head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$RUN_DIR/cookie")
for i in $(seq 1 "$CHAOS_NODES"); do start_node "$i"; done
for i in $(seq 1 "$CHAOS_NODES"); do
  if ! wait_for_line "$RUN_DIR/node-$i.log" ASPEN_TICKET; then
    log "node $i did not start:"; tail -20 "$RUN_DIR/node-$i.log"; exit $EXIT_HARNESS
  fi
done
key_of() { grep -o 'public_key=[a-z0-9]*' "$RUN_DIR/node-$1.log" | head -1 | cut -d= -f2; }
ASPEN_TICKET=$(cat "$RUN_DIR/node-1.ticket")
form() {
  in_client "$BUILD/aspen-cli" cluster init --root-key-file "$RUN_DIR/root.key" > /dev/null || return 1
  local voters=(1) i
  for i in $(seq 2 "$CHAOS_NODES"); do
    in_client "$BUILD/aspen-cli" cluster add-learner "$i" "$(key_of "$i")" "$(chaos_node_ip "$i"):$CHAOS_PORT" > /dev/null ||
      return 1
    voters+=("$i")
  done
  in_client "$BUILD/aspen-cli" cluster change-membership "${voters[@]}" > /dev/null
}
if ! form > "$RUN_DIR/form.log" 2>&1; then log "forming the cluster failed:"; cat "$RUN_DIR/form.log"; exit $EXIT_HARNESS; fi
ASPEN_TICKET=$(in_client "$BUILD/aspen-cli" cluster ticket)
export ASPEN_TICKET
echo "$ASPEN_TICKET" > "$RUN_DIR/ticket"
log "cluster formed: $(in_client "$BUILD/aspen-cli" cluster status | head -1)"

# --- workload and nemesis ----------------------------------------------------------------
in_client "$BUILD/aspen-chaos-client" run --clients "$CLIENTS" --keys "$KEYS" --duration-s "$DURATION_S" \
  --seed "$SEED" --history "$HISTORY" "${WORKLOAD_FLAGS[@]}" > "$RUN_DIR/workload.log" 2>&1 &
WORKLOAD_PID=$!
chaos_record pid "$WORKLOAD_PID"
COORD_HISTORY="$RUN_DIR/coord.txt"
COORD_PID=""
if [ "$COORD" != none ]; then
  : > "$COORD_HISTORY"
  in_client "$BUILD/aspen-chaos-client" coord --clients "$COORD_CLIENTS" --kinds "$COORD" --duration-s "$DURATION_S" \
    --seed "$SEED" --history "$COORD_HISTORY" > "$RUN_DIR/coord.log" 2>&1 &
  COORD_PID=$!
  chaos_record pid "$COORD_PID"
fi

RANDOM=$SEED
declare -A FAULTS=()
EVENTS="$RUN_DIR/events.tsv"
: > "$EVENTS"
# Counts a fault that just began and stamps it on the clients' clock (CLOCK_MONOTONIC),
# for the unavailability report.
count() {
  FAULTS[$1]=$(( ${FAULTS[$1]:-0} + 1 ))
  printf '%s\t%s\n' "$("$BUILD/aspen-chaos-client" now)" "$1" >> "$EVENTS"
}
leader_id() {
  in_client "$BUILD/aspen-cli" --timeout-ms 2000 --json cluster status 2> /dev/null |
    sed -n 's/.*"leader_id": *\([0-9]*\).*/\1/p' | head -1
}
# Bash reseeds RANDOM in every subshell, so every draw happens here in the main shell,
# never inside $(...) or <(...): the seed alone fixes the schedule (which node leads at a
# given moment still depends on the run).
# TARGET: the leader half the time (when one is known and is one of the N nodes), else any
# of the N nodes; WHO says which. With "with-fresh" (kill, pause, clock) the fresh node,
# while one is in the cluster, is a target too: as the leader, or drawn as one of N+1
# (WHO=fresh). Without it (partitions, disks, membership) a fresh node is no target: those
# nemeses work on the N nodes the run started with.
pick_target() {
  local l="" coin=$(( RANDOM % 2 )) n=$CHAOS_NODES any fresh=""
  [ "${1:-}" = with-fresh ] && [ -n "$SPARE_ID" ] && { fresh=$SPARE_ID; n=$(( n + 1 )); }
  any=$(( RANDOM % n + 1 ))
  if (( coin == 0 )); then l=$(leader_id); fi
  if [ -n "$l" ] && { (( l >= 1 && l <= CHAOS_NODES )) || [ "$l" = "$fresh" ]; }; then TARGET=$l; WHO=leader
  elif (( any > CHAOS_NODES )); then TARGET=$fresh; WHO=fresh
  else TARGET=$any; WHO=random; fi
}
# Sleeps $1 seconds unless the run ends first (the monotonic end is END_NS).
hold() {
  local deadline_ns=$(( $(date +%s%N) + $1 * 1000000000 ))
  (( deadline_ns > END_NS )) && deadline_ns=$END_NS
  while (( $(date +%s%N) < deadline_ns )); do sleep 0.2; done
}
# SHUFFLED: the node ids in a random order (Fisher-Yates).
shuffle_nodes() {
  local i j t
  mapfile -t SHUFFLED < <(seq 1 "$CHAOS_NODES")
  for (( i = CHAOS_NODES - 1; i > 0; i-- )); do
    j=$(( RANDOM % (i + 1) )); t=${SHUFFLED[$i]}; SHUFFLED[$i]=${SHUFFLED[$j]}; SHUFFLED[$j]=$t
  done
}

# Each nemesis_<kind> starts one fault, logs and counts it, and pushes the command that
# removes it onto HEALS; the main loop holds the faults for a while, then runs HEALS:
# processes first (a restart, a SIGCONT), then the network, disks, and membership last (a
# promotion needs a quorum: healed first, it waited for a killed node that was not yet
# restarted, 80 s in the seed-22 run). With --overlap a round may start two faults of different classes at once
# (network, process, disk, membership), e.g. a partition while the leader is paused.
HEALS=()
nemesis_partition() {
  local kind=$(( RANDOM % 4 )) nodes half a b l
  shuffle_nodes
  nodes=("${SHUFFLED[@]}")
  case $kind in
    0)
      half=$(( (CHAOS_NODES - 1) / 2 ))
      a="${nodes[*]:0:$half}"; b="${nodes[*]:$half}"
      # A fresh node, while there is one, is on the majority side.
      if [ -n "$SPARE_ID" ]; then
        chaos_split "$a" "$b $SPARE_IDX"; log "partition majority/minority: {$b fresh node $SPARE_ID} | {$a}"
      else
        chaos_split "$a" "$b"; log "partition majority/minority: {$b} | {$a}"
      fi
      count partition-split ;;
    1)
      l=$(leader_id)
      if [ -n "$l" ] && [ -n "$SPARE_ID" ] && [ "$l" = "$SPARE_ID" ]; then
        # The fresh node leads: its namespace (SPARE_IDX) is cut from every other node.
        b=$(seq 1 "$CHAOS_NODES" | tr '\n' ' ')
        chaos_split "$SPARE_IDX" "$b"; log "partition isolated leader: {fresh node $l} | {${b% }}"; count partition-leader
      else
        [ -n "$l" ] && (( l >= 1 && l <= CHAOS_NODES )) || l=${nodes[0]}
        b=$(seq 1 "$CHAOS_NODES" | grep -vx "$l" | tr '\n' ' ')
        # A fresh node is on the majority side (its namespace is SPARE_IDX).
        if [ -n "$SPARE_ID" ]; then
          chaos_split "$l" "$b $SPARE_IDX"; log "partition isolated leader: {$l} | {${b}fresh node $SPARE_ID}"
        else
          chaos_split "$l" "$b"; log "partition isolated leader: {$l} | {${b% }}"
        fi
        count partition-leader
      fi ;;
    2)
      chaos_drop_from "${nodes[0]}" "${nodes[1]}"
      log "partition one-way: node ${nodes[0]} no longer hears node ${nodes[1]}"; count partition-oneway ;;
    3)
      # Node nodes[0] sees both halves; the halves do not see each other.
      half=$(( (CHAOS_NODES - 1) / 2 ))
      a="${nodes[*]:1:$half}"; b="${nodes[*]:$(( half + 1 ))}"
      chaos_split "$a" "$b"; log "partition bridge: {$a} | {$b}, node ${nodes[0]} sees both"; count partition-bridge ;;
  esac
  HEALS+=("1 chaos_heal_net; log heal")
}

nemesis_kill() {
  local t who
  pick_target with-fresh; t=$TARGET; who=$WHO
  kill -KILL "${NODE_PID[$t]}" 2> /dev/null; wait "${NODE_PID[$t]}" 2> /dev/null
  NODE_DOWN[$t]=1
  log "kill -9 node $t ($who)"; count "kill-$who"
  if [ "$t" = "$SPARE_ID" ]; then HEALS+=("0 restart_fresh $t")
  else HEALS+=("0 start_node $t; log 'restart node $t'"); fi
}

nemesis_pause() {
  local t who
  pick_target with-fresh; t=$TARGET; who=$WHO
  kill -STOP "${NODE_PID[$t]}" 2> /dev/null; log "SIGSTOP node $t ($who)"; count "pause-$who"
  HEALS+=("0 kill -CONT ${NODE_PID[$t]} 2> /dev/null; log 'SIGCONT node $t'")
}

nemesis_netem() {
  local targets i what
  if (( RANDOM % 2 == 0 )); then targets=$(seq 1 "$CHAOS_NODES" | tr '\n' ' '); else targets=$(( RANDOM % CHAOS_NODES + 1 )); fi
  if [ "$HAS_NETEM" = 1 ]; then
    local delay=$(( 20 + RANDOM % 180 )) jitter=$(( 5 + RANDOM % 50 )) loss=$(( RANDOM % 20 )) dup=$(( RANDOM % 5 ))
    what="netem delay ${delay}ms ${jitter}ms loss ${loss}% duplicate ${dup}% reorder 25%"
    for i in $targets; do
      chaos_qdisc "$i" netem delay "${delay}ms" "${jitter}ms" loss "${loss}%" duplicate "${dup}%" reorder 25% 50%
    done
  else
    local loss=$(( 5 + RANDOM % 30 ))
    what="loss ${loss}% (nftables) and 1mbit/s (tbf); no netem in this kernel"
    for i in $targets; do
      chaos_loss_nft "$i" "$loss"
      chaos_qdisc "$i" tbf rate 1mbit burst 32kbit latency 200ms
    done
  fi
  log "network on nodes {${targets% }}: $what"; count netem
  HEALS+=("1 chaos_heal_net; log heal")
}

# A full disk (the node's filesystem filled by one file) or a slow one (its writes limited to
# a few I/O operations per second). While a disk is full the node raises the cluster's
# storage alarm and the cluster refuses writes with StorageFull; the heal removes the file and
# disarms the alarm, as an operator would (docs/operations.md "Storage space").
nemesis_disk() {
  local t who iops
  pick_target; t=$TARGET; who=$WHO
  if [ "$HAS_SLOW_DISK" = 1 ] && (( RANDOM % 2 == 0 )); then
    iops=$(( 5 + RANDOM % 30 ))
    chaos_disk_slow "$t" "$RUN_DIR" "$iops"
    log "slow disk on node $t ($who): writes limited to $iops IO/s (blkio throttle)"; count "disk-slow"
    HEALS+=("2 chaos_disk_heal $t '$RUN_DIR'; log 'disk of node $t at full speed again'")
  else
    chaos_disk_fill "$t" "$RUN_DIR"
    log "full disk on node $t ($who): $(df --output=avail -B1 "$RUN_DIR/node-$t" | tail -1 | tr -d ' ') bytes left"
    count "disk-full"
    DISK_FULL_PROBES+=("$t")
    HEALS+=("2 heal_full_disk $t")
  fi
}

# A write while node $1's disk is full: refused with StorageFull once the alarm is raised
# (what the operator sees), or taken if the alarm is not raised yet. Logged once per fault.
probe_full_disk() {
  local out
  out=$(in_client "$BUILD/aspen-cli" --timeout-ms 2000 kv set chaos/disk-probe "$1" 2>&1) &&
    out="accepted (alarm not raised yet)"
  log "write during the full disk of node $1: ${out//$'\n'/ }"
}
heal_full_disk() {
  local t=$1 i out
  chaos_disk_heal "$t" "$RUN_DIR"
  for i in $(seq 1 40); do
    out=$(in_client "$BUILD/aspen-cli" --timeout-ms 2000 cluster alarm disarm 2>&1) && break
    sleep 0.25
  done
  log "disk of node $t emptied; alarm disarm: ${out//$'\n'/ }"
}

# Membership: node t leaves the voters, then comes back. Half the time it is removed from
# the cluster and added again as a learner with its old data; else it is demoted to a
# learner (change-membership --retain). Either way it is then promoted to a voter again.
# Each aspen-cli step is retried while faults make the cluster refuse it; a step still
# refused is left to the final repair after healing.
cli_retry() {
  local i out
  for i in $(seq 1 "$1"); do
    out=$(in_client "$BUILD/aspen-cli" --timeout-ms 3000 "${@:2}" 2>&1) && { echo "ok"; return 0; }
    sleep 0.5
  done
  echo "refused: ${out//$'\n'/ }"
  return 1
}
# The fresh node (a brand-new aspen-node in the spare namespace) while it is in the cluster:
# its id (CHAOS_NODES+1, +2, ... a new one each time), pid; empty when there is none.
SPARE_ID=""
SPARE_PID=""
FRESH_NEXT_ID=$(( CHAOS_NODES + 1 ))
FRESH_SEEN=()
member_ids() { seq 1 "$CHAOS_NODES"; [ -n "$SPARE_ID" ] && echo "$SPARE_ID"; }
node_addr() {
  if [ "$1" = "$SPARE_ID" ]; then echo "$(chaos_node_ip "$SPARE_IDX"):$CHAOS_PORT"
  else echo "$(chaos_node_ip "$1"):$CHAOS_PORT"; fi
}
all_voters() { member_ids | tr '\n' ' '; }
others() { member_ids | grep -vx "$1" | tr '\n' ' '; }
# A brand-new node: new id, empty data directory, new key (aspen-node makes one), in the
# spare namespace.
start_fresh() {
  local id=$1
  [ -f "$(clock_file "$id")" ] || set_clock "$id" 0
  (chaos_exec_in_ns "$(chaos_node_ns "$SPARE_IDX")" "$BUILD/aspen-node" --node-id "$id" --cookie-file "$RUN_DIR/cookie" \
    --data-dir "$RUN_DIR/node-$id" --bind "$(chaos_node_ip "$SPARE_IDX"):$CHAOS_PORT" \
    --ticket-file "$RUN_DIR/node-$id.ticket" --heartbeat-ms "$HEARTBEAT_MS" \
    --election-timeout-ms "$ELECTION_TIMEOUT_MS" --test-clock-offset-file "$(clock_file "$id")") \
    >> "$RUN_DIR/node-$id.log" 2>&1 &
  SPARE_PID=$!
  NODE_PID[$id]=$!
  unset "NODE_DOWN[$id]"
  chaos_record pid "$!"
}
# After a kill -9 of the fresh node: the same id, data directory and key, unless a
# membership round removed it meanwhile.
restart_fresh() {
  [ "$1" = "$SPARE_ID" ] || { unset "NODE_DOWN[$1]"; return 0; }
  start_fresh "$1"
  log "restart fresh node $1"
}
# Starts a fresh node and adds it as a learner; the round's heal promotes it.
fresh_join() {
  local id=$FRESH_NEXT_ID r
  FRESH_NEXT_ID=$(( FRESH_NEXT_ID + 1 ))
  start_fresh "$id"
  if ! wait_for_line "$RUN_DIR/node-$id.log" ASPEN_TICKET; then
    log "membership: fresh node $id did not start (node-$id.log)"
    kill -KILL "$SPARE_PID" 2> /dev/null; wait "$SPARE_PID" 2> /dev/null; SPARE_PID=""
    return
  fi
  SPARE_ID=$id
  FRESH_SEEN+=("$id")
  r=$(cli_retry 20 cluster add-learner "$id" "$(key_of "$id")" "$(node_addr "$id")")
  log "membership: fresh node $id (new data directory, key $(key_of "$id" | cut -c1-16)...) started in the spare namespace, added as a learner: $r"
  count "member-fresh-add"
  HEALS+=("3 fresh_promote $id")
}
fresh_promote() {
  local r
  # shellcheck disable=SC2046
  r=$(cli_retry 20 cluster change-membership $(all_voters))
  log "membership: fresh node $1 promoted, voters {$(all_voters | sed 's/ $//')}: $r"
  count "member-fresh-promote"
}
# Removes the fresh node from the cluster and stops it; if the cluster refuses, it stays a
# member (restore_members keeps it a voter) and a later round tries again.
fresh_leave() {
  local id=$SPARE_ID r
  r=$(cli_retry 20 cluster remove "$id")
  log "membership: remove fresh node $id: $r"
  count "member-fresh-remove"
  [ "$r" = ok ] || return
  kill -CONT "$SPARE_PID" 2> /dev/null; kill -TERM "$SPARE_PID" 2> /dev/null; wait "$SPARE_PID" 2> /dev/null
  unset "NODE_DOWN[$id]"
  log "membership: fresh node $id stopped"
  SPARE_ID=""; SPARE_PID=""
}
nemesis_member() {
  local t who r coin
  pick_target; t=$TARGET; who=$WHO
  coin=$(( RANDOM % 3 ))
  # Only from a full set of voters: an earlier change the faults refused is finished first,
  # so that the nemesis never takes the cluster below N-1 voters.
  r=$(restore_members 10)
  if [ "$r" != ok ]; then log "membership: skipped, the cluster has not taken every node back yet: $r"; return; fi
  if (( coin == 2 )); then
    # A fresh node joins, or the one that joined earlier leaves.
    if [ -n "$SPARE_ID" ]; then fresh_leave; else fresh_join; fi
  elif (( coin == 0 )); then
    # shellcheck disable=SC2046
    r=$(cli_retry 20 cluster remove "$t")
    log "membership: remove node $t ($who): $r"; count "member-remove"
    HEALS+=("3 rejoin $t add")
  else
    # shellcheck disable=SC2046
    r=$(cli_retry 20 cluster change-membership --retain $(others "$t"))
    log "membership: demote node $t ($who) to learner: $r"; count "member-demote"
    HEALS+=("3 rejoin $t promote")
  fi
}
# Every node a member (added as a learner if it is not one: "already a member" is fine), then
# every node a voter. Prints ok, or the last refusal.
restore_members() {
  local attempts=$1 i out r
  for i in $(member_ids); do
    for _ in $(seq 1 "$attempts"); do
      out=$(in_client "$BUILD/aspen-cli" --timeout-ms 3000 cluster add-learner "$i" "$(key_of "$i")" \
        "$(node_addr "$i")" 2>&1)
      r=$?
      if [ $r = 0 ] || [[ "$out" == *"already a member"* ]]; then out=""; break; fi
      sleep 0.5
    done
    if [ -n "$out" ]; then echo "refused: ${out//$'\n'/ }"; return 1; fi
  done
  # shellcheck disable=SC2046
  cli_retry "$attempts" cluster change-membership $(all_voters)
}
rejoin() {
  local t=$1 how=$2 r
  r=$(restore_members 20)
  log "membership: node $t back ($([ "$how" = add ] && echo "added as a learner, " )promoted), voters {$(all_voters | sed 's/ $//')}: $r"
}

# Clocks: through each node's --test-clock-offset-file (written here, re-read by the node
# every ~200 ms). Only what reads the node's wall clock moves: the clock its heartbeats carry
# (clock drift detection, docs/operations.md "Clocks") and the HLC that reads it. The checks
# do not change: linearizability, convergence, the coordination workloads and writes after
# healing must all hold whatever the clocks say.
SKEW_PID=""
CLOCK_PROBES=()
# CLOCK_MS: a jump of 2 s or 30 s, either way (drawn in this shell, as every draw is).
clock_jump_ms_draw() {
  local m=$(( RANDOM % 2 )) s=$(( RANDOM % 2 ))
  CLOCK_MS=$(( (m == 0 ? 2000 : 30000) * (s == 0 ? 1 : -1) ))
}
nemesis_clock() {
  local kind=$(( RANDOM % 3 )) t who ms i what="" rate
  case $kind in
    0)
      pick_target with-fresh; t=$TARGET; who=$WHO; clock_jump_ms_draw; ms=$CLOCK_MS
      set_clock "$t" "$ms"; log "clock jump: node $t ($who) by $ms ms"; count clock-jump ;;
    1)
      for i in $(member_ids); do
        clock_jump_ms_draw; ms=$CLOCK_MS; (( RANDOM % 4 == 0 )) && ms=0
        set_clock "$i" "$ms"; what+="node $i $ms ms, "
      done
      log "clock jump on every node: ${what%, }"; count clock-jump-all ;;
    2)
      pick_target with-fresh; t=$TARGET; who=$WHO
      rate=$(( (50 + RANDOM % 451) * (RANDOM % 2 == 0 ? 1 : -1) ))
      # The drift runs in the background, 5 steps a second, until the heal stops it (or
      # this shell is gone).
      ( off=0; while kill -0 $$ 2> /dev/null; do off=$(( off + rate / 5 )); set_clock "$t" "$off"; sleep 0.2; done ) &
      SKEW_PID=$!
      log "clock drift: node $t ($who) drifts $rate ms per second"; count clock-drift ;;
  esac
  CLOCK_PROBES+=(1)
  HEALS+=("1 heal_clocks")
}
heal_clocks() {
  local i
  if [ -n "$SKEW_PID" ]; then kill -TERM "$SKEW_PID" 2> /dev/null; wait "$SKEW_PID" 2> /dev/null; SKEW_PID=""; fi
  for i in $(member_ids); do set_clock "$i" 0; done
  log "clocks back: every offset 0"
}
# What the cluster measures while a clock fault lasts: each member's clock minus the
# reporting node's (cluster status --json clock_offset_ms), logged as evidence that the
# fault took effect.
probe_clocks() {
  local out
  # nlohmann's JSON orders keys by name: a member's clock_offset_ms comes before its node_id.
  out=$(in_client "$BUILD/aspen-cli" --timeout-ms 2000 --json cluster status 2> /dev/null | tr -d ' \n' |
    grep -o '"clock_offset_ms":-\{0,1\}[0-9.]*\|"node_id":[0-9]*\|"reported_by":[0-9]*' |
    awk -F: '$1 == "\"clock_offset_ms\"" { o = $2; next }
             $1 == "\"node_id\"" { printf "node %s %s, ", $2, (o == "" ? "?" : o); o = ""; next }
             { printf "as measured by node %s", $2 }')
  log "clocks measured (ms, each member's clock minus the measuring node's): ${out:-unavailable}"
}

class_of() {
  case "$1" in
    partition|netem) echo network ;;
    kill|pause) echo process ;;
    disk) echo disk ;;
    member) echo member ;;
    clock) echo clock ;;
  esac
}

START_NS=$(date +%s%N)
# The last seconds of the workload run without faults.
END_NS=$(( START_NS + (DURATION_S - 5) * 1000000000 ))
OVERLAPS=0
while (( $(date +%s%N) < END_NS )); do
  hold $(( 2 + RANDOM % 4 ))
  (( $(date +%s%N) < END_NS )) || break
  HEALS=()
  DISK_FULL_PROBES=()
  CLOCK_PROBES=()
  first=${NEMESIS_LIST[$(( RANDOM % ${#NEMESIS_LIST[@]} ))]}
  second=""
  if [ "$OVERLAP" = 1 ] && (( RANDOM % 2 == 0 )); then
    second=${NEMESIS_LIST[$(( RANDOM % ${#NEMESIS_LIST[@]} ))]}
    [ "$(class_of "$second")" = "$(class_of "$first")" ] && second=""
  fi
  "nemesis_$first"
  if [ -n "$second" ]; then "nemesis_$second"; OVERLAPS=$(( OVERLAPS + 1 )); log "($first and $second overlap)"; fi
  # Held longer than the election timeout, so that a paused or cut-off leader is replaced.
  hold_s=$(( 3 + RANDOM % 8 ))
  if [ ${#DISK_FULL_PROBES[@]} -gt 0 ] || [ ${#CLOCK_PROBES[@]} -gt 0 ]; then
    hold 2
    for t in "${DISK_FULL_PROBES[@]}"; do probe_full_disk "$t"; done
    [ ${#CLOCK_PROBES[@]} -gt 0 ] && probe_clocks
  fi
  hold "$hold_s"
  for heal_class in 0 1 2 3; do
    for heal in "${HEALS[@]}"; do [ "${heal%% *}" = "$heal_class" ] && eval "${heal#* }"; done
  done
done

# --- heal and check ----------------------------------------------------------------------
VIOLATIONS=()
chaos_heal_net
[[ ",$NEMESES," == *,clock,* ]] && heal_clocks
if [ "$HAS_DISKS" = 1 ]; then
  for i in $(seq 1 "$CHAOS_NODES"); do chaos_disk_heal "$i" "$RUN_DIR"; done
fi
for i in $(seq 1 "$CHAOS_NODES"); do
  kill -CONT "${NODE_PID[$i]}" 2> /dev/null
  if [ -n "${NODE_DOWN[$i]:-}" ]; then start_node "$i"; continue; fi
  if ! kill -0 "${NODE_PID[$i]}" 2> /dev/null; then
    wait "${NODE_PID[$i]}"; rc=$?
    VIOLATIONS+=("node $i died on its own (exit $rc); see $RUN_DIR/node-$i.log")
    start_node "$i"
  fi
done
# A fresh node still in the cluster stays for the checks: it must be running, a voter, and
# converge with the others.
[ -n "$SPARE_ID" ] && kill -CONT "$SPARE_PID" 2> /dev/null
if [ -n "$SPARE_ID" ] && [ -n "${NODE_DOWN[$SPARE_ID]:-}" ]; then
  start_fresh "$SPARE_ID"
elif [ -n "$SPARE_ID" ] && ! kill -0 "$SPARE_PID" 2> /dev/null; then
  wait "$SPARE_PID"; rc=$?
  VIOLATIONS+=("fresh node $SPARE_ID died on its own (exit $rc); see $RUN_DIR/node-$SPARE_ID.log")
  start_fresh "$SPARE_ID"
fi
# Every node a voter again (a membership step the faults refused is finished here), and no
# storage alarm left raised.
if [[ ",$NEMESES," == *,member,* ]]; then
  r=$(restore_members 60)
  [ "$r" = ok ] || VIOLATIONS+=("the cluster did not take every node back as a voter after healing: $r")
fi
if [[ ",$NEMESES," == *,disk,* ]]; then
  r=$(cli_retry 60 cluster alarm disarm)
  [ "$r" = ok ] || VIOLATIONS+=("the storage alarm could not be disarmed after healing: $r")
fi
log "healed: every fault removed, every node running and a voter$([ -n "$SPARE_ID" ] && echo " (with fresh node $SPARE_ID)")"
# Leases the leaders expired by their clocks: a leader whose clock jumped forward expires
# leases early (docs/operations.md "Clocks"), so the clock nemesis shows here.
expired=0
for i in $(member_ids); do
  v=$(in_client "$BUILD/aspen-cli" --timeout-ms 2000 metrics --node "$i" 2> /dev/null |
    sed -n 's/^aspen_lease_expiries_proposed_total{[^}]*} \([0-9]*\).*/\1/p' | head -1)
  expired=$(( expired + ${v:-0} ))
done
log "leases expired by the leaders' clocks: $expired (aspen_lease_expiries_proposed_total summed over the members; a restart starts a member's count again)"
wait "$WORKLOAD_PID"; WORKLOAD_PID=""
log "$(tail -1 "$RUN_DIR/workload.log")"
if [ -n "$COORD_PID" ]; then
  wait "$COORD_PID"; COORD_PID=""
  log "$(tail -1 "$RUN_DIR/coord.log")"
fi

if ! in_client "$BUILD/aspen-chaos-client" converge --timeout-s 60 > "$RUN_DIR/converge.log" 2>&1; then
  VIOLATIONS+=("members did not converge after healing (converge.log)")
fi
sed 's/^/  /' "$RUN_DIR/converge.log" | tee -a "$TIMELINE"
if [ -n "$SPARE_ID" ] && ! grep -q "^converge: node $SPARE_ID applied" "$RUN_DIR/converge.log"; then
  VIOLATIONS+=("fresh node $SPARE_ID is in the cluster but was not among the converged members (converge.log)")
fi
if ! in_client "$BUILD/aspen-chaos-client" final-reads --keys "$KEYS" --history "$HISTORY" --timeout-s 30 \
  >> "$RUN_DIR/workload.log" 2>&1; then
  VIOLATIONS+=("a final read never succeeded after healing (workload.log)")
fi

if [ "$COORD" != none ]; then
  in_client "$BUILD/aspen-chaos-client" coord-check --kinds "$COORD" --history "$COORD_HISTORY" --timeout-s 60 \
    > "$RUN_DIR/coord-check.txt" 2>&1
  coord_rc=$?
  sed 's/^/  /' "$RUN_DIR/coord-check.txt" | tee -a "$TIMELINE"
  case $coord_rc in
    0) ;;
    1) VIOLATIONS+=("coordination workloads: $(grep -c 'coord VIOLATION' "$RUN_DIR/coord-check.txt") listed violations (coord-check.txt)") ;;
    2) VIOLATIONS+=("coordination workloads: the counter could not be read or the queue drained after healing (coord-check.txt)") ;;
    *) VIOLATIONS+=("aspen-chaos-client coord-check failed with exit $coord_rc (coord-check.txt)") ;;
  esac
fi

"$BUILD/aspen-lincheck" "$HISTORY" > "$RUN_DIR/lincheck.txt" 2>&1
lin_rc=$?
# The verdict and, on a violation, the key and the register's value where the search
# stopped; the failing key's operations are in lincheck.txt.
{ head -3 "$RUN_DIR/lincheck.txt"; grep 'register after' "$RUN_DIR/lincheck.txt"; } | sed 's/^ */  /' | tee -a "$TIMELINE"
INCONCLUSIVE=0
case $lin_rc in
  0) ;;
  1) VIOLATIONS+=("history not linearizable (lincheck.txt)") ;;
  2) INCONCLUSIVE=1 ;;
  *) VIOLATIONS+=("aspen-lincheck failed with exit $lin_rc (lincheck.txt)") ;;
esac

"$BUILD/aspen-chaos-client" report --history "$HISTORY" --events "$EVENTS" > "$RUN_DIR/unavailability.txt" 2>&1
sed 's/^/  /' "$RUN_DIR/unavailability.txt" | tee -a "$TIMELINE"
summary=""
for k in $(printf '%s\n' "${!FAULTS[@]}" | sort); do summary+="$k=${FAULTS[$k]} "; done
[ ${#FRESH_SEEN[@]} -gt 0 ] && summary+="fresh nodes: ${FRESH_SEEN[*]}$([ -n "$SPARE_ID" ] && echo " ($SPARE_ID still a member)") "
[ "$OVERLAP" = 1 ] && summary+="(rounds with two faults at once: $OVERLAPS)"
log "faults: ${summary:-none}"
if [ ${#VIOLATIONS[@]} -gt 0 ]; then
  for v in "${VIOLATIONS[@]}"; do log "VIOLATION: $v"; done
  log "verdict: FAIL (seed $SEED; replay the schedule: scripts/chaos.sh --seed $SEED --nemesis $NEMESES --duration ${DURATION_S}s --nodes $CHAOS_NODES --clients $CLIENTS --keys $KEYS ${WORKLOAD_FLAGS[*]})"
  exit $EXIT_VIOLATION
fi
if [ "$INCONCLUSIVE" = 1 ]; then log "verdict: INCONCLUSIVE (checker budget exhausted)"; exit $EXIT_HARNESS; fi
log "verdict: PASS"
exit 0
}
