# shellcheck shell=bash
# The chaos harness's hosts: network namespaces joined by a bridge, one aspen-node in each,
# and the faults the nemesis injects (nftables rules and tc qdiscs inside the namespaces,
# signals to the node processes). Sourced by scripts/chaos.sh; docs/reliability.md.
#
# Layout of one run (RID: 4 hex digits, so that runs side by side do not collide):
#   disk    <run dir>/node-<i>.img          ext4, loop-mounted on <run dir>/node-<i> (below)
#   cgroup  blkio/aspc-<RID>-n<i>            node i's process (the slow-disk throttle)
#   bridge  acb<RID>                        on the host, no address
#   netns   aspc-<RID>-n<i>, i = 1..N       eth0 = 10.77.0.<i>/24, one aspen-node on :7001
#   netns   aspc-<RID>-n<N+1> (CHAOS_SPARES=1) a spare host: empty until the member nemesis
#                                           starts a brand-new node there
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
CHAOS_SPARES=${CHAOS_SPARES:-0}   # namespaces beyond the N nodes, for fresh nodes
CHAOS_DISK_MB=${ASPEN_CHAOS_DISK_MB:-512}   # each node's filesystem image
CHAOS_BLKIO=/sys/fs/cgroup/blkio

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

# Runs a command in network namespace $1 only. Not `ip netns exec`: that also gives the
# process a mount namespace of its own, a copy of every mount of the moment, so the nodes'
# disk images (of this run and of runs side by side) stayed mounted in those copies, and
# their loop devices attached, until the copying processes exited.
chaos_in_ns() {
  local ns=$1
  shift
  nsenter --net="/run/netns/$ns" "$@"
}

# The same, replacing the calling (sub)shell: `( chaos_exec_in_ns NS cmd ... ) &` makes $! the
# command's own pid (nsenter execs it), so a kill -9 of $! kills the command. A function run
# with & would leave $! the pid of a subshell, and killing that leaves the command running.
chaos_exec_in_ns() {
  local ns=$1
  shift
  exec nsenter --net="/run/netns/$ns" "$@"
}

# Creates the bridge and N+CHAOS_SPARES+1 namespaces. Needs CHAOS_RID, CHAOS_STATE (file),
# CHAOS_NODES.
chaos_net_up() {
  local br="acb$CHAOS_RID" i
  chaos_record link "$br"
  ip link add "$br" type bridge
  ip link set "$br" up
  for i in $(seq 1 $(( CHAOS_NODES + CHAOS_SPARES ))) c; do
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
  # Disks: the processes are gone, so the filesystems unmount (lazily if something still
  # holds one; the loop device is freed when the last user goes, mount -o loop autoclears).
  while read -r kind name; do
    [ "$kind" = mount ] || continue
    if mountpoint -q "$name" 2> /dev/null; then
      umount "$name" 2> /dev/null || { sleep 0.5; umount "$name" 2> /dev/null; } || umount -l "$name" 2> /dev/null || true
    fi
  done < "$state"
  while read -r kind name; do
    [ "$kind" = cgroup ] || continue
    [ -d "$name" ] || continue
    for pid in $(cat "$name/cgroup.procs" 2> /dev/null); do echo "$pid" > "$CHAOS_BLKIO/cgroup.procs" 2> /dev/null; done
    rmdir "$name" 2> /dev/null || true
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

# Removes every network fault from every node (and spare host).
chaos_heal_net() {
  local i ns
  for i in $(seq 1 $(( CHAOS_NODES + CHAOS_SPARES ))); do
    ns=$(chaos_node_ns "$i")
    ip netns exec "$ns" nft delete table inet chaos 2> /dev/null || true
    ip netns exec "$ns" tc qdisc del dev eth0 root 2> /dev/null || true
  done
}

# --- disks -------------------------------------------------------------------------------
# Each node's data directory is its own small ext4 filesystem: a sparse image file in the
# run directory, loop-mounted on node-<i> (so a "full disk" fills only that node's disk), and
# the node's process sits in a blkio cgroup of its own (so a "slow disk" throttles only the
# writes it issues to its loop device). The mount point and the cgroup are recorded before
# they are made; the image stays in the run directory with the node's data.

# Why per-node disks cannot be made here, on stdout; nothing (status 0) when they can.
chaos_disk_unsupported_reason() {
  local t
  for t in mkfs.ext4 losetup mount umount fallocate; do
    command -v "$t" > /dev/null || { echo "$t not found (scripts/setup.sh installs e2fsprogs, mount and util-linux)"; return 1; }
  done
  [ -e /dev/loop-control ] || { echo "no loop devices (/dev/loop-control missing)"; return 1; }
  return 0
}

# Why the slow-disk fault cannot run here, on stdout; nothing (status 0) when it can.
# device-mapper's delay target would be the usual tool, but kernels built without
# CONFIG_MD/CONFIG_BLK_DEV_DM have no /dev/mapper/control; the blkio controller's throttle
# (cgroup v1, CONFIG_BLK_DEV_THROTTLING) does the same for one process's writes.
chaos_slow_disk_unsupported_reason() {
  if [ ! -w "$CHAOS_BLKIO/blkio.throttle.write_iops_device" ]; then
    echo "no cgroup v1 blkio controller with throttling at $CHAOS_BLKIO (and device-mapper: $(
      [ -e /dev/mapper/control ] && echo present, not used || echo absent))"
    return 1
  fi
  return 0
}

