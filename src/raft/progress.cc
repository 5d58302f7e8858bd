#include "raft/progress.h"

#include <fmt/format.h>

#include "core/assert.h"

namespace aspen::raft {

const char* progress_state_name(ProgressState s) {
  switch (s) {
    case ProgressState::kProbe: return "probe";
    case ProgressState::kReplicate: return "replicate";
    case ProgressState::kSnapshot: return "snapshot";
  }
  return "?";
}

void Inflights::add(Index last_index) {
  ASPEN_ASSERT_MSG(!is_full(), "inflight window overflow");
  ASPEN_ASSERT(indexes_.size() == head_ || indexes_.back() <= last_index);
  indexes_.push_back(last_index);
}

void Inflights::free_le(Index to) {
  while (head_ < indexes_.size() && indexes_[head_] <= to) ++head_;
  // Compact lazily so add/free stay amortized O(1).
  if (head_ == indexes_.size()) {
    indexes_.clear();
    head_ = 0;
  } else if (head_ > 64 && head_ * 2 > indexes_.size()) {
    indexes_.erase(indexes_.begin(), indexes_.begin() + static_cast<std::ptrdiff_t>(head_));
    head_ = 0;
  }
}

void Progress::become_probe() {
  // After a snapshot, the follower has at least the snapshot's index.
  if (state == ProgressState::kSnapshot) {
    Index pending = pending_snapshot;
    state = ProgressState::kProbe;
    next = std::max(match + 1, pending + 1);
  } else {
    state = ProgressState::kProbe;
    next = match + 1;
  }
  is_probe_sent = false;
  pending_snapshot = 0;
  inflights.reset();
}

void Progress::become_replicate() {
  state = ProgressState::kReplicate;
  next = match + 1;
  is_probe_sent = false;
  pending_snapshot = 0;
  inflights.reset();
}

void Progress::become_snapshot(Index snapshot_index) {
  state = ProgressState::kSnapshot;
  pending_snapshot = snapshot_index;
  is_probe_sent = false;
  inflights.reset();
}

bool Progress::maybe_update(Index n) {
  bool updated = false;
  if (match < n) {
    match = n;
    updated = true;
    is_probe_sent = false;
  }
  next = std::max(next, n + 1);
  return updated;
}

bool Progress::maybe_decrease_to(Index rejected, Index match_hint) {
  if (state == ProgressState::kReplicate) {
    // A rejection at or below match is stale: the follower already acked past it.
    if (rejected <= match) return false;
    next = match + 1;
    return true;
  }
  // Probe: only the rejection of the most recent probe (at next-1) counts.
  if (next - 1 != rejected) return false;
  next = std::max(std::min(rejected, match_hint + 1), Index{1});
  is_probe_sent = false;
  return true;
}

bool Progress::is_paused() const {
  switch (state) {
    case ProgressState::kProbe: return is_probe_sent;
    case ProgressState::kReplicate: return inflights.is_full();
    case ProgressState::kSnapshot: return true;
  }
  return true;
}

void Progress::sent_entries(Index last, size_t count) {
  switch (state) {
    case ProgressState::kReplicate:
      if (count > 0) {
        next = last + 1;
        inflights.add(last);
      }
      break;
    case ProgressState::kProbe:
      if (count > 0) is_probe_sent = true;
      break;
    case ProgressState::kSnapshot:
      ASPEN_UNREACHABLE();
  }
}

std::string Progress::to_string() const {
  return fmt::format("{} match={} next={}{}{}", progress_state_name(state), match, next,
                     is_learner ? " learner" : "",
                     state == ProgressState::kSnapshot ? fmt::format(" pending_snap={}", pending_snapshot) : "");
}

}  // namespace aspen::raft
