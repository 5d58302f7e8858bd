// Membership changes by joint consensus (Raft thesis §4.3), as pure functions over a copy of
// the tracker's configuration and progress map.
//
// A change that alters more than one voter goes through a joint configuration C_old,new: the
// leader first commits it (decisions need majorities of both), then leaves it for C_new. A
// single voter change may be applied directly (the two majorities always overlap).
#pragma once

#include <vector>

#include "aspen/raft.pb.h"
#include "core/error.h"
#include "raft/tracker.h"

namespace aspen::raft {

struct ConfigAndProgress {
  TrackerConfig config;
  ProgressMap progress;
};

class ConfChanger {
 public:
  ConfChanger(const TrackerConfig& config, const ProgressMap& progress, Index last_index,
              size_t max_inflight)
      : base_{config, progress}, last_index_(last_index), max_inflight_(max_inflight) {}

  // Dispatches a ConfChange: leave (no changes), joint (several changes or an explicit
  // transition) or simple.
  Result<ConfigAndProgress> apply(const pb::ConfChange& cc) const;
  Result<ConfigAndProgress> enter_joint(bool auto_leave,
                                        const std::vector<pb::ConfChangeSingle>& changes) const;
  Result<ConfigAndProgress> leave_joint() const;
  Result<ConfigAndProgress> simple(const std::vector<pb::ConfChangeSingle>& changes) const;

 private:
  Status apply(ConfigAndProgress& cp, const std::vector<pb::ConfChangeSingle>& changes) const;
  void make_voter(ConfigAndProgress& cp, NodeId id) const;
  void make_learner(ConfigAndProgress& cp, NodeId id) const;
  void remove(ConfigAndProgress& cp, NodeId id) const;
  void init_progress(ConfigAndProgress& cp, NodeId id, bool is_learner) const;

  ConfigAndProgress base_;
  Index last_index_;
  size_t max_inflight_;
};

// Whether a ConfState from elsewhere (a peer's snapshot) is one restore_conf_state accepts:
// voters, no node id 0, no node both voter and learner, learners_next only among outgoing
// voters, joint-only fields only in a joint configuration, sizes within the cluster limits.
Status validate_conf_state(const pb::ConfState& cs);

// Rebuilds configuration and progress from a persisted ConfState (start-up, snapshot).
ConfigAndProgress restore_conf_state(const pb::ConfState& cs, Index last_index,
                                     size_t max_inflight);
// The membership after applying `cc` to `cs`, exactly as RaftCore::apply_conf_change computes
// it (an invalid change leaves it unchanged). Storage uses this to persist the new ConfState
// in the same transaction that applies the entry, without calling into the core.
pb::ConfState next_conf_state(const pb::ConfState& cs, const pb::ConfChange& cc);
// Checks the invariants every configuration must keep; asserts on violation.
void check_config_invariants(const ConfigAndProgress& cp);

// Describes a ConfChange as "add-voter 4, remove 2" for logs and errors.
std::string describe_conf_change(const pb::ConfChange& cc);

}  // namespace aspen::raft