chaos_node_cgroup() { echo "$CHAOS_BLKIO/aspc-$CHAOS_RID-n$1"; }

# Makes node $1's disk: $2/node-$1.img (CHAOS_DISK_MB, sparse) mounted on $2/node-$1.
chaos_disk_up() {
  local i=$1 dir="$2/node-$1" img="$2/node-$1.img"
  truncate -s "${CHAOS_DISK_MB}M" "$img" || return 1
  # -m 0: no blocks reserved for root (the node runs as root and would use them).
  mkfs.ext4 -q -F -m 0 -E lazy_itable_init=0,lazy_journal_init=0 "$img" || return 1
  mkdir -p "$dir"
  chaos_record mount "$dir"
  mount -o loop "$img" "$dir" || return 1
  if chaos_slow_disk_unsupported_reason > /dev/null; then
    chaos_record cgroup "$(chaos_node_cgroup "$i")"
    mkdir -p "$(chaos_node_cgroup "$i")"
  fi
}

# Puts process $2 into node $1's blkio cgroup (if there is one).
chaos_disk_adopt() {
  local cg
  cg=$(chaos_node_cgroup "$1")
  [ -d "$cg" ] && echo "$2" > "$cg/cgroup.procs" 2> /dev/null
  return 0
}

# The major:minor of the loop device under node $1's data directory ($2: the run directory).
chaos_disk_dev() { findmnt -n -o MAJ:MIN --target "$2/node-$1" | tr -d ' '; }

# Slow disk: node $1's writes to its disk limited to $3 I/O operations per second.
chaos_disk_slow() {
  local cg dev
  cg=$(chaos_node_cgroup "$1"); dev=$(chaos_disk_dev "$1" "$2")
  [ -n "$dev" ] && echo "$dev $3" > "$cg/blkio.throttle.write_iops_device"
}

# Full disk: fills node $1's filesystem with one file, chaos-fill (removed by chaos_disk_heal).
chaos_disk_fill() {
  local dir="$2/node-$1" avail
  avail=$(df --output=avail -B1 "$dir" | tail -1 | tr -d ' ')
  fallocate -l "$(( avail > 65536 ? avail - 65536 : 4096 ))" "$dir/chaos-fill" 2> /dev/null
  # The last blocks, until the filesystem says no space is left.
  dd if=/dev/zero of="$dir/chaos-fill-tail" bs=4k status=none 2> /dev/null
  return 0
}

# Removes every disk fault of node $1.
chaos_disk_heal() {
  local cg dev dir="$2/node-$1"
  rm -f "$dir/chaos-fill" "$dir/chaos-fill-tail"
  cg=$(chaos_node_cgroup "$1")
  if [ -d "$cg" ]; then
    dev=$(chaos_disk_dev "$1" "$2")
    [ -n "$dev" ] && echo "$dev 0" > "$cg/blkio.throttle.write_iops_device" 2> /dev/null
  fi
  return 0
}
