// Fault injection for the simulated cluster: crashes and restarts, partitions, membership
// changes and leadership transfers. Message loss and duplication are in send_message().
#include <fmt/format.h>

#include <algorithm>

#include "core/assert.h"
#include "sim/internal/cluster.h"

namespace aspen::sim {

namespace {
constexpr uint64_t kUsPerMs = 1000;
}

void Cluster::schedule_fault() {
  // Exponential-ish spacing: uniform in [0, 2 * mean].
  at(rng_.range(0, 2 * opt_.mean_fault_interval_ms) * kUsPerMs, [this] {
    if (phase_ != Phase::kSafety) return;
    inject_fault();
    schedule_fault();
  });
}

void Cluster::inject_fault() {
  std::vector<void (Cluster::*)()> kinds;
  if (opt_.faults.crash) kinds.push_back(&Cluster::fault_crash);
  if (opt_.faults.partition) kinds.push_back(&Cluster::fault_partition);
  if (opt_.faults.membership) kinds.push_back(&Cluster::fault_membership);
  // Seeds that split joint configurations make membership changes twice as often.
  if (opt_.faults.membership && is_splitting_joint_configs()) kinds.push_back(&Cluster::fault_membership);
  if (opt_.faults.transfer) kinds.push_back(&Cluster::fault_transfer);
  if (kinds.empty()) return;
  (this->*kinds[rng_.uniform(kinds.size())])();
}

void Cluster::fault_crash() {
  std::vector<SimNode*> up;
  for (auto& [id, n] : nodes_) {
    if (n->is_up) up.push_back(n.get());
  }
  if (up.empty()) return;
  // Prefer the leader now and then: leader crashes are where the interesting bugs live.
  SimNode* victim = up[rng_.uniform(up.size())];
  if (SimNode* leader = current_leader(); leader != nullptr && rng_.chance(1, 3)) victim = leader;
  crash_and_restart_later(*victim);
}

void Cluster::crash_and_restart_later(SimNode& victim, uint64_t min_down_ms, uint64_t max_down_ms) {
  crash_node(victim);
  NodeId id = victim.id;
  uint64_t down_ms = rng_.range(min_down_ms, max_down_ms);
  at(down_ms * kUsPerMs, [this, id] {
    SimNode* n = node(id);
    if (n != nullptr && !n->is_up && !n->is_retired && phase_ == Phase::kSafety) start_node(*n);
  });
}

void Cluster::maybe_restart_after_read_request(SimNode& n, const std::vector<pb::Message>& sent) {
  // BUGGIFY: a node dies right after asking the leader for a read point and comes back while
  // the leader may still hold the request, so that answers meant for its earlier life meet
  // the requests of its new one (simulator seed 914173 found a stale read this way).
  if (phase_ != Phase::kSafety || !opt_.faults.crash || opt_.restart_after_read_request_per_mille == 0) return;
  bool has_asked = std::any_of(sent.begin(), sent.end(), [&](const pb::Message& m) {
    return m.type() == pb::MSG_READ_INDEX && m.to() != n.id;
  });
  if (!has_asked || !rng_.chance(opt_.restart_after_read_request_per_mille, 1000)) return;
  trace(fmt::format("node {} crashes right after asking for a read point", n.id));
  ++stats_.restarts_after_read_request;
  crash_and_restart_later(n, 10, 1500);
}

void Cluster::fault_partition() {
  if (is_partitioned_) return;
  std::vector<NodeId> ids;
  for (auto& [id, n] : nodes_) {
    if (!n->is_retired) ids.push_back(id);
  }
  if (ids.size() < 2) return;
  std::set<NodeId> side;
  for (NodeId id : ids) {
    if (rng_.chance(1, 2)) side.insert(id);
  }
  // Sometimes isolate exactly the leader.
  if (SimNode* leader = current_leader(); leader != nullptr && rng_.chance(1, 3)) side = {leader->id};
  if (side.empty() || side.size() == ids.size()) return;
  // Drawn in this order (arguments would be evaluated in an unspecified one).
  const bool is_asymmetric = rng_.chance(1, 3);
  const uint64_t heal_after_ms = rng_.range(500, 10000);
  start_partition(side, is_asymmetric, heal_after_ms);
}

void Cluster::start_partition(const std::set<NodeId>& side, bool is_asymmetric, uint64_t heal_after_ms) {
  ASPEN_ASSERT(!is_partitioned_ && !side.empty());
  std::vector<NodeId> ids;
  for (auto& [id, n] : nodes_) {
    if (!n->is_retired) ids.push_back(id);
  }
  for (NodeId a : side) {
    for (NodeId b : ids) {
      if (side.contains(b)) continue;
      blocked_.insert({a, b});
      if (!is_asymmetric) blocked_.insert({b, a});
    }
  }
  is_partitioned_ = true;
  const uint64_t generation = ++partition_generation_;
  ++stats_.partitions;
  if (SimNode* leader = current_leader(); leader != nullptr && leader->core->tracker().config.voters.is_joint()) {
    mark(Situation::kPartitionInJointConfig);
  }
  trace(fmt::format("partition{}: {} nodes cut off", is_asymmetric ? " (one-way)" : "", side.size()));
  note_event(10, side.size(), is_asymmetric);
  at(heal_after_ms * kUsPerMs, [this, generation] {
    if (generation != partition_generation_) return;  // replaced by a later partition
    blocked_.clear();
    is_partitioned_ = false;
    trace("partition healed");
  });
}

// ---------------------------------------------------------------------------------------
// Targeted faults. Figure 8 (Raft §5.4.2) needs an entry on a minority, a leader of a later
// term that writes a different entry at its index and dies before that spreads, the first
// leader back in an even later term, and it losing leadership again right after it
// replicated the old entry: several faults each at a precise moment. Random timing almost
// never lines them up (0 of 22,000 seeds); these put faults at those moments, each with a
// rate drawn per seed. Each may only do what a real cluster can suffer.

// A down time of a few election timeouts: short enough that the crashed leader is back to
// compete in the next elections, which is where the interleavings live.
uint64_t Cluster::targeted_down_ms() {
  return rng_.range(10, 3 * uint64_t{opt_.knobs.election_timeout_ms});
}

// The moments a leader's newest state lives on the fewest nodes: the sync of the first entry
// of its term (nobody else has it yet) and a sync that moves its commit index over entries
// of earlier terms (it alone knows they are committed: Figure 8's moment). Commits of the
// leader's own entries later in its term are spared: crashing at every one of them left
// the clients of these seeds almost no work done (under 10 % of the operations).
Cluster::SyncCrash Cluster::draw_leader_crash_after_sync(const SimNode& n, const raft::Ready& rd,
                                                          bool commits_old_term_entry) {
  if (phase_ != Phase::kSafety || !opt_.faults.targeted || opt_.leader_crash_after_sync_per_mille == 0) {
    return SyncCrash::kNone;
  }
  if (!n.core->is_leader()) return SyncCrash::kNone;
  const Term term = n.core->term();
  const bool has_first_entry_of_term = std::any_of(rd.entries.begin(), rd.entries.end(), [&](const pb::Entry& e) {
    return e.term() == term && n.store->term(e.index() - 1).value_or(0) != term;
  });
  if (!has_first_entry_of_term && !commits_old_term_entry) return SyncCrash::kNone;
  if (!rng_.chance(opt_.leader_crash_after_sync_per_mille, 1000)) return SyncCrash::kNone;
  ++stats_.targeted_faults;
  return rng_.chance(1, 2) ? SyncCrash::kBeforeSend : SyncCrash::kAfterSend;
}

void Cluster::maybe_fault_after_election(SimNode& leader) {
  if (phase_ != Phase::kSafety || !opt_.faults.targeted || opt_.election_fault_per_mille == 0) return;
  if (!rng_.chance(opt_.election_fault_per_mille, 1000)) return;
  // Within about two round trips: before, during or just after its first entry spreads.
  const uint64_t window_us = 2 * (2 * opt_.net_delay_max_us + opt_.disk_latency_max_us);
  NodeId id = leader.id;
  uint64_t inc = leader.incarnation;
  Term term = leader.core->term();
  at(rng_.range(0, window_us), [this, id, inc, term] {
    SimNode* n = node(id);
    if (phase_ != Phase::kSafety || n == nullptr || !n->is_up || n->incarnation != inc ||
        !n->core->is_leader() || n->core->term() != term) {
      return;
    }
    ++stats_.targeted_faults;
    if (!is_partitioned_ && rng_.chance(1, 3)) {
      trace(fmt::format("leader {} of term {} is isolated right after its election", id, term));
      const bool is_asymmetric = rng_.chance(1, 3);
      start_partition({id}, is_asymmetric, targeted_down_ms());
      return;
    }
    trace(fmt::format("leader {} of term {} crashes right after its election", id, term));
    crash_and_restart_later(*n, 10, targeted_down_ms());
  });
}

void Cluster::maybe_partition_after_append(const pb::Message& m, uint64_t delivery_delay_us) {
  if (phase_ != Phase::kSafety || !opt_.faults.targeted || opt_.partition_after_append_per_mille == 0) return;
  if (m.type() != pb::MSG_APP || m.entries_size() == 0 || is_partitioned_) return;
  if (!rng_.chance(opt_.partition_after_append_per_mille, 1000)) return;
  NodeId leader = m.from();
  NodeId to = m.to();
  // One microsecond after the append lands: the follower has it, its answer will not return.
  at(delivery_delay_us + 1, [this, leader, to] {
    if (phase_ != Phase::kSafety || is_partitioned_) return;
    SimNode* n = node(leader);
    if (n == nullptr || n->is_retired) return;
    ++stats_.targeted_faults;
    trace(fmt::format("leader {} is isolated right after an append reached node {}", leader, to));
    start_partition({leader}, false, targeted_down_ms());
  });
}

// The process dies between sending a Ready's early messages and the end of that Ready's
// fsync: a leader's followers may hold, and acknowledge, entries its own disk never gets.
// Late in the fsync, so that their acknowledgements may have come back (and commit counted
// the leader's unsynced copy). Only a node that sent before its sync qualifies: a leader's
// appends (take_early_messages), and nothing else unless a rule is broken.
void Cluster::maybe_crash_in_sync(SimNode& n, const node::ReadyCycle::Step& step, uint64_t sync_latency_us) {
  if (phase_ != Phase::kSafety || !opt_.faults.targeted || opt_.crash_in_sync_per_mille == 0) return;
  if (!n.is_up || step.ready->entries.empty() || step.early.empty() || sync_latency_us < 4) return;
  if (!rng_.chance(opt_.crash_in_sync_per_mille, 1000)) return;
  NodeId id = n.id;
  uint64_t inc = n.incarnation;
  at(rng_.range(sync_latency_us / 2, sync_latency_us - 1), [this, id, inc] {
    SimNode* p = node(id);
    if (phase_ != Phase::kSafety || p == nullptr || !p->is_up || p->incarnation != inc || !p->is_persisting()) return;
    ++stats_.targeted_faults;
    trace(fmt::format("node {} crashes while its fsync is in flight, after its early messages left", id));
    crash_and_restart_later(*p, 10, targeted_down_ms());
  });
}

// Joint consensus (§6) needs a majority of each half for every election and every commit.
// A partition in which each side holds a majority of one half only is where a rule that
// counts one half alone, or counts a vote in the wrong half, makes a difference: the
// leader's side can then commit, or elect, without the other half.
void Cluster::maybe_split_joint_config(NodeId leader, const raft::JointConfig& cfg, const char* when) {
  if (phase_ != Phase::kSafety || !opt_.faults.targeted || opt_.joint_split_per_mille == 0) return;
  if (!cfg.is_joint() || !rng_.chance(opt_.joint_split_per_mille, 1000)) return;
  const raft::VoterSet all = cfg.ids();
  std::vector<NodeId> ids(all.begin(), all.end());
  if (ids.size() > 16) return;
  auto count_in = [](const std::set<NodeId>& side, const raft::VoterSet& half) {
    size_t k = 0;
    for (NodeId id : half) k += side.contains(id) ? 1 : 0;
    return k;
  };
  auto has_majority = [&](const std::set<NodeId>& side, const raft::VoterSet& half) {
    return count_in(side, half) >= half.size() / 2 + 1;
  };
  std::vector<std::set<NodeId>> splits;
  for (uint32_t bits = 0; bits < (1u << ids.size()); ++bits) {
    std::set<NodeId> side;
    std::set<NodeId> rest;
    for (size_t i = 0; i < ids.size(); ++i) ((bits >> i) & 1 ? side : rest).insert(ids[i]);
    if (!side.contains(leader)) continue;
    const bool side_in = has_majority(side, cfg.incoming);
    const bool side_out = has_majority(side, cfg.outgoing);
    // Each side a majority of one half, not of the other.
    if (side_in == side_out) continue;
    if (has_majority(rest, side_in ? cfg.outgoing : cfg.incoming) && !has_majority(rest, side_in ? cfg.incoming : cfg.outgoing)) {
      splits.push_back(std::move(side));
    }
  }
  if (splits.empty()) return;
  std::set<NodeId> side = splits[rng_.uniform(splits.size())];
  ++stats_.targeted_faults;
  if (is_partitioned_) {
    // The split replaces a partition that stands: it is the rarer of the two.
    blocked_.clear();
    is_partitioned_ = false;
  }
  trace(fmt::format("joint configuration {} split as leader {} {} it: {} nodes on the leader's side", cfg.to_string(),
                    leader, when, side.size()));
  start_partition(side, false, targeted_down_ms());
}

// In the seeds that split joint configurations, half of the single changes go through a
// joint configuration too (a legal choice, §6; etcd's explicit transition): elections and
// crashes inside joint configurations, beyond the replacements. Other seeds draw nothing
// here and run as before.
bool Cluster::is_splitting_joint_configs() const {
  return opt_.faults.targeted && opt_.joint_split_per_mille > 0;
}

void Cluster::maybe_force_joint(pb::ConfChange& cc) {
  if (!is_splitting_joint_configs()) return;
  if (rng_.chance(1, 2)) cc.set_transition(pb::TRANSITION_JOINT_IMPLICIT);
}

void Cluster::fault_membership() {
  SimNode* leader = current_leader();
  if (leader == nullptr) return;
  const auto& cfg = leader->core->tracker().config;
  if (cfg.voters.is_joint()) return;
  std::vector<NodeId> voters(cfg.voters.incoming.begin(), cfg.voters.incoming.end());
  std::vector<NodeId> learners(cfg.learners.begin(), cfg.learners.end());
  pb::ConfChange cc;
  uint64_t roll = rng_.uniform(4);
  // Seeds that split joint configurations replace voters (the change a split can cut in
  // two: an added voter and a removed one) in half of the changes that could.
  if (is_splitting_joint_configs() && !learners.empty() && voters.size() > 1 && rng_.chance(1, 2)) roll = 3;
  auto add_change = [&cc](pb::ConfChangeType type, NodeId id) {
    auto* c = cc.add_changes();
    c->set_type(type);
    c->set_node_id(id);
  };
  std::optional<NodeId> new_node;
  if (roll == 0 && nodes_.size() < opt_.max_nodes) {
    new_node = next_node_id_++;
    add_change(pb::CONF_CHANGE_ADD_LEARNER, *new_node);
  } else if (roll == 1 && !learners.empty()) {
    add_change(pb::CONF_CHANGE_ADD_VOTER, learners[rng_.uniform(learners.size())]);
    maybe_force_joint(cc);
  } else if (roll == 2 && voters.size() > std::max<size_t>(1, opt_.initial_voters - 1)) {
    // May remove the leader itself.
    add_change(pb::CONF_CHANGE_REMOVE_NODE, voters[rng_.uniform(voters.size())]);
    maybe_force_joint(cc);
  } else if (roll == 3 && !learners.empty() && voters.size() > 1) {
    // Replace a voter by a learner through joint consensus.
    add_change(pb::CONF_CHANGE_ADD_VOTER, learners[rng_.uniform(learners.size())]);
    add_change(pb::CONF_CHANGE_REMOVE_NODE, voters[rng_.uniform(voters.size())]);
    cc.set_transition(rng_.chance(1, 2) ? pb::TRANSITION_AUTO : pb::TRANSITION_JOINT_IMPLICIT);
  } else {
    return;
  }
  if (new_node) {
    SimNode& n = add_node(*new_node, pb::ConfState{});
    start_node(n);
  }
  auto s = leader->core->propose_conf_change(cc);
  trace(fmt::format("leader {} proposes {}: {}", leader->id, raft::describe_conf_change(cc),
                    s ? "ok" : s.error().to_string()));
  note_event(11, leader->id, cc.changes_size());
  if (s && (cc.changes_size() > 1 || cc.transition() != pb::TRANSITION_AUTO)) {
    // The joint configuration this entry enters: the leader's side must not commit it
    // without the outgoing half (or the incoming one).
    raft::JointConfig joint;
    joint.outgoing = cfg.voters.incoming;
    joint.incoming = cfg.voters.incoming;
    for (const auto& c : cc.changes()) {
      if (c.type() == pb::CONF_CHANGE_ADD_VOTER) joint.incoming.insert(c.node_id());
      if (c.type() == pb::CONF_CHANGE_REMOVE_NODE) joint.incoming.erase(c.node_id());
    }
    if (joint.incoming != joint.outgoing) maybe_split_joint_config(leader->id, joint, "proposes");
  }
  maybe_take_ready(*leader);
}

void Cluster::fault_transfer() {
  SimNode* leader = current_leader();
  if (leader == nullptr) return;
  const auto& voters = leader->core->tracker().config.voters.incoming;
  std::vector<NodeId> others;
  for (NodeId id : voters) {
    if (id != leader->id) others.push_back(id);
  }
  if (others.empty()) return;
  NodeId to = others[rng_.uniform(others.size())];
  ++stats_.transfers;
  trace(fmt::format("leader {} transfers leadership to {}", leader->id, to));
  note_event(12, leader->id, to);
  leader->core->transfer_leadership(to);
  maybe_take_ready(*leader);
}

void Cluster::heal_all() {
  blocked_.clear();
  is_partitioned_ = false;
  for (auto& [id, n] : nodes_) {
    if (!n->is_up && !n->is_retired) start_node(*n);
  }
}

bool Cluster::is_blocked(NodeId from, NodeId to) const { return blocked_.contains({from, to}); }

}  // namespace aspen::sim
