// Per-follower replication progress, as the leader sees it (Raft thesis §3.5 and etcd-io/raft's
// Progress): which entries the follower has (match), what to send next (next), and how to send
// it (probe one message at a time, stream optimistically, or wait for a snapshot).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "core/types.h"

namespace aspen::raft {

enum class ProgressState : uint8_t {
  kProbe,      // next is a guess: send one append at a time until the follower accepts
  kReplicate,  // follower is in sync: stream appends, bounded by the inflight window
  kSnapshot,   // follower needs entries we compacted: wait for the snapshot to land
};

const char* progress_state_name(ProgressState s);

// A bounded window of in-flight append messages, identified by their last index.
class Inflights {
 public:
  explicit Inflights(size_t capacity) : capacity_(capacity) {}
  void add(Index last_index);
  // Frees all messages whose last index is <= to (the follower acked them).
  void free_le(Index to);
  void free_first_one() {
    if (count() > 0) free_le(indexes_[head_]);
  }
  bool is_full() const { return indexes_.size() - head_ >= capacity_; }
  size_t count() const { return indexes_.size() - head_; }
  void reset() { indexes_.clear(); head_ = 0; }

 private:
  size_t capacity_;
  std::vector<Index> indexes_;  // ascending; [head_, end) are in flight
  size_t head_ = 0;
};

struct Progress {
  Progress(Index next_index, size_t max_inflight, bool learner)
      : next(next_index), inflights(max_inflight), is_learner(learner) {}

  Index match = 0;
  Index next = 1;
  ProgressState state = ProgressState::kProbe;
  Index pending_snapshot = 0;
  // Heard from this peer since the last CheckQuorum round.
  bool recent_active = false;
  // In probe state: one append is outstanding, wait for its answer (or a heartbeat response).
  bool is_probe_sent = false;
  Inflights inflights;
  bool is_learner = false;
  // The peer's last answer asked to learn each commit index at once (it serves watchers).
  bool wants_commit = false;

  void become_probe();
  void become_replicate();
  void become_snapshot(Index snapshot_index);
  // The follower acked up to n. Returns false if the ack is stale.
  bool maybe_update(Index n);
  // A rejection of an append at `rejected`; `match_hint` is the follower's hint. Returns
  // false if the rejection is stale (refers to an old message).
  bool maybe_decrease_to(Index rejected, Index match_hint);
  // Sending more is pointless now (probe outstanding, window full, or waiting for snapshot).
  bool is_paused() const;
  // Records that entries up to `last` were sent.
  void sent_entries(Index last, size_t count);
  std::string to_string() const;
};

}  // namespace aspen::raft
