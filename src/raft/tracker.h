// ProgressTracker: the membership configuration in force, each member's replication progress,
// and the votes of the current election. Internal to src/raft.
#pragma once

#include <map>
#include <set>

#include "aspen/raft.pb.h"
#include "raft/progress.h"
#include "raft/quorum.h"

namespace aspen::raft {

namespace pb = aspen::raftpb;

struct TrackerConfig {
  JointConfig voters;
  std::set<NodeId> learners;
  // Outgoing voters that become learners when the joint configuration is left. A node is
  // never in learners and a voter set at once; it may be in learners_next and outgoing.
  std::set<NodeId> learners_next;
  bool auto_leave = false;

  pb::ConfState to_conf_state() const;
  std::string to_string() const;
};

using ProgressMap = std::map<NodeId, Progress>;

class ProgressTracker {
 public:
  explicit ProgressTracker(size_t max_inflight) : max_inflight_(max_inflight) {}

  TrackerConfig config;
  ProgressMap progress;
  std::map<NodeId, bool> votes;

  size_t max_inflight() const { return max_inflight_; }
  bool is_singleton() const {
    return config.voters.incoming.size() == 1 && config.voters.outgoing.empty();
  }
  // Largest index replicated on a quorum of voters (joint-aware).
  Index committed() const;
  // Did a quorum hear from us since the last reset? Resets recent_active (CheckQuorum, §6.2).
  bool quorum_active() const;
  void reset_votes() { votes.clear(); }
  void record_vote(NodeId id, bool granted) { votes.try_emplace(id, granted); }
  struct Tally {
    size_t granted = 0;
    size_t rejected = 0;
    VoteResult result = VoteResult::kPending;
  };
  Tally tally_votes() const;
  bool is_voter(NodeId id) const { return config.voters.contains(id); }

 private:
  size_t max_inflight_;
};

}  // namespace aspen::raft
