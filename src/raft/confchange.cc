#include "raft/confchange.h"

#include <fmt/format.h>

#include <set>

#include "core/assert.h"
#include "core/limits.h"

namespace aspen::raft {

namespace {
size_t symmetric_difference_size(const VoterSet& a, const VoterSet& b) {
  size_t n = 0;
  for (NodeId id : a) n += b.contains(id) ? 0 : 1;
  for (NodeId id : b) n += a.contains(id) ? 0 : 1;
  return n;
}
}  // namespace

void ConfChanger::init_progress(ConfigAndProgress& cp, NodeId id, bool is_learner) const {
  if (!is_learner) {
    cp.config.voters.incoming.insert(id);
  } else {
    cp.config.learners.insert(id);
  }
  // Start optimistically at the leader's last index; a rejection walks it back (probe).
  Progress pr(std::max<Index>(last_index_, 1), max_inflight_, is_learner);
  // A new member counts as active so that CheckQuorum does not depose the leader right after
  // adding it, before it had a chance to answer.
  pr.recent_active = true;
  cp.progress.insert_or_assign(id, std::move(pr));
}

void ConfChanger::make_voter(ConfigAndProgress& cp, NodeId id) const {
  auto it = cp.progress.find(id);
  if (it == cp.progress.end()) {
    init_progress(cp, id, false);
    return;
  }
  it->second.is_learner = false;
  cp.config.learners.erase(id);
  cp.config.learners_next.erase(id);
  cp.config.voters.incoming.insert(id);
}

void ConfChanger::make_learner(ConfigAndProgress& cp, NodeId id) const {
  auto it = cp.progress.find(id);
  if (it == cp.progress.end()) {
    init_progress(cp, id, true);
    return;
  }
  if (it->second.is_learner) return;
  // remove() may drop the progress; keep it, the node stays in the cluster as a learner.
  Progress saved = it->second;
  remove(cp, id);
  auto& pr = cp.progress.insert_or_assign(id, std::move(saved)).first->second;
  // A voter of the outgoing config cannot be a learner yet: it becomes one when the joint
  // config is left.
  if (cp.config.voters.outgoing.contains(id)) {
    cp.config.learners_next.insert(id);
  } else {
    pr.is_learner = true;
    cp.config.learners.insert(id);
  }
}

void ConfChanger::remove(ConfigAndProgress& cp, NodeId id) const {
  if (!cp.progress.contains(id)) return;
  cp.config.voters.incoming.erase(id);
  cp.config.learners.erase(id);
  cp.config.learners_next.erase(id);
  // Still a voter of the outgoing config: keep tracking it until the joint config is left.
  if (!cp.config.voters.outgoing.contains(id)) cp.progress.erase(id);
}

Status ConfChanger::apply(ConfigAndProgress& cp,
                          const std::vector<pb::ConfChangeSingle>& changes) const {
  for (const auto& cc : changes) {
    if (cc.node_id() == kNoNode) continue;  // etcd convention: a no-op change
    switch (cc.type()) {
      case pb::CONF_CHANGE_ADD_VOTER: make_voter(cp, cc.node_id()); break;
      case pb::CONF_CHANGE_ADD_LEARNER: make_learner(cp, cc.node_id()); break;
      case pb::CONF_CHANGE_REMOVE_NODE: remove(cp, cc.node_id()); break;
      default:
        return make_error(ErrorCode::kInvalidArgument, fmt::format("unknown conf change type {}",
                                                                   static_cast<int>(cc.type())));
    }
  }
  if (cp.config.voters.incoming.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "the change removes all voters");
  }
  if (cp.config.voters.incoming.size() > limits::kMaxClusterVoters) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("too many voters: the limit is {}", limits::kMaxClusterVoters));
  }
  if (cp.config.learners.size() > limits::kMaxClusterLearners) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("too many learners: the limit is {}", limits::kMaxClusterLearners));
  }
  return {};
}

Result<ConfigAndProgress> ConfChanger::enter_joint(
    bool auto_leave, const std::vector<pb::ConfChangeSingle>& changes) const {
  if (base_.config.voters.is_joint()) {
    return make_error(ErrorCode::kInvalidArgument, "already in a joint configuration");
  }
  if (base_.config.voters.incoming.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "cannot enter a joint config from an empty one");
  }
  ConfigAndProgress cp = base_;
  cp.config.voters.outgoing = cp.config.voters.incoming;
  if (auto s = apply(cp, changes); !s) return std::unexpected(s.error());
  cp.config.auto_leave = auto_leave;
  check_config_invariants(cp);
  return cp;
}

Result<ConfigAndProgress> ConfChanger::apply(const pb::ConfChange& cc) const {
  std::vector<pb::ConfChangeSingle> changes(cc.changes().begin(), cc.changes().end());
  if (changes.empty()) return leave_joint();
  // Several changes at once, or an explicit request, go through a joint configuration.
  bool use_joint = cc.transition() != pb::TRANSITION_AUTO || changes.size() > 1;
  if (use_joint) return enter_joint(cc.transition() != pb::TRANSITION_JOINT_EXPLICIT, changes);
  return simple(changes);
}

Result<ConfigAndProgress> ConfChanger::leave_joint() const {
  if (!base_.config.voters.is_joint()) {
    return make_error(ErrorCode::kInvalidArgument, "not in a joint configuration");
  }
  ConfigAndProgress cp = base_;
  for (NodeId id : cp.config.learners_next) {
    cp.config.learners.insert(id);
    cp.progress.at(id).is_learner = true;
  }
  cp.config.learners_next.clear();
  for (NodeId id : cp.config.voters.outgoing) {
    if (!cp.config.voters.incoming.contains(id) && !cp.config.learners.contains(id)) {
      cp.progress.erase(id);
    }
  }
  cp.config.voters.outgoing.clear();
  cp.config.auto_leave = false;
  check_config_invariants(cp);
  return cp;
}

