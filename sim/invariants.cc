// Safety invariants checked after every event, liveness at the end of a run, and the final
// checks (state convergence, no acknowledged write lost, linearizability).
#include <fmt/format.h>

#include <algorithm>

#include "core/assert.h"
#include "kv/command_hlc.h"
#include "sim/internal/cluster.h"

namespace aspen::sim {

void Cluster::check_after_event(SimNode& n) {
  if (!n.is_up) return;
  stats_.max_term = std::max(stats_.max_term, n.core->term());
  if (n.core->is_leader()) check_leader(n);
  if (auto e = watches_.observe(n.id, *n.store); !e.empty()) fail(e);
  if (auto e = past_reads_.observe(n.id, *n.store); !e.empty()) fail(e);
  stats_.past_reads_checked = past_reads_.reads_checked();
  stats_.past_reads_compacted = past_reads_.reads_compacted();
}

// Election safety (§5.2: at most one leader per term) and Leader Completeness (§5.4: a
// leader's log holds every entry committed before its term).
void Cluster::check_leader(SimNode& n) {
  Term t = n.core->term();
  auto [it, inserted] = leader_of_term_.try_emplace(t, n.id);
  if (!inserted) {
    if (it->second != n.id) {
      fail(fmt::format("election safety: nodes {} and {} both lead term {}", it->second, n.id, t));
    }
    return;
  }
  trace(fmt::format("node {} leads term {}", n.id, t));
  const raft::RaftLog& log = n.core->log();
  for (const auto& [index, applied] : applied_entries_) {
    if (index < log.first_index()) continue;  // compacted into a snapshot: already committed
    auto term = log.term(index);
    if (!term || *term != applied.first) {
      fail(fmt::format("leader completeness: new leader {} of term {} lacks committed entry {} "
                       "(term {}), has term {}",
                       n.id, t, index, applied.first, term ? *term : 0));
      return;
    }
  }
  for (auto c = committed_terms_.lower_bound(log.first_index()); c != committed_terms_.end(); ++c) {
    auto term = log.term(c->first);
    if (!term || *term != c->second.first) {
      fail(fmt::format("leader completeness: new leader {} of term {} lacks entry {} (term {}) that node {} "
                       "knew committed, has term {}",
                       n.id, t, c->first, c->second.first, c->second.second, term ? *term : 0));
      return;
    }
  }
}

// Log Matching (§5.3): an (index, term) pair identifies the entry and, by induction, the
// whole log before it. Checked on every entry as it becomes durable.
void Cluster::check_persisted_entries(SimNode& n, const std::vector<pb::Entry>& ents) {
  for (const auto& e : ents) {
    auto prev = n.store->term(e.index() - 1);
    Term prev_term = prev ? *prev : 0;
    uint64_t h = fnv1a(e.data(), static_cast<uint64_t>(e.type()) + 1);
    auto [it, inserted] = entry_fingerprints_.try_emplace({e.index(), e.term()}, h, prev_term);
    if (inserted) continue;
    if (it->second.first != h) {
      fail(fmt::format("log matching: node {} has a different entry at index {} term {}", n.id,
                       e.index(), e.term()));
      return;
    }
    if (prev && it->second.second != prev_term) {
      fail(fmt::format("log matching: node {} entry {} term {} follows term {}, elsewhere {}",
                       n.id, e.index(), e.term(), prev_term, it->second.second));
      return;
    }
  }
}

// A leader never tells a follower a commit index its own disk does not cover: a follower
// applies what it hears is committed, and the leader's copy may be one of the quorum's
// (take_early_messages clamps the commit of appends sent before the leader's fsync).
// Checked when the message leaves; the store holds exactly the synced log.
void Cluster::check_sent_commit(const pb::Message& m) {
  if (m.type() != pb::MSG_APP && m.type() != pb::MSG_HEARTBEAT) return;
  SimNode* from = node(m.from());
  if (from == nullptr || !from->is_up) return;
  const Index durable = from->store->last_index();
  if (m.commit() <= durable) return;
  fail(fmt::format("node {} sent node {} commit index {} while its own disk holds the log up to {}", m.from(),
                   m.to(), m.commit(), durable));
}

// A durable commit index covers entries that are committed for good (§5.4: in the log of
// every later leader), whoever learned it: a leader from its quorum, a follower from its
// leader. Recorded when the hard state that carries it is synced (a leader may count its own
// entry before its disk has it, so only a synced commit index is a fact), so that a commit
// that breaks a rule (Figure 8's counting of an old term's replicas) is caught at the next
// election or at the overwrite, even if nobody applies the entry first.
void Cluster::record_commits(SimNode& n, Index durable_commit) {
  if (durable_commit <= n.commit_seen) return;
  for (Index i = std::max(n.commit_seen + 1, n.store->first_index()); i <= durable_commit; ++i) {
    auto term = n.store->term(i);
    if (!term) break;  // beneath a snapshot: committed before, recorded when it was
    auto [it, inserted] = committed_terms_.try_emplace(i, *term, n.id);
    if (!inserted && it->second.first != *term) {
      fail(fmt::format("committed entry changed: node {} holds index {} committed at term {}, node {} "
                       "knew it committed at term {}",
                       n.id, i, *term, it->second.second, it->second.first));
      return;
    }
  }
  n.commit_seen = durable_commit;
}

// State Machine Safety (§5.4.3): no two nodes apply different entries at one index.
void Cluster::check_applied(SimNode& n, const pb::Entry& e) {
  uint64_t h = fnv1a(e.data(), static_cast<uint64_t>(e.type()) + 1);
  auto [it, inserted] = applied_entries_.try_emplace(e.index(), e.term(), h);
  if (!inserted && (it->second.first != e.term() || it->second.second != h)) {
    fail(fmt::format("state machine safety: node {} applies entry {} of term {}, another node "
                     "applied one of term {}",
                     n.id, e.index(), e.term(), it->second.first));
  }
  if (inserted && e.type() == pb::ENTRY_NORMAL) check_applied_hlc(n, e);
}

// HLC order (issue 17, node/node_hlc.h): in the committed log, the commands' hybrid logical
// clock stamps strictly increase with the index, across leader changes and restarts.
void Cluster::check_applied_hlc(SimNode& n, const pb::Entry& e) {
  auto t = kv::peek_command_hlc(e.data());
  if (!t) return;
  // Bounded distance from physical time: no node's HLC clock reads ahead of the simulated
  // time by more than the largest skew, and the order rule only adds logical counts.
  const uint64_t latest_ms = kHlcSimEpochMs + now_us_ / 1000 + static_cast<uint64_t>(kHlcSimMaxSkewMs);
  if (t->physical_ms > latest_ms) {
    fail(fmt::format("HLC distance: node {} applies entry {} stamped {}, ahead of every node's clock ({} ms)", n.id,
                     e.index(), t->to_string(), latest_ms));
  }
  auto [it, inserted] = applied_hlcs_.emplace(e.index(), *t);
  if (!inserted) return;
  if (it != applied_hlcs_.begin() && std::prev(it)->second >= *t) {
    fail(fmt::format("HLC order: node {} applies entry {} stamped {}, not above entry {} stamped {}", n.id, e.index(),
                     t->to_string(), std::prev(it)->first, std::prev(it)->second.to_string()));
  }
  if (auto next = std::next(it); next != applied_hlcs_.end() && next->second <= *t) {
    fail(fmt::format("HLC order: node {} applies entry {} stamped {}, not below entry {} stamped {}", n.id, e.index(),
                     t->to_string(), next->first, next->second.to_string()));
  }
}

bool Cluster::check_liveness_done() {
  if (probe_stage_ <= opt_.keys) return false;
  // Every live member has applied everything the leader committed, and no client op is open.
  SimNode* leader = current_leader();
  if (leader == nullptr) return false;
  Index commit = leader->core->log().committed();
  const auto& cfg = leader->core->tracker().config;
  for (auto& [id, n] : nodes_) {
    if (n->is_retired) continue;
    bool is_member = cfg.voters.contains(id) || cfg.learners.contains(id);
    if (!is_member) continue;
    if (!n->is_up || n->applied() < commit) return false;
  }
  for (const auto& c : clients_) {
    if (c.is_busy) return false;
  }
  return true;
}

void Cluster::check_final_state() {
  for (auto& [id, n] : nodes_) {
    if (n->is_up && !n->is_retired) {
      if (auto e = watches_.observe(id, *n->store); !e.empty()) {
        fail(e);
        return;
      }
    }
  }
  if (auto e = watches_.check_complete(); !e.empty()) {
    fail(e);
    return;
  }
  // Replicas that applied the same prefix hold the same state.
  std::map<Index, std::pair<NodeId, uint64_t>> state_at;
  for (auto& [id, n] : nodes_) {
    if (n->is_retired || !n->is_up) continue;
    kvpb::RangeRequest all;
    all.set_limit(10000);
    auto r = n->store->range(all);
    ASPEN_ASSERT(r.has_value());
    uint64_t h = fnv1a(r->SerializeAsString());
    auto [it, inserted] = state_at.try_emplace(n->applied(), id, h);
    if (!inserted && it->second.second != h) {
      fail(fmt::format("replicas {} and {} applied up to {} but hold different states",
                       it->second.first, id, n->applied()));
      return;
    }
  }
  // No acknowledged write lost: the entry of every acknowledged write is still in the
  // final leader's log at the index where it was applied (or compacted beneath its snapshot).
  SimNode* leader = current_leader();
  ASPEN_ASSERT_MSG(leader != nullptr, "liveness phase ends with a leader");
  const raft::RaftLog& log = leader->core->log();
  for (size_t i = 0; i < history_.size(); ++i) {
    const Operation& op = history_[i];
    if (is_history_dropped_[i] || op.is_indeterminate || op.kind == OpKind::kRead) continue;
    auto it = acked_writes_.find(op.value);
    if (it == acked_writes_.end()) {
      fail(fmt::format("acknowledged write was never applied: {}", describe_operation(op)));
      return;
    }
    Index index = it->second.index;
    if (index < log.first_index()) continue;
    auto term = log.term(index);
    if (!term || *term != applied_entries_.at(index).first) {
      fail(fmt::format("acknowledged write lost: {} (applied at index {}, final leader {} has term {} there)",
                       describe_operation(op), index, leader->id, term ? *term : 0));
      return;
    }
  }
  std::vector<Operation> kept = history_for_checker();
  // The search memoizes (set of linearized ops, state) pairs whose size grows with the
  // history, so the state budget shrinks as histories grow: about 250 MB of bitsets at most.
  uint64_t budget = std::clamp<uint64_t>(2'000'000'000ULL / (kept.size() + 64), 1'000, 2'000'000);
  CheckResult lin = check_linearizable(kept, budget);
  if (!lin.is_linearizable) {
    fail(fmt::format("history not linearizable on key {}:\n{}", lin.failing_key, lin.explanation));
    return;
  }
  if (lin.is_exhausted) {
    // A check that proves nothing is not a pass: the run fails so the seed gets looked at.
    ++stats_.linearizability_inconclusive;
    fail(fmt::format("linearizability check inconclusive: search budget of {} states exhausted ({})", budget,
                     lin.explanation));
  }
}

std::vector<Operation> Cluster::history_for_checker() const {
  std::vector<Operation> kept;
  for (size_t i = 0; i < history_.size(); ++i) {
    if (is_history_dropped_[i]) continue;
    Operation op = history_[i];
    // Still in flight when the run ended: a read says nothing, a write may or may not land.
    if (op.return_time == 0 && !op.is_indeterminate) {
      if (op.kind == OpKind::kRead) continue;
      op.is_indeterminate = true;
    }
    if (op.is_indeterminate) {
      // The client never learned the outcome, but the simulator knows it: a command that
      // never applied anywhere took no effect; one that did took effect at its commit, which
      // came before its first apply on any node, and a CAS's result is what apply computed.
      // Every such op becomes determinate, which keeps the search small; the windows only
      // shrink (an op's effect was visible to every read that began after its first apply),
      // so the check is no weaker.
      auto it = acked_writes_.find(op.value);
      if (it == acked_writes_.end()) continue;
      op.is_indeterminate = false;
      op.return_time = std::max(op.invoke_time, it->second.first_applied_us);
      op.cas_succeeded = it->second.has_succeeded;
    }
    kept.push_back(std::move(op));
  }
  return kept;
}

void Cluster::check_read_point(const SimNode& n, const PendingOp& op, Index read_index) {
  ++stats_.reads_checked_at_serve;
  if (read_index >= op.read_floor) return;
  fail(fmt::format(
      "node {} served a linearizable read of {} (client {}) at read point {}, but a command at index {} was "
      "acknowledged to a client before the read began",
      n.id, op.key, op.client_id, read_index, op.read_floor));
}

}  // namespace aspen::sim
