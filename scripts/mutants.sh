#!/usr/bin/env bash
# Mutation suite for the simulator (issue 21): plants one rule-breaking change at a time in a
# scratch copy of the committed tree (never in the working tree, so production code carries
# none of them), builds aspen-sim there, runs it on a seed range and reports per mutant
# whether the simulator caught it, with the first failing seed.
#
#   scripts/mutants.sh                       every mutant, seeds 1:500
#   scripts/mutants.sh --seeds 1:2000        a longer range
#   scripts/mutants.sh --only figure-8,two-votes-per-term
#   scripts/mutants.sh --list                the mutants and what each breaks
#   scripts/mutants.sh --check               only check every mutant still applies (no build)
#   scripts/mutants.sh --with-worktree sim,tools/aspen-sim
#                                            HEAD plus the uncommitted state of these paths
#                                            (try a simulator change against every mutant
#                                            before committing it)
#
# A mutant is an exact text replacement in one file; if its text is gone (the code moved),
# the mutant is reported STALE and the script fails, so the list is kept in step with the
# code. "caught" means a seed failed an invariant (exit 1), made no progress (exit 2) or hit
# an ASPEN_ASSERT (an abort): each is the simulator refusing the run. A mutant may also ask
# for a catch rate ("caught:10": at least 10 per mille of the seeds fail; figure-8 asks for
# 1 %, the issue's bar, over 1:2000). Exit status: 0 if every mutant was caught (at its
# rate) or is listed as expected to survive, 1 otherwise.
#
# Builds take the shared lock (/tmp/aspen-build.lock). The scratch copy lives in
# $ASPEN_MUTANT_DIR (default /tmp/aspen-mutants); when HEAD moves, only the files that
# changed are copied in (others keep their times), so ninja rebuilds what changed, and
# each mutant costs one recompiled file and a link.
set -euo pipefail

SEEDS=1:500
ONLY=""
LIST=0
CHECK=0
WORKTREE_PATHS=""
while [ $# -gt 0 ]; do
  case "$1" in
    --seeds) SEEDS=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --list) LIST=1; shift ;;
    --check) CHECK=1; shift ;;
    --with-worktree) WORKTREE_PATHS=$2; shift 2 ;;
    -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
    *) echo "mutants.sh: unknown argument $1" >&2; exit 64 ;;
  esac
done

REPO=$(cd "$(dirname "$0")/.." && pwd)
SCRATCH=${ASPEN_MUTANT_DIR:-/tmp/aspen-mutants}
LOCK=/tmp/aspen-build.lock