Result<ConfigAndProgress> ConfChanger::simple(const std::vector<pb::ConfChangeSingle>& changes) const {
  if (base_.config.voters.is_joint()) {
    return make_error(ErrorCode::kInvalidArgument, "cannot apply a simple change in a joint config");
  }
  ConfigAndProgress cp = base_;
  if (auto s = apply(cp, changes); !s) return std::unexpected(s.error());
  if (symmetric_difference_size(base_.config.voters.incoming, cp.config.voters.incoming) > 1) {
    return make_error(ErrorCode::kInvalidArgument,
                      "more than one voter changed without joint consensus");
  }
  check_config_invariants(cp);
  return cp;
}

Status validate_conf_state(const pb::ConfState& cs) {
  auto bad = [](std::string_view why) {
    return make_error(ErrorCode::kInvalidArgument, fmt::format("invalid membership: {}", why));
  };
  if (cs.voters().empty()) return bad("no voters");
  if (static_cast<size_t>(cs.voters_size()) > limits::kMaxClusterVoters ||
      static_cast<size_t>(cs.voters_outgoing_size()) > limits::kMaxClusterVoters ||
      static_cast<size_t>(cs.learners_size()) > limits::kMaxClusterLearners ||
      static_cast<size_t>(cs.learners_next_size()) > limits::kMaxClusterVoters) {
    return bad("more members than the cluster limits allow");
  }
  std::set<NodeId> voters(cs.voters().begin(), cs.voters().end());
  std::set<NodeId> outgoing(cs.voters_outgoing().begin(), cs.voters_outgoing().end());
  for (const auto* ids : {&cs.voters(), &cs.voters_outgoing(), &cs.learners(), &cs.learners_next()}) {
    for (NodeId id : *ids) {
      if (id == kNoNode) return bad("node id 0");
    }
  }
  for (NodeId id : cs.learners()) {
    if (voters.contains(id) || outgoing.contains(id)) return bad("a node is both voter and learner");
  }
  for (NodeId id : cs.learners_next()) {
    if (!outgoing.contains(id) || voters.contains(id)) return bad("a next learner is not an outgoing voter only");
  }
  if (outgoing.empty() && (!cs.learners_next().empty() || cs.auto_leave())) {
    return bad("joint-only fields outside a joint configuration");
  }
  return {};
}

ConfigAndProgress restore_conf_state(const pb::ConfState& cs, Index last_index, size_t max_inflight) {
  ConfigAndProgress cp;
  for (NodeId id : cs.voters()) cp.config.voters.incoming.insert(id);
  for (NodeId id : cs.voters_outgoing()) cp.config.voters.outgoing.insert(id);
  for (NodeId id : cs.learners()) cp.config.learners.insert(id);
  for (NodeId id : cs.learners_next()) cp.config.learners_next.insert(id);
  cp.config.auto_leave = cs.auto_leave();
  auto add = [&](NodeId id, bool learner) {
    if (cp.progress.contains(id)) return;
    Progress pr(std::max<Index>(last_index, 1), max_inflight, learner);
    pr.recent_active = true;
    cp.progress.insert_or_assign(id, std::move(pr));
  };
  for (NodeId id : cp.config.voters.incoming) add(id, false);
  for (NodeId id : cp.config.voters.outgoing) add(id, false);
  for (NodeId id : cp.config.learners) add(id, true);
  check_config_invariants(cp);
  return cp;
}

pb::ConfState next_conf_state(const pb::ConfState& cs, const pb::ConfChange& cc) {
  ConfigAndProgress base = restore_conf_state(cs, 1, 1);
  auto next = ConfChanger(base.config, base.progress, 1, 1).apply(cc);
  if (!next) return cs;
  return next->config.to_conf_state();
}

void check_config_invariants(const ConfigAndProgress& cp) {
  const auto& c = cp.config;
  for (NodeId id : c.voters.ids()) ASPEN_ASSERT_MSG(cp.progress.contains(id), "voter without progress");
  for (NodeId id : c.learners) {
    ASPEN_ASSERT_MSG(cp.progress.contains(id), "learner without progress");
    ASPEN_ASSERT_MSG(!c.voters.contains(id), "node is both learner and voter");
    ASPEN_ASSERT(cp.progress.at(id).is_learner);
  }
  for (NodeId id : c.learners_next) {
    ASPEN_ASSERT_MSG(c.voters.outgoing.contains(id), "learner_next not an outgoing voter");
    ASPEN_ASSERT(!cp.progress.at(id).is_learner);
  }
  if (!c.voters.is_joint()) {
    ASPEN_ASSERT(c.learners_next.empty());
    ASPEN_ASSERT(!c.auto_leave);
  }
  for (const auto& [id, pr] : cp.progress) {
    ASPEN_ASSERT_MSG(c.voters.contains(id) || c.learners.contains(id), "progress for a non-member");
  }
}

std::string describe_conf_change(const pb::ConfChange& cc) {
  if (cc.changes().empty()) return "leave-joint";
  std::string out;
  for (const auto& c : cc.changes()) {
    if (!out.empty()) out += ", ";
    const char* what = c.type() == pb::CONF_CHANGE_ADD_VOTER     ? "add-voter"
                       : c.type() == pb::CONF_CHANGE_ADD_LEARNER ? "add-learner"
                                                                 : "remove";
    out += fmt::format("{} {}", what, c.node_id());
  }
  return out;
}

}  // namespace aspen::raft
