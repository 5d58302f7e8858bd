// RaftCore: the caller-facing API (proposals, reads, membership) and the Ready/advance cycle.
#include <fmt/format.h>

#include <algorithm>

#include "core/assert.h"
#include "core/log.h"
#include "raft/raft.h"

namespace aspen::raft {

Status RaftCore::propose(std::string data) {
  pb::Message m;
  m.set_type(pb::MSG_PROP);
  m.set_from(id_);
  m.add_entries()->set_data(std::move(data));
  return step_internal(m);
}

Status RaftCore::propose_conf_change(const pb::ConfChange& cc) {
  pb::Message m;
  m.set_type(pb::MSG_PROP);
  m.set_from(id_);
  pb::Entry* e = m.add_entries();
  e->set_type(pb::ENTRY_CONF_CHANGE);
  e->set_data(cc.SerializeAsString());
  return step_internal(m);
}

Status RaftCore::read_index(std::string context) {
  if (context.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "a read index request needs a non-empty context");
  }
  pb::Message m;
  m.set_type(pb::MSG_READ_INDEX);
  m.set_from(id_);
  m.set_context(std::move(context));
  return step_internal(m);
}

void RaftCore::transfer_leadership(NodeId transferee) {
  pb::Message m;
  m.set_type(pb::MSG_TRANSFER_LEADER);
  // etcd convention: a transfer request comes "from" the transferee.
  m.set_from(transferee);
  (void)step_internal(m);
}

void RaftCore::report_unreachable(NodeId peer) {
  if (role_ == Role::kFollower && peer == lead_ && peer != kNoNode) {
    // Our leader's process is gone (the transport saw its address refuse our datagrams).
    // Waiting out the election timeout would only cost availability, so this node stops
    // counting on the leader (it no longer refuses pre-votes in the leader's lease, §6.2)
    // and campaigns soon, with a pre-vote (§9.6): a false alarm cannot disrupt a leader the
    // others still hear, as they refuse the pre-vote and nobody's term moves; the leader's
    // next heartbeat makes it our leader again. "Soon" is a random point within two
    // heartbeats rather than at once: the other followers learn of the death at about the
    // same moment, and candidates that start together split the vote. A campaign that does
    // not win all the same (a split vote, or a pre-vote refused by a follower that has not
    // yet noticed) is retried soon again, a few times, until a leader is heard (see
    // campaign_internal and become_follower); otherwise it would wait a whole randomized
    // election timeout.
    // Without pre-vote, the election timeout stays the trigger.
    if (!config_.pre_vote) return;
    lead_ = kNoNode;
    fast_campaigns_left_ = kFastCampaignRetries;
    campaign_soon(1, false);
    return;
  }
  if (role_ != Role::kLeader) return;
  auto it = trk_.progress.find(peer);
  if (it == trk_.progress.end()) return;
  // Stop streaming optimistically; probe until the peer answers again.
  if (it->second.state == ProgressState::kReplicate) it->second.become_probe();
}

void RaftCore::report_snapshot(NodeId peer, bool failed) {
  if (role_ != Role::kLeader) return;
  auto it = trk_.progress.find(peer);
  if (it == trk_.progress.end() || it->second.state != ProgressState::kSnapshot) return;
  Progress& pr = it->second;
  if (failed) pr.pending_snapshot = 0;
  // Probe from the snapshot index; wait for the follower's answer before sending more.
  pr.become_probe();
  pr.is_probe_sent = !failed;
}

pb::ConfState RaftCore::apply_conf_change(const pb::ConfChange& cc) {
  ConfChanger changer(trk_.config, trk_.progress, log_.last_index(), trk_.max_inflight());
  Result<ConfigAndProgress> next = changer.apply(cc);
  if (!next) {
    // Every replica applies the same entries in the same order and fails the same way, so
    // ignoring the change keeps them identical.
    ASPEN_LOG_WARN("node {} ignores conf change '{}': {}", id_, describe_conf_change(cc),
                   next.error().to_string());
    return trk_.config.to_conf_state();
  }
  switch_to_config(std::move(*next));
  return trk_.config.to_conf_state();
}