# name|file|expected|what it breaks. The replacement text is in mutate() below. "survives"
# would mark a mutant that cannot break anything in this design (docs/simulator.md would
# say why); none does today.
MUTANTS=$(cat <<'EOF'
vote-quorum-off-by-one|src/raft/quorum.cc|caught|a candidate wins with n/2 votes (§5.2)
two-votes-per-term|src/raft/raft.cc|caught|a node votes again in a term in which it already voted (§5.2)
non-voter-vote-counts|src/raft/quorum.cc|caught|a vote counts in a half of a joint configuration the voter is not in (§6)
skip-election-restriction|src/raft/raft.cc|caught|votes for a candidate whose log is behind (§5.4.1)
figure-8|src/raft/raft_leader.cc|caught:10|a leader commits an earlier term's entry by counting replicas (§5.4.2)
no-log-matching-check|src/raft/raft_log.cc|caught|a follower appends without checking the previous entry's term (§5.3)
truncate-on-stale-append|src/raft/raft_log.cc|caught|a follower cuts its log after a stale append, committed entries too
joint-one-half|src/raft/quorum.cc|caught|a joint configuration commits on the incoming majority alone (§6)
forget-vote-on-restart|src/raft/raft.cc|caught|a restarted node forgets whom it voted for (§5.2, Figure 2)
read-index-no-confirmation|src/raft/raft_leader.cc|caught|ReadIndex served without a heartbeat round (§6.4)
read-index-one-ack|src/raft/raft_leader.cc|caught|ReadIndex released once any follower acked any round (§6.4)
lease-read-after-partition|src/raft/raft_leader.cc|caught|a leader serves reads at once while it heard from a quorum within an election timeout (a lease, §6.4.1)
apply-before-persist|src/node/node_core.cc|caught|a leader answers writes with their applied result before its own log write made them durable
follower-acks-before-sync|src/node/node_core.cc|caught|followers send their acknowledgements before their entries are durable
early-send-no-commit-clamp|src/node/node_core.cc|caught|early appends carry a commit index the leader's disk does not hold yet (§10.2.1)
snapshot-without-term|src/storage/apply_entries.cc|caught|the applied position (and so every snapshot's metadata) leaves out the last included entry's term
history-gap|src/kv/mvcc.cc|caught|a command that changed keys leaves no history entry now and then: watchers miss its revision
EOF
)

if [ "$LIST" = 1 ]; then
  echo "$MUTANTS" | awk -F'|' '{ printf "%-28s %-8s %s\n", $1, $3, $4 }'
  exit 0
fi

# Applies mutant $1 to the scratch copy's file $2: exactly one occurrence of the original.
mutate() {
  python3 - "$1" "$2" <<'PY'
import sys
name, path = sys.argv[1], sys.argv[2]
M = {
  "vote-quorum-off-by-one": [("size_t quorum = voters.size() / 2 + 1;", "size_t quorum = voters.size() / 2;")],
  "two-votes-per-term": [("bool can_vote = vote_ == m.from() || (vote_ == kNoNode && lead_ == kNoNode) ||",
                          "bool can_vote = vote_ == m.from() || lead_ == kNoNode ||")],
  "non-voter-vote-counts": [("  size_t quorum = voters.size() / 2 + 1;",
                             "  granted = 0;\n  for (const auto& [v, g] : votes) granted += g ? 1 : 0;\n"
                             "  size_t quorum = voters.size() / 2 + 1;")],
  "skip-election-restriction": [("log_.is_up_to_date(m.index(), m.log_term());", "true;")],
  "figure-8": [("return log_.maybe_commit(mci, term_);", "return log_.maybe_commit(mci, log_.term_or_zero(mci));")],
  "no-log-matching-check": [("  if (!match_term(index, log_term)) return std::nullopt;\n  Index lastnewi",
                             "  (void)log_term;\n  if (index > last_index()) return std::nullopt;\n  Index lastnewi")],
  "truncate-on-stale-append": [("  if (ci != 0) {\n    ASPEN_ASSERT_MSG(ci > committed_, \"conflict with a committed entry\");",
                                "  if (ci == 0 && !ents.empty() && lastnewi < last_index()) ci = ents.front().index();\n"
                                "  if (ci != 0) {")],
  "lease-read-after-partition": [("  if (trk_.is_singleton() && trk_.config.voters.incoming.contains(id_)) {\n    respond_read_index(m, read_index);",
                                  "  if ((trk_.is_singleton() && trk_.config.voters.incoming.contains(id_)) || trk_.quorum_active()) {\n"
                                  "    respond_read_index(m, read_index);")],
  "apply-before-persist": [("  const Index answerable = std::min(durable, raft_->log().committed());",
                            "  const Index answerable = raft_->log().committed();")],
  "joint-one-half": [("  return std::min(majority_committed_index(incoming, acked),\n                  majority_committed_index(outgoing, acked));",
                      "  return majority_committed_index(incoming, acked);")],
  "forget-vote-on-restart": [("  vote_ = hs.vote();", "  vote_ = kNoNode;")],
  "read-index-no-confirmation": [("  if (trk_.is_singleton() && trk_.config.voters.incoming.contains(id_)) {\n    respond_read_index(m, read_index);",
                                  "  if (true) {\n    respond_read_index(m, read_index);")],
  "read-index-one-ack": [("    if (id == id_) return sent;", "    if (id == id_ || !read_round_acked_.empty()) return sent;")],
  "early-send-no-commit-clamp": [("      if (m.commit() > durable) m.set_commit(durable);\n", "      (void)durable;\n")],
  "follower-acks-before-sync": [("  if (!is_leader || rd.snapshot || changes_term_or_vote(rd, &persisted)) return early;",
                                 "  if (rd.snapshot || changes_term_or_vote(rd, &persisted)) return early;\n  (void)is_leader;"),
                                ("    if (m.type() == pb::MSG_APP || m.type() == pb::MSG_HEARTBEAT) {",
                                 "    if (m.type() == pb::MSG_APP || m.type() == pb::MSG_HEARTBEAT || m.type() == pb::MSG_APP_RESP) {")],
  "snapshot-without-term": [("    state.applied_term = e.term();\n", "")],
  "history-gap": [("  uint32_t position = 0;\n  for (const auto& [key, record] : changes_) {",
                   "  uint32_t position = 0;\n  if (revision % 7 == 0) return {};\n  for (const auto& [key, record] : changes_) {")],
}
src = open(path).read()
for old, new in M[name]:
    if src.count(old) != 1:
        sys.exit(f"STALE: {name}: expected one occurrence in {path}, found {src.count(old)}")
    src = src.replace(old, new)
open(path, "w").write(src)
PY
}

if [ "$CHECK" = 1 ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  status=0
  while IFS='|' read -r name file expected what; do
    [ "$file" = "-" ] && continue
    mkdir -p "$tmp/$(dirname "$file")"
    git -C "$REPO" show "HEAD:$file" >"$tmp/$file"
    if msg=$(mutate "$name" "$tmp/$file" 2>&1); then echo "applies  $name"; else echo "$msg"; status=1; fi
  done < <(echo "$MUTANTS")
  exit $status
fi

# The scratch copy: the committed tree (HEAD), configured once, rebuilt per mutant. When
# HEAD moves, files whose content changed are replaced and the others keep their times
# (compared byte for byte), so ninja recompiles only what changed since the last run.
HEAD_REV=$(git -C "$REPO" rev-parse HEAD)
[ -n "$WORKTREE_PATHS" ] && HEAD_REV="$HEAD_REV+worktree"  # synced again every time
if [ ! -f "$SCRATCH/rev" ] || [ "$(cat "$SCRATCH/rev")" != "$HEAD_REV" ]; then
  mkdir -p "$SCRATCH/src"
  tree=$(mktemp -d)
  git -C "$REPO" archive HEAD | tar -x -C "$tree"
  for p in ${WORKTREE_PATHS//,/ }; do
    rm -rf "${tree:?}/$p"
    mkdir -p "$tree/$(dirname "$p")"
    cp -r "$REPO/$p" "$tree/$p"
  done
  # Like rsync --checksum --delete: replace files whose bytes differ, add new ones, remove
  # the gone ones; untouched files keep their times.
  python3 - "$tree" "$SCRATCH/src" <<'PY'
import filecmp, os, shutil, sys
src, dst = sys.argv[1], sys.argv[2]
seen = set()
for root, _, files in os.walk(src):
    for f in files:
        rel = os.path.relpath(os.path.join(root, f), src)
        seen.add(rel)
        a, b = os.path.join(src, rel), os.path.join(dst, rel)
        if os.path.isfile(b) and filecmp.cmp(a, b, shallow=False):
            continue
        os.makedirs(os.path.dirname(b), exist_ok=True)
        shutil.copyfile(a, b)
        shutil.copymode(a, b)
for root, _, files in os.walk(dst):
    for f in files:
        rel = os.path.relpath(os.path.join(root, f), dst)
        if rel not in seen:
            os.remove(os.path.join(dst, rel))
PY
  rm -rf "$tree"
  if [ ! -f "$SCRATCH/build/build.ninja" ]; then
    cmake -S "$SCRATCH/src" -B "$SCRATCH/build" -G Ninja -DASPEN_BUILD_TESTS=OFF -DASPEN_BUILD_BENCH=OFF >"$SCRATCH/cmake.log" 2>&1 ||
      { echo "mutants.sh: cmake failed, see $SCRATCH/cmake.log" >&2; exit 1; }
  fi
  echo "$HEAD_REV" >"$SCRATCH/rev"
fi
SRC=$SCRATCH/src

# Puts the original back, newer than the mutant's object file: with the copy's old mtime,
# ninja would keep the mutated object in every later build.
restore() {
  mv "$1.orig" "$1"
  touch "$1"
}

status=0
printf '%-28s %-9s %-13s %s\n' mutant verdict failing first_failing_seed
while IFS='|' read -r name file expected what; do
  if [ -n "$ONLY" ] && ! echo ",$ONLY," | grep -q ",$name,"; then continue; fi
  if [ "$file" = "-" ]; then
    printf '%-28s %-9s %-13s %s\n' "$name" "n/a" "-" "not plantable: $what"
    continue
  fi
  cp "$SRC/$file" "$SRC/$file.orig"
  if ! msg=$(mutate "$name" "$SRC/$file" 2>&1); then
    restore "$SRC/$file"
    printf '%-28s %-9s %-13s %s\n' "$name" "STALE" "-" "$msg"
    status=1
    continue
  fi
  if ! flock "$LOCK" ninja -C "$SCRATCH/build" aspen-sim >"$SCRATCH/$name.build.log" 2>&1; then
    restore "$SRC/$file"
    printf '%-28s %-9s %-13s %s\n' "$name" "NOBUILD" "-" "see $SCRATCH/$name.build.log"
    status=1
    continue
  fi
  restore "$SRC/$file"
  # Not --quiet: on an abort the last "seed N:" line tells which seed was running.
  set +e
  "$SCRATCH/build/aspen-sim" --seeds "$SEEDS" >"$SCRATCH/$name.out" 2>"$SCRATCH/$name.err"
  rc=$?
  set -e
  first=$(grep -m1 -oE '^seed [0-9]+: FAILED' "$SCRATCH/$name.out" | grep -oE '[0-9]+' || true)
  failing=$(grep -cE '^seed [0-9]+: FAILED' "$SCRATCH/$name.out" || true)
  total=$(grep -cE '^seed [0-9]+: ' "$SCRATCH/$name.out" || true)
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 1 ] && [ "$rc" -ne 2 ]; then
    # An ASPEN_ASSERT aborted the process: the seed after the last one reported.
    last=$(grep -oE '^seed [0-9]+:' "$SCRATCH/$name.out" | tail -1 | grep -oE '[0-9]+' || true)
    aborted=$(( ${last:-$(( ${SEEDS%%:*} - 1 ))} + 1 ))
    [ -z "$first" ] && first=$aborted
    verdict="caught"
    failing="$failing+abort"
    first="$first ($(grep -m1 -E 'assert|Assert|ASSERT' "$SCRATCH/$name.err" | cut -c1-100))"
  elif [ "$rc" -eq 0 ]; then
    verdict="SURVIVED"
    first="-"
    [ "$expected" = "survives" ] || status=1
  else
    verdict="caught"
  fi
  # A required catch rate (caught:N, N per mille of the seeds).
  if [ "$verdict" = "caught" ] && [ "${expected#caught:}" != "$expected" ]; then
    need=${expected#caught:}
    got=${failing%%+*}
    if [ $(( got * 1000 )) -lt $(( need * (total > 0 ? total : 1) )) ]; then
      verdict="TOO-RARE"
      status=1
    fi
  fi
  printf '%-28s %-9s %-13s %s\n' "$name" "$verdict" "$failing/$((total + 0))" "$first"
done < <(echo "$MUTANTS")
exit $status
