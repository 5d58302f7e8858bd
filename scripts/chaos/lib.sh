# shellcheck shell=bash
# The chaos harness's hosts: network namespaces joined by a bridge, one aspen-node in each,
# and the faults the nemesis injects (nftables rules and tc qdiscs inside the namespaces,
# signals to the node processes). Sourced by scripts/chaos.sh; docs/reliability.md.
#
# Layout of one run (RID: 4 hex digits, so that runs side by side do not collide):
#   bridge  acb<RID>                        on the host, no address
#   netns   aspc-<RID>-n<i>, i = 1..N       eth0 = 10.77.0.<i>/24, one aspen-node on :7001
#   netns   aspc-<RID>-c                    eth0 = 10.77.0.100/24, the clients and aspen-cli
#   veth    acv<RID><i> / acv<RID>c         host ends, enslaved to the bridge
# Addresses exist inside the namespaces only; the host's own network is never touched.
#
# Every name is written to the run's state file BEFORE it is created, so that whatever
# exists can be removed by chaos_cleanup_state: on exit or Ctrl+C (a trap), or after the
# harness itself crashed (scripts/chaos.sh --cleanup, and every new run removes what dead
# runs left behind).

CHAOS_STATE_DIR="${ASPEN_CHAOS_STATE_DIR:-/tmp/aspen-chaos}"
CHAOS_SUBNET=10.77.0
CHAOS_CLIENT_HOST=100
CHAOS_PORT=7001

chaos_ts() { date -u +%H:%M:%S.%3N; }

# Why this machine cannot run the harness, on stdout; nothing (and status 0) when it can.
chaos_unsupported_reason() {
  if [ "$(id -u)" != 0 ]; then echo "needs root (network namespaces, veth pairs, nftables)"; return 1; fi
  local t
  for t in ip nft tc; do
    if ! command -v "$t" > /dev/null; then
      echo "$t not found (scripts/setup.sh installs iproute2 and nftables)"; return 1
    fi
  done
  local probe="aspc-probe-$$"
  if ! ip netns add "$probe" 2> /dev/null; then
    echo "cannot create network namespaces here (ip netns add failed: no CAP_SYS_ADMIN or no netns support)"
    return 1
  fi
  if ! ip netns exec "$probe" nft add table inet probe 2> /dev/null; then
    ip netns del "$probe" 2> /dev/null
    echo "nftables does not work inside a network namespace here"; return 1
  fi
  if ! ip link add "acp$$" type veth peer name eth0 netns "$probe" 2> /dev/null; then
    ip netns del "$probe" 2> /dev/null
    echo "cannot create veth pairs here"; return 1
  fi
  ip link del "acp$$" 2> /dev/null
  ip netns del "$probe" 2> /dev/null
  return 0
}

# Whether tc netem works (some kernels are built without sch_netem); probed once per run.
chaos_has_netem() {
  local probe="aspc-probe-$$" ok=1
  ip netns add "$probe" 2> /dev/null || return 1
  ip netns exec "$probe" ip link add d0 type dummy 2> /dev/null &&
    ip netns exec "$probe" tc qdisc add dev d0 root netem delay 1ms 2> /dev/null && ok=0
  ip netns del "$probe" 2> /dev/null
  return $ok
}

chaos_node_ns() { echo "aspc-$CHAOS_RID-n$1"; }
chaos_client_ns() { echo "aspc-$CHAOS_RID-c"; }
chaos_node_ip() { echo "$CHAOS_SUBNET.$1"; }
chaos_record() { echo "$1 $2" >> "$CHAOS_STATE"; }

# Creates the bridge and N+1 namespaces. Needs CHAOS_RID, CHAOS_STATE (file), CHAOS_NODES.
chaos_net_up() {
  local br="acb$CHAOS_RID" i
  chaos_record link "$br"
  ip link add "$br" type bridge
  ip link set "$br" up
  for i in $(seq 1 "$CHAOS_NODES") c; do
    local ns host addr
    if [ "$i" = c ]; then ns=$(chaos_client_ns); addr=$CHAOS_SUBNET.$CHAOS_CLIENT_HOST
    else ns=$(chaos_node_ns "$i"); addr=$(chaos_node_ip "$i"); fi
    host="acv$CHAOS_RID$i"
    chaos_record netns "$ns"
    chaos_record link "$host"
    ip netns add "$ns"
    ip link add "$host" type veth peer name eth0 netns "$ns"
    ip link set "$host" master "$br" up
    ip netns exec "$ns" ip addr add "$addr/24" dev eth0
    ip netns exec "$ns" ip link set eth0 up
    ip netns exec "$ns" ip link set lo up
  done
}