void RaftCore::switch_to_config(ConfigAndProgress cp) {
  trk_.config = std::move(cp.config);
  trk_.progress = std::move(cp.progress);
  auto self = trk_.progress.find(id_);
  is_learner_ = self != trk_.progress.end() && self->second.is_learner;
  if ((role_ == Role::kCandidate || role_ == Role::kPreCandidate) && !trk_.config.voters.contains(id_)) {
    // A campaign started before the change that removed (or demoted) us: its votes could
    // still add up to a majority of the new voters, and a leader that is not a member has
    // no progress of its own to lead with (simulator seed 1021088).
    become_follower(term_, kNoNode);
    return;
  }
  if (role_ != Role::kLeader) return;
  // A leader removed from the voters (Raft thesis §4.2.2) keeps replicating, without counting
  // itself, until the end of the current election timeout (see tick_heartbeat): the
  // remaining voters only apply the change, and can elect a successor among themselves,
  // once they learn that it is committed, and that news travels on our appends and
  // heartbeats. It accepts no new proposals meanwhile.
  if (maybe_commit()) {
    bcast_append();
  } else {
    for (const auto& [id, pr] : trk_.progress) {
      if (id != id_) maybe_send_append(id, false);
    }
  }
  if (lead_transferee_ != kNoNode && !trk_.config.voters.contains(lead_transferee_)) {
    abort_leader_transfer();
  }
}

bool RaftCore::has_ready() const {
  return has_ready_beyond_apply() || log_.committed() != prev_hard_state_.commit() || log_.has_next_committed_entries();
}

bool RaftCore::has_ready_beyond_apply() const {
  SoftState ss{lead_, role_};
  return ss != prev_soft_state_ || term_ != prev_hard_state_.term() || vote_ != prev_hard_state_.vote() ||
         should_bcast_append_ || should_bcast_read_heartbeat_ || !log_.unstable_entries().empty() ||
         log_.unstable_snapshot().has_value() || !msgs_.empty() || !read_states_.empty();
}

Ready RaftCore::ready() {
  if (should_bcast_append_) {
    should_bcast_append_ = false;
    if (role_ == Role::kLeader) bcast_append();
  }
  if (should_bcast_read_heartbeat_) {
    should_bcast_read_heartbeat_ = false;
    if (role_ == Role::kLeader && !pending_reads_.empty()) bcast_read_round();
  }
  Ready rd;
  SoftState ss{lead_, role_};
  if (ss != prev_soft_state_) {
    rd.soft_state = ss;
    prev_soft_state_ = ss;
  }
  if (term_ != prev_hard_state_.term() || vote_ != prev_hard_state_.vote() ||
      log_.committed() != prev_hard_state_.commit()) {
    pb::HardState hs;
    hs.set_term(term_);
    hs.set_vote(vote_);
    hs.set_commit(log_.committed());
    rd.hard_state = hs;
    prev_hard_state_ = hs;
  }
  rd.entries = log_.unstable_entries();
  if (log_.unstable_snapshot()) rd.snapshot = *log_.unstable_snapshot();
  rd.committed_entries = log_.next_committed_entries();
  rd.messages = std::move(msgs_);
  msgs_.clear();
  rd.read_states = std::move(read_states_);
  read_states_.clear();
  return rd;
}

void RaftCore::advance(const Ready& rd) {
  if (rd.snapshot) {
    log_.stable_snap_to(rd.snapshot->metadata().index());
    log_.set_applied(std::max(log_.applied(), rd.snapshot->metadata().index()));
  }
  if (!rd.entries.empty()) {
    const auto& last = rd.entries.back();
    log_.stable_to(last.index(), last.term());
  }
  if (!rd.committed_entries.empty()) {
    Index new_applied = rd.committed_entries.back().index();
    log_.applied_to(new_applied);
    uint64_t applied_bytes = 0;
    for (const auto& e : rd.committed_entries) applied_bytes += e.data().size();
    uncommitted_size_bytes_ = applied_bytes >= uncommitted_size_bytes_ ? 0 : uncommitted_size_bytes_ - applied_bytes;
    // Leave an automatic joint configuration once its entry is applied (thesis §4.3).
    if (role_ == Role::kLeader && trk_.config.auto_leave && new_applied >= pending_conf_index_) {
      pb::ConfChange leave;
      if (auto s = propose_conf_change(leave); !s) {
        ASPEN_LOG_DEBUG("node {} could not propose leaving the joint config: {}", id_,
                        s.error().to_string());
      }
    }
  }
}

RaftStatus RaftCore::status() const {
  RaftStatus s;
  s.id = id_;
  s.leader = lead_;
  s.role = role_;
  s.term = term_;
  s.vote = vote_;
  s.commit = log_.committed();
  s.applied = log_.applied();
  s.last_index = log_.last_index();
  s.lead_transferee = lead_transferee_;
  return s;
}

}  // namespace aspen::raft
