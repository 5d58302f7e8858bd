// RaftLog: the core's view of the whole log = persisted entries (LogStorage) + entries not yet
// persisted (the unstable tail, and possibly an incoming snapshot), plus the commit and apply
// cursors. Internal to src/raft.
//
// Invariants: applied <= committed <= last_index(); the unstable tail starts right after the
// persisted log (or after the unstable snapshot, which replaces the persisted log).
#pragma once

#include <optional>
#include <vector>

#include "raft/log_storage.h"

namespace aspen::raft {

class RaftLog {
 public:
  RaftLog(const LogStorage* storage, uint64_t max_committed_size_per_ready);

  // Appends entries from a leader if (index, log_term) matches (§5.3). Returns the index of
  // the last new entry, or nullopt on a mismatch.
  std::optional<Index> maybe_append(Index index, Term log_term, Index committed,
                                    const std::vector<pb::Entry>& ents);
  Index append(const std::vector<pb::Entry>& ents);
  // The index of the first of `ents` whose term differs from ours (or that we lack); 0 if
  // every one matches.
  Index find_conflict(const std::vector<pb::Entry>& ents) const;

  // Fast backtracking hint (§5.3, "the follower can include the term of the conflicting
  // entry"): the largest (index, term) with index <= `index` and term <= `term`.
  std::pair<Index, Term> find_conflict_by_term(Index index, Term term) const;

  const std::vector<pb::Entry>& unstable_entries() const { return unstable_; }
  const std::optional<pb::Snapshot>& unstable_snapshot() const { return unstable_snapshot_; }
  // Committed entries not yet applied, bounded by the per-Ready size limit.
  std::vector<pb::Entry> next_committed_entries() const;
  bool has_next_committed_entries() const;

  Result<pb::Snapshot> snapshot() const;
  Index first_index() const;
  Index last_index() const;
  Result<Term> term(Index i) const;
  Term term_or_zero(Index i) const;
  Term last_term() const { return term_or_zero(last_index()); }
  bool match_term(Index i, Term t) const;
  // §5.4.1: a candidate's log is at least as up to date as ours.
  bool is_up_to_date(Index last_index, Term term) const;
  // Commits to max_index if that entry is from `term` (§5.4.2: only current-term entries are
  // committed by counting replicas).
  bool maybe_commit(Index max_index, Term term);
  void commit_to(Index to_commit);
  void applied_to(Index i);
  // The unstable tail up to (i, t) is now persisted.
  void stable_to(Index i, Term t);
  void stable_snap_to(Index i);
  // Replaces the log with a snapshot received from the leader (kept unstable until persisted).
  void restore(const pb::Snapshot& snap);

  // Entries in [lo, hi), at most max_size_bytes (but at least one).
  Result<std::vector<pb::Entry>> slice(Index lo, Index hi, uint64_t max_size_bytes) const;
  Result<std::vector<pb::Entry>> entries_from(Index lo, uint64_t max_size_bytes) const;

  Index committed() const { return committed_; }
  Index applied() const { return applied_; }
  // Everything up to `i` counts as applied already (used at start-up).
  void set_applied(Index i) { applied_ = i; }

 private:
  Index unstable_offset() const { return offset_; }
  std::optional<Term> unstable_term(Index i) const;
  void truncate_and_append_unstable(const std::vector<pb::Entry>& ents);

  const LogStorage* storage_;
  uint64_t max_committed_size_per_ready_;
  // Unstable tail: entry unstable_[k] has index offset_ + k.
  std::vector<pb::Entry> unstable_;
  std::optional<pb::Snapshot> unstable_snapshot_;
  Index offset_ = 0;
  Index committed_ = 0;
  Index applied_ = 0;
};

}  // namespace aspen::raft