# Removes everything a state file names: processes (only if still the aspen binaries it
# started), every process left inside its namespaces, the namespaces, the links.
chaos_cleanup_state() {
  local state="$1" kind name pid
  [ -f "$state" ] || return 0
  while read -r kind name; do
    [ "$kind" = pid ] || continue
    pid=$name
    if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q 'aspen-'; then
      kill -CONT "$pid" 2> /dev/null || true
      kill -KILL "$pid" 2> /dev/null || true
    fi
  done < "$state"
  while read -r kind name; do
    [ "$kind" = netns ] || continue
    if ip netns list 2> /dev/null | grep -qw "^$name"; then
      for pid in $(ip netns pids "$name" 2> /dev/null); do
        kill -CONT "$pid" 2> /dev/null || true
        kill -KILL "$pid" 2> /dev/null || true
      done
      ip netns del "$name" 2> /dev/null || true
    fi
  done < "$state"
  while read -r kind name; do
    [ "$kind" = link ] || continue
    ip link del "$name" 2> /dev/null || true
  done < "$state"
  rm -f "$state"
}

# Cleans up after runs whose harness is gone (its owner pid no longer runs chaos.sh), or
# after every run with --all.
chaos_cleanup_stale() {
  local all="${1:-}" f owner
  [ -d "$CHAOS_STATE_DIR" ] || return 0
  for f in "$CHAOS_STATE_DIR"/*.state; do
    [ -e "$f" ] || continue
    owner=$(awk '$1 == "owner" { print $2; exit }' "$f")
    if [ "$all" = --all ] || [ -z "$owner" ] || ! { [ -r "/proc/$owner/cmdline" ] &&
      tr '\0' ' ' < "/proc/$owner/cmdline" | grep -q 'chaos.sh'; }; then
      echo "chaos: removing what run $(basename "$f" .state) left behind"
      chaos_cleanup_state "$f"
    fi
  done
}

# --- faults ----------------------------------------------------------------------------

# Node $1 no longer receives what node $2 sends (one direction only).
chaos_drop_from() {
  local ns
  ns=$(chaos_node_ns "$1")
  ip netns exec "$ns" nft add table inet chaos
  ip netns exec "$ns" nft add chain inet chaos input '{ type filter hook input priority 0; policy accept; }'
  ip netns exec "$ns" nft add rule inet chaos input ip saddr "$(chaos_node_ip "$2")" drop
}

# Nodes $1 and $2 cannot talk at all.
chaos_cut() {
  chaos_drop_from "$1" "$2"
  chaos_drop_from "$2" "$1"
}

# Every node in the space-separated list $1 is cut from every node in $2.
chaos_split() {
  local a b
  for a in $1; do for b in $2; do chaos_cut "$a" "$b"; done; done
}

# Random loss of P percent of what node $1 receives (nftables; the fallback without netem).
chaos_loss_nft() {
  local ns
  ns=$(chaos_node_ns "$1")
  ip netns exec "$ns" nft add table inet chaos
  ip netns exec "$ns" nft add chain inet chaos input '{ type filter hook input priority 0; policy accept; }'
  ip netns exec "$ns" nft add rule inet chaos input ip saddr "$CHAOS_SUBNET.0/24" numgen random mod 100 "<" "$2" drop
}

# tc qdisc on node $1's eth0 (netem delay/loss/duplicate/reorder, or tbf rate limits).
chaos_qdisc() {
  local ns
  ns=$(chaos_node_ns "$1")
  shift
  ip netns exec "$ns" tc qdisc replace dev eth0 root "$@"
}

# Removes every network fault from every node.
chaos_heal_net() {
  local i ns
  for i in $(seq 1 "$CHAOS_NODES"); do
    ns=$(chaos_node_ns "$i")
    ip netns exec "$ns" nft delete table inet chaos 2> /dev/null || true
    ip netns exec "$ns" tc qdisc del dev eth0 root 2> /dev/null || true
  done
}
