#include "raft/log_storage.h"

#include <fmt/format.h>

#include "core/assert.h"

namespace aspen::raft {

uint64_t entry_size_bytes(const pb::Entry& e) {
  // Payload plus a fixed allowance for term/index/type; exact protobuf size is not needed
  // for flow control and would cost a serialization pass.
  return e.data().size() + 24;
}

MemoryLogStorage::MemoryLogStorage() { ents_.emplace_back(); }

InitialState MemoryLogStorage::initial_state() const {
  return InitialState{hard_state_, conf_state_};
}

Result<std::vector<pb::Entry>> MemoryLogStorage::entries(Index lo, Index hi,
                                                         uint64_t max_size_bytes) const {
  if (lo <= offset()) return make_error(ErrorCode::kCompacted, "requested entries are compacted");
  ASPEN_ASSERT_MSG(hi <= last_index() + 1, "entries() beyond the last index");
  ASPEN_ASSERT(lo <= hi);
  std::vector<pb::Entry> out;
  uint64_t size = 0;
  for (Index i = lo; i < hi; ++i) {
    const pb::Entry& e = ents_[i - offset()];
    size += entry_size_bytes(e);
    if (!out.empty() && size > max_size_bytes) break;
    out.push_back(e);
  }
  return out;
}

Result<Term> MemoryLogStorage::term(Index i) const {
  if (i < offset()) return make_error(ErrorCode::kCompacted, "term of a compacted entry");
  if (i - offset() >= ents_.size()) {
    return make_error(ErrorCode::kUnavailable, "term of an entry beyond the log");
  }
  return ents_[i - offset()].term();
}

Index MemoryLogStorage::first_index() const { return offset() + 1; }
Index MemoryLogStorage::last_index() const { return offset() + ents_.size() - 1; }
Result<pb::Snapshot> MemoryLogStorage::snapshot() const { return snapshot_; }

Status MemoryLogStorage::apply_snapshot(const pb::Snapshot& snap) {
  if (snap.metadata().index() <= snapshot_.metadata().index()) {
    return make_error(ErrorCode::kInvalidArgument, "snapshot is older than the current one");
  }
  snapshot_ = snap;
  conf_state_ = snap.metadata().conf_state();
  ents_.clear();
  pb::Entry dummy;
  dummy.set_index(snap.metadata().index());
  dummy.set_term(snap.metadata().term());
  ents_.push_back(std::move(dummy));
  return {};
}

Result<pb::Snapshot> MemoryLogStorage::create_snapshot(Index i, const pb::ConfState* cs,
                                                       std::string data) {
  if (i <= snapshot_.metadata().index()) {
    return make_error(ErrorCode::kInvalidArgument, "snapshot index is not newer than the last one");
  }
  if (i < offset()) return make_error(ErrorCode::kCompacted, "snapshot index is below the compacted log");
  ASPEN_ASSERT_MSG(i <= last_index(), "snapshot beyond the last index");
  snapshot_.mutable_metadata()->set_index(i);
  snapshot_.mutable_metadata()->set_term(ents_[i - offset()].term());
  if (cs != nullptr) *snapshot_.mutable_metadata()->mutable_conf_state() = *cs;
  snapshot_.set_data(std::move(data));
  return snapshot_;
}

Status MemoryLogStorage::compact(Index compact_index) {
  if (compact_index <= offset()) return make_error(ErrorCode::kCompacted, "already compacted");
  ASPEN_ASSERT_MSG(compact_index <= last_index(), "compact beyond the last index");
  const auto n = static_cast<std::ptrdiff_t>(compact_index - offset());
  pb::Entry dummy;
  dummy.set_index(compact_index);
  dummy.set_term(ents_[static_cast<size_t>(n)].term());
  std::vector<pb::Entry> kept;
  kept.reserve(ents_.size() - static_cast<size_t>(n));
  kept.push_back(std::move(dummy));
  for (size_t k = static_cast<size_t>(n) + 1; k < ents_.size(); ++k) kept.push_back(std::move(ents_[k]));
  ents_ = std::move(kept);
  return {};
}

Status MemoryLogStorage::append(const std::vector<pb::Entry>& entries) {
  if (entries.empty()) return {};
  Index first = first_index();
  Index last = entries.back().index();
  if (last < first) return {};  // everything is already compacted
  size_t skip = 0;
  if (first > entries.front().index()) skip = static_cast<size_t>(first - entries.front().index());
  Index start = entries[skip].index();
  if (start > last_index() + 1) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("gap in log: appending {} after {}", start, last_index()));
  }
  ents_.resize(static_cast<size_t>(start - offset()));
  for (size_t k = skip; k < entries.size(); ++k) ents_.push_back(entries[k]);
  return {};
}

uint64_t MemoryLogStorage::size_bytes() const {
  uint64_t total = 0;
  // ents_[0] is the dummy entry standing for the snapshot point, not a log entry.
  for (size_t i = 1; i < ents_.size(); ++i) total += entry_size_bytes(ents_[i]);
  return total;
}

}  // namespace aspen::raft
