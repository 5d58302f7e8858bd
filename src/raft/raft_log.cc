#include "raft/raft_log.h"

#include <algorithm>

#include "core/assert.h"

namespace aspen::raft {

RaftLog::RaftLog(const LogStorage* storage, uint64_t max_committed_size_per_ready)
    : storage_(storage), max_committed_size_per_ready_(max_committed_size_per_ready) {
  ASPEN_ASSERT(storage != nullptr);
  Index first = storage_->first_index();
  Index last = storage_->last_index();
  offset_ = last + 1;
  // Everything before the first stored entry was compacted into a snapshot, which was applied.
  committed_ = first - 1;
  applied_ = first - 1;
}

std::optional<Term> RaftLog::unstable_term(Index i) const {
  if (i < offset_) {
    if (unstable_snapshot_ && unstable_snapshot_->metadata().index() == i) {
      return unstable_snapshot_->metadata().term();
    }
    return std::nullopt;
  }
  Index last = offset_ + unstable_.size() - 1;
  if (unstable_.empty() || i > last) return std::nullopt;
  return unstable_[i - offset_].term();
}

Index RaftLog::first_index() const {
  if (unstable_snapshot_) return unstable_snapshot_->metadata().index() + 1;
  return storage_->first_index();
}

Index RaftLog::last_index() const {
  if (!unstable_.empty()) return offset_ + unstable_.size() - 1;
  if (unstable_snapshot_) return unstable_snapshot_->metadata().index();
  return storage_->last_index();
}

Result<Term> RaftLog::term(Index i) const {
  // The valid range is [first_index()-1, last_index()]; the entry before the first is the
  // snapshot's, whose term is still known.
  Index dummy = first_index() - 1;
  if (i < dummy || i > last_index()) {
    if (i < dummy) return make_error(ErrorCode::kCompacted, "term of a compacted entry");
    return make_error(ErrorCode::kUnavailable, "term beyond the last index");
  }
  if (auto t = unstable_term(i)) return *t;
  return storage_->term(i);
}

Term RaftLog::term_or_zero(Index i) const {
  auto t = term(i);
  return t ? *t : 0;
}

bool RaftLog::match_term(Index i, Term t) const {
  auto got = term(i);
  return got && *got == t;
}

bool RaftLog::is_up_to_date(Index lasti, Term t) const {
  return t > last_term() || (t == last_term() && lasti >= last_index());
}

Index RaftLog::find_conflict(const std::vector<pb::Entry>& ents) const {
  for (const auto& e : ents) {
    if (!match_term(e.index(), e.term())) return e.index();
  }
  return 0;
}

std::pair<Index, Term> RaftLog::find_conflict_by_term(Index index, Term t) const {
  for (; index > 0; --index) {
    auto our = term(index);
    if (!our) return {index, 0};  // compacted or unavailable: stop here
    if (*our <= t) return {index, *our};
  }
  return {0, 0};
}

std::optional<Index> RaftLog::maybe_append(Index index, Term log_term, Index committed,
                                           const std::vector<pb::Entry>& ents) {
  if (!match_term(index, log_term)) return std::nullopt;
  Index lastnewi = index + ents.size();
  Index ci = find_conflict(ents);
  if (ci != 0) {
    ASPEN_ASSERT_MSG(ci > committed_, "conflict with a committed entry");
    std::vector<pb::Entry> suffix(ents.begin() + static_cast<std::ptrdiff_t>(ci - index - 1),
                                  ents.end());
    append(suffix);
  }
  commit_to(std::min(committed, lastnewi));
  return lastnewi;
}

Index RaftLog::append(const std::vector<pb::Entry>& ents) {
  if (ents.empty()) return last_index();
  ASPEN_ASSERT_MSG(ents.front().index() - 1 >= committed_, "append would overwrite committed entries");
  truncate_and_append_unstable(ents);
  return last_index();
}

void RaftLog::truncate_and_append_unstable(const std::vector<pb::Entry>& ents) {
  Index after = ents.front().index();
  if (after == offset_ + unstable_.size()) {
    unstable_.insert(unstable_.end(), ents.begin(), ents.end());
  } else if (after <= offset_) {
    // Replaces the whole unstable tail (and shadows persisted entries from `after` on).
    offset_ = after;
    unstable_ = ents;
  } else {
    unstable_.resize(after - offset_);
    unstable_.insert(unstable_.end(), ents.begin(), ents.end());
  }
}

Result<std::vector<pb::Entry>> RaftLog::slice(Index lo, Index hi, uint64_t max_size_bytes) const {
  ASPEN_ASSERT(lo <= hi);
  if (lo < first_index()) return make_error(ErrorCode::kCompacted, "slice of compacted entries");
  ASPEN_ASSERT_MSG(hi <= last_index() + 1, "slice beyond the last index");
  std::vector<pb::Entry> out;
  if (lo == hi) return out;
  if (lo < offset_) {
    auto stored = storage_->entries(lo, std::min(hi, offset_), max_size_bytes);
    if (!stored) return std::unexpected(stored.error());
    out = std::move(*stored);
    // A size-limited read from storage stops early; do not continue into the unstable tail.
    if (out.size() < std::min(hi, offset_) - lo) return out;
  }
  if (hi > offset_) {
    uint64_t size = 0;
    for (const auto& e : out) size += entry_size_bytes(e);
    for (Index i = std::max(lo, offset_); i < hi; ++i) {
      const pb::Entry& e = unstable_[i - offset_];
      size += entry_size_bytes(e);
      if (!out.empty() && size > max_size_bytes) break;
      out.push_back(e);
    }
  }
  return out;
}

Result<std::vector<pb::Entry>> RaftLog::entries_from(Index lo, uint64_t max_size_bytes) const {
  if (lo > last_index()) return std::vector<pb::Entry>{};
  return slice(lo, last_index() + 1, max_size_bytes);
}

bool RaftLog::has_next_committed_entries() const {
  return committed_ > applied_ && !unstable_snapshot_;
}

std::vector<pb::Entry> RaftLog::next_committed_entries() const {
  if (!has_next_committed_entries()) return {};
  Index lo = std::max(applied_ + 1, first_index());
  auto ents = slice(lo, committed_ + 1, max_committed_size_per_ready_);
  ASPEN_ASSERT_MSG(ents.has_value(), "committed entries must be readable");
  return std::move(*ents);
}

Result<pb::Snapshot> RaftLog::snapshot() const {
  if (unstable_snapshot_) return *unstable_snapshot_;
  return storage_->snapshot();
}

bool RaftLog::maybe_commit(Index max_index, Term t) {
  if (max_index > committed_ && term_or_zero(max_index) == t) {
    commit_to(max_index);
    return true;
  }
  return false;
}

void RaftLog::commit_to(Index to_commit) {
  if (to_commit <= committed_) return;  // never decrease commit
  ASPEN_ASSERT_MSG(to_commit <= last_index(), "commit index beyond the log (corrupt or truncated?)");
  committed_ = to_commit;
}

void RaftLog::applied_to(Index i) {
  if (i == 0) return;
  ASPEN_ASSERT_MSG(i <= committed_ && i >= applied_, "applied index out of range");
  applied_ = i;
}

void RaftLog::stable_to(Index i, Term t) {
  auto got = unstable_term(i);
  if (!got) return;
  // Only if the entry is still the one we handed out (not replaced by a newer leader's).
  if (*got == t && i >= offset_) {
    unstable_.erase(unstable_.begin(), unstable_.begin() + static_cast<std::ptrdiff_t>(i + 1 - offset_));
    offset_ = i + 1;
  }
}

void RaftLog::stable_snap_to(Index i) {
  if (unstable_snapshot_ && unstable_snapshot_->metadata().index() == i) unstable_snapshot_.reset();
}

void RaftLog::restore(const pb::Snapshot& snap) {
  committed_ = snap.metadata().index();
  offset_ = snap.metadata().index() + 1;
  unstable_.clear();
  unstable_snapshot_ = snap;
}

}  // namespace aspen::raft
