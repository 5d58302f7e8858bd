// The Raft core's read-only view of what has been persisted, and an in-memory implementation.
//
// RaftCore never writes storage itself: it hands entries, hard state and snapshots to its
// caller through Ready, and reads back persisted entries through LogStorage. The production
// store (LMDB) and the simulator's crashable disk both implement this interface.
// MemoryLogStorage follows etcd-io/raft's MemoryStorage: ents_[0] is a dummy entry holding
// the index and term of the last compacted (snapshotted) entry.
#pragma once

#include <vector>

#include "aspen/raft.pb.h"
#include "core/error.h"
#include "core/types.h"

namespace aspen::raft {

namespace pb = aspen::raftpb;

struct InitialState {
  pb::HardState hard_state;
  pb::ConfState conf_state;
};

class LogStorage {
 public:
  virtual ~LogStorage() = default;

  virtual InitialState initial_state() const = 0;
  // Entries in [lo, hi), limited to max_size_bytes but always at least one entry when lo < hi.
  // kCompacted if lo <= the compacted index; the range must not exceed last_index() + 1.
  virtual Result<std::vector<pb::Entry>> entries(Index lo, Index hi,
                                                 uint64_t max_size_bytes) const = 0;
  // Term of entry i, for i in [first_index()-1, last_index()]. kCompacted below that range,
  // kUnavailable above it.
  virtual Result<Term> term(Index i) const = 0;
  virtual Index first_index() const = 0;
  virtual Index last_index() const = 0;
  // The most recent snapshot. kUnavailableSnapshot if one is being produced (retry later).
  virtual Result<pb::Snapshot> snapshot() const = 0;
};

class MemoryLogStorage final : public LogStorage {
 public:
  MemoryLogStorage();

  InitialState initial_state() const override;
  Result<std::vector<pb::Entry>> entries(Index lo, Index hi,
                                         uint64_t max_size_bytes) const override;
  Result<Term> term(Index i) const override;
  Index first_index() const override;
  Index last_index() const override;
  Result<pb::Snapshot> snapshot() const override;

  void set_hard_state(const pb::HardState& hs) { hard_state_ = hs; }
  // The membership as of the state machine's applied index (persisted with it).
  void set_conf_state(const pb::ConfState& cs) { conf_state_ = cs; }
  const pb::HardState& hard_state() const { return hard_state_; }
  // Replaces the whole log with the snapshot (the state machine is replaced by the caller).
  Status apply_snapshot(const pb::Snapshot& snap);
  // Records a snapshot of the state machine as of index i (i <= last applied, > snapshot index).
  Result<pb::Snapshot> create_snapshot(Index i, const pb::ConfState* cs, std::string data);
  // Discards entries up to and including compact_index (which must be covered by a snapshot
  // or be <= the applied index in the caller's judgement).
  Status compact(Index compact_index);
  // Appends entries, truncating any existing suffix that they overwrite. Entries must be
  // contiguous and start at or before last_index() + 1.
  Status append(const std::vector<pb::Entry>& entries);
  // Bytes of the entries held (entry_size_bytes each): O(entries).
  uint64_t size_bytes() const;

 private:
  Index offset() const { return static_cast<Index>(ents_.front().index()); }

  pb::HardState hard_state_;
  pb::ConfState conf_state_;
  pb::Snapshot snapshot_;
  std::vector<pb::Entry> ents_;  // ents_[i] has raft index offset() + i
};

uint64_t entry_size_bytes(const pb::Entry& e);

}  // namespace aspen::raft
