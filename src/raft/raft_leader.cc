// RaftCore, leader side: proposals, replication and flow control, commitment, ReadIndex and
// leadership transfer.
#include <fmt/format.h>

#include "core/assert.h"
#include "core/buggify.h"
#include "core/log.h"
#include "raft/raft.h"

namespace aspen::raft {

namespace {
// A heartbeat round number travels in the heartbeat's context, 8 bytes big-endian.
std::string encode_read_round(uint64_t round) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i, round >>= 8) out[static_cast<size_t>(i)] = static_cast<char>(round & 0xff);
  return out;
}

std::optional<uint64_t> decode_read_round(const std::string& ctx) {
  if (ctx.size() != 8) return std::nullopt;
  uint64_t round = 0;
  for (char c : ctx) round = round << 8 | static_cast<unsigned char>(c);
  return round;
}
}  // namespace

Status RaftCore::step_leader(const pb::Message& m) {
  switch (m.type()) {
    case pb::MSG_PROP: {
      pb::Message copy = m;
      return handle_proposal(copy);
    }
    case pb::MSG_READ_INDEX:
      if (!trk_.config.voters.contains(id_)) {
        // A leader removed from the voters is only handing over: it cannot vouch for reads.
        ASPEN_PROBE("raft.read_refused_removed_leader");
        return make_error(ErrorCode::kProposalDropped, "this leader was removed from the voters");
      }
      if (pending_reads_.size() + pending_read_index_messages_.size() >=
          limits::kMaxPendingReadIndexRequests) {
        return make_error(ErrorCode::kProposalDropped,
                          fmt::format("too many pending linearizable reads (limit {})",
                                      limits::kMaxPendingReadIndexRequests));
      }
      // §6.4: a new leader does not know the commit index until it commits an entry of its
      // own term; hold reads until then.
      if (!committed_entry_in_current_term()) {
        ASPEN_PROBE("raft.read_held_until_term_commit");
        pending_read_index_messages_.push_back(HeldRead{m, ticks_});
        return {};
      }
      handle_read_index(m, ticks_);
      return {};
    case pb::MSG_TRANSFER_LEADER:
      handle_transfer_leader(m.from());
      return {};
    default:
      break;
  }
  auto it = trk_.progress.find(m.from());
  if (it == trk_.progress.end()) return {};
  Progress& pr = it->second;
  switch (m.type()) {
    case pb::MSG_APP_RESP:
      pr.wants_commit = m.wants_commit();
      handle_append_response(m, pr);
      break;
    case pb::MSG_HEARTBEAT_RESP:
      pr.wants_commit = m.wants_commit();
      handle_heartbeat_response(m, pr);
      break;
    default:
      break;
  }
  return {};
}

Status RaftCore::handle_proposal(pb::Message& m) {
  if (m.entries().empty()) return make_error(ErrorCode::kInvalidArgument, "empty proposal");
  if (!trk_.config.voters.contains(id_)) {
    return make_error(ErrorCode::kProposalDropped, "this leader was removed from the voters");
  }
  if (lead_transferee_ != kNoNode) {
    return make_error(ErrorCode::kProposalDropped,
                      fmt::format("leadership is being transferred to node {}", lead_transferee_));
  }
  for (const auto& e : m.entries()) {
    if (e.type() != pb::ENTRY_CONF_CHANGE) continue;
    pb::ConfChange cc;
    if (!cc.ParseFromString(e.data())) {
      return make_error(ErrorCode::kInvalidArgument, "malformed conf change");
    }
    bool is_joint = trk_.config.voters.is_joint();
    bool is_leave = cc.changes().empty();
    if (pending_conf_index_ > log_.applied()) {
      return make_error(ErrorCode::kProposalDropped,
                        "another membership change is still being applied; retry later");
    }
    if (is_joint && !is_leave) {
      return make_error(ErrorCode::kProposalDropped,
                        "must leave the joint configuration before another change");
    }
    if (!is_joint && is_leave) {
      return make_error(ErrorCode::kProposalDropped, "not in a joint configuration to leave");
    }
    // Validate now, so that a change that cannot apply is refused instead of committed.
    auto checked = ConfChanger(trk_.config, trk_.progress, log_.last_index(), trk_.max_inflight()).apply(cc);
    if (!checked) return std::unexpected(checked.error());
    pending_conf_index_ = log_.last_index() + 1;
  }
  std::vector<pb::Entry> ents(m.entries().begin(), m.entries().end());
  if (!append_entries(ents)) {
    return make_error(ErrorCode::kProposalDropped,
                      fmt::format("too many uncommitted bytes (limit {})",
                                  config_.max_uncommitted_entries_bytes));
  }
  // Do not send now: every proposal that arrives before the caller's next ready() goes out
  // in one append per follower (the message-level half of group commit).
  should_bcast_append_ = true;
  return {};
}

bool RaftCore::append_entries(std::vector<pb::Entry>& ents) {
  uint64_t size = 0;
  for (const auto& e : ents) size += e.data().size();
  // Refuse to buffer unboundedly when followers cannot keep up; an empty entry always fits.
  if (uncommitted_size_bytes_ > 0 && size > 0 &&
      uncommitted_size_bytes_ + size > config_.max_uncommitted_entries_bytes) {
    return false;
  }
  uncommitted_size_bytes_ += size;
  Index li = log_.last_index();
  for (size_t i = 0; i < ents.size(); ++i) {
    ents[i].set_term(term_);
    ents[i].set_index(li + 1 + i);
  }
  li = log_.append(ents);
  // The leader counts its own entries toward commitment; under the Ready contract, entries
  // are persisted before any message that could make a follower ack them is sent.
  trk_.progress.at(id_).maybe_update(li);
  maybe_commit();
  return true;
}

bool RaftCore::maybe_commit() {
  Index mci = trk_.committed();
  // §5.4.2: only entries from the current term are committed by counting replicas.
  return log_.maybe_commit(mci, term_);
}

bool RaftCore::committed_entry_in_current_term() const {
  return log_.term_or_zero(log_.committed()) == term_;
}

void RaftCore::release_pending_read_index_messages() {
  if (pending_read_index_messages_.empty() || !committed_entry_in_current_term()) return;
  auto held = std::move(pending_read_index_messages_);
  pending_read_index_messages_.clear();
  for (const auto& h : held) handle_read_index(h.request, h.arrived_tick);
}

void RaftCore::handle_append_response(const pb::Message& m, Progress& pr) {
  pr.recent_active = true;
  if (m.reject()) {
    ASPEN_PROBE("raft.append_rejected");
    Index next_probe = m.reject_hint();
    if (m.log_term() > 0) {
      // The follower's log has term m.log_term() at reject_hint; find where ours agrees.
      next_probe = log_.find_conflict_by_term(m.reject_hint(), m.log_term()).first;
    }
    if (pr.maybe_decrease_to(m.index(), next_probe)) {
      if (pr.state == ProgressState::kReplicate) pr.become_probe();
      send_append(m.from());
    }
    return;
  }
  bool was_paused = pr.is_paused();
  if (!pr.maybe_update(m.index())) return;
  switch (pr.state) {
    case ProgressState::kProbe:
      pr.become_replicate();
      break;
    case ProgressState::kSnapshot:
      if (pr.match + 1 >= log_.first_index()) {
        ASPEN_PROBE("raft.snapshot_follower_caught_up");
        pr.become_probe();
        pr.become_replicate();
      }
      break;
    case ProgressState::kReplicate:
      pr.inflights.free_le(m.index());
      break;
  }
  if (maybe_commit()) {
    release_pending_read_index_messages();
    // BUGGIFY: the lazy broadcast is an optimisation; telling everyone at once is the default
    // Raft behaviour.
    if (config_.is_commit_broadcast_lazy && !ASPEN_BUGGIFY("raft.commit_broadcast_eager")) {
      // Followers learn the new commit index from the next append or heartbeat; only those
      // with entries to receive, or with watchers waiting on their applied state, get an
      // append now (an empty one carries just the commit index).
      for (const auto& [id, other] : trk_.progress) {
        if (id != id_) maybe_send_append(id, other.wants_commit);
      }
    } else {
      bcast_append();
    }
  } else if (was_paused) {
    send_append(m.from());
  }
  // Fill the window: the follower is in sync and can take more.
  while (maybe_send_append(m.from(), false)) {
  }
  if (m.from() == lead_transferee_ && pr.match == log_.last_index()) send_timeout_now(m.from());
}

void RaftCore::handle_heartbeat_response(const pb::Message& m, Progress& pr) {
  pr.recent_active = true;
  pr.is_probe_sent = false;
  // If every message that filled the window was lost, no ack will ever free it: let one
  // more append through per heartbeat so the follower can reject it and we can resync.
  if (pr.state == ProgressState::kReplicate && pr.inflights.is_full()) {
    ASPEN_PROBE("raft.window_freed_by_heartbeat");
    pr.inflights.free_first_one();
  }
  if (pr.match < log_.last_index()) send_append(m.from());
  if (pending_reads_.empty()) return;
  auto round = decode_read_round(m.context());
  // An ack for a round not sent yet is forged or corrupt: it must not confirm reads that
  // arrive before that round goes out.
  if (!round || *round >= next_read_round_) {
    if (round) ASPEN_PROBE("raft.read_ack_for_unsent_round_ignored");
    return;
  }
  uint64_t& acked = read_round_acked_[m.from()];
  acked = std::max(acked, *round);
  release_confirmed_reads();
}

void RaftCore::handle_read_index(const pb::Message& m, uint64_t arrived_tick) {
  Index read_index = log_.committed();
  // Alone in the cluster, a leader needs no one to confirm its leadership (but only if the
  // single voter is itself).
  if (trk_.is_singleton() && trk_.config.voters.incoming.contains(id_)) {
    respond_read_index(m, read_index);
    return;
  }
  // §6.4: record the commit index, then confirm we are still leader with a heartbeat round.
  // Batched: every read that arrives before the caller's next ready() shares one round.
  PendingRead pr;
  pr.index = read_index;
  pr.request = m;
  pr.round = next_read_round_;
  pr.arrived_tick = arrived_tick;
  pending_reads_.push_back(std::move(pr));
  should_bcast_read_heartbeat_ = true;
}

void RaftCore::bcast_read_round() {
  uint64_t round = next_read_round_++;
  bcast_heartbeat(encode_read_round(round));
  // A leader that is a majority on its own (one voter) needs no acks.
  release_confirmed_reads();
}

void RaftCore::release_confirmed_reads() {
  // The newest round a quorum has acked; the leader has "acked" every round it sent.
  uint64_t sent = next_read_round_ - 1;
  Index confirmed = trk_.config.voters.committed_index([&](NodeId id) -> std::optional<Index> {
    if (id == id_) return sent;
    auto it = read_round_acked_.find(id);
    return it == read_round_acked_.end() ? 0 : it->second;
  });
  while (!pending_reads_.empty() && pending_reads_.front().round <= confirmed) {
    PendingRead pr = std::move(pending_reads_.front());
    pending_reads_.pop_front();
    respond_read_index(pr.request, pr.index);
  }
}

void RaftCore::expire_reads() {
  // A read that no round confirmed within an election timeout is refused: its requester
  // learns at once instead of waiting for its own timeout, and nothing outlives a requester
  // that restarted for long.
  auto is_expired = [&](uint64_t arrived_tick) { return ticks_ - arrived_tick >= config_.election_tick; };
  // (Held reads enter pending_reads_ late, so arrival ticks there are not in order.)
  std::erase_if(pending_reads_, [&](const PendingRead& pr) {
    if (!is_expired(pr.arrived_tick)) return false;
    ASPEN_PROBE("raft.read_expired");
    refuse_read(pr.request);
    return true;
  });
  std::erase_if(pending_read_index_messages_, [&](const HeldRead& h) {
    if (!is_expired(h.arrived_tick)) return false;
    ASPEN_PROBE("raft.read_expired");
    refuse_read(h.request);
    return true;
  });
}

void RaftCore::refuse_read(const pb::Message& req) { answer_read(req, 0, true); }

void RaftCore::respond_read_index(const pb::Message& req, Index read_index) { answer_read(req, read_index, false); }

void RaftCore::answer_read(const pb::Message& req, Index read_index, bool is_refused) {
  if (req.from() == kNoNode || req.from() == id_) {
    read_states_.push_back(ReadState{read_index, req.context(), is_refused});
    return;
  }
  pb::Message resp;
  resp.set_type(pb::MSG_READ_INDEX_RESP);
  resp.set_to(req.from());
  resp.set_index(read_index);
  resp.set_reject(is_refused);
  resp.set_context(req.context());
  send(std::move(resp));
}

void RaftCore::handle_transfer_leader(NodeId transferee) {
  auto it = trk_.progress.find(transferee);
  if (it == trk_.progress.end() || it->second.is_learner) return;
  if (lead_transferee_ == transferee || transferee == id_) return;
  abort_leader_transfer();
  lead_transferee_ = transferee;
  // The transfer must finish within an election timeout (see tick_heartbeat).
  election_elapsed_ = 0;
  if (it->second.match == log_.last_index()) {
    send_timeout_now(transferee);
  } else {
    send_append(transferee);
  }
}

void RaftCore::send_timeout_now(NodeId to) {
  pb::Message m;
  m.set_type(pb::MSG_TIMEOUT_NOW);
  m.set_to(to);
  send(std::move(m));
}

bool RaftCore::maybe_send_append(NodeId to, bool send_if_empty) {
  auto it = trk_.progress.find(to);
  if (it == trk_.progress.end() || to == id_) return false;
  Progress& pr = it->second;
  if (pr.is_paused()) return false;
  Index prev_index = pr.next - 1;
  auto prev_term = log_.term(prev_index);
  auto ents = log_.entries_from(pr.next, config_.max_size_per_msg_bytes);
  if (!prev_term || !ents) return maybe_send_snapshot(to, pr);
  if (ents->empty() && !send_if_empty) return false;
  pb::Message m;
  m.set_type(pb::MSG_APP);
  m.set_to(to);
  m.set_index(prev_index);
  m.set_log_term(*prev_term);
  m.set_commit(log_.committed());
  size_t n = ents->size();
  Index last = n > 0 ? ents->back().index() : prev_index;
  for (auto& e : *ents) *m.add_entries() = std::move(e);
  pr.sent_entries(last, n);
  send(std::move(m));
  return true;
}

bool RaftCore::maybe_send_snapshot(NodeId to, Progress& pr) {
  // Only send snapshots to peers we heard from recently: they are expensive.
  if (!pr.recent_active) return false;
  auto snap = log_.snapshot();
  if (!snap) return false;  // temporarily unavailable: retry on a later heartbeat response
  ASPEN_ASSERT_MSG(snap->metadata().index() != 0, "need a non-empty snapshot");
  pb::Message m;
  m.set_type(pb::MSG_SNAP);
  m.set_to(to);
  pr.become_snapshot(snap->metadata().index());
  *m.mutable_snapshot() = std::move(*snap);
  send(std::move(m));
  return true;
}

void RaftCore::bcast_append() {
  for (const auto& [id, pr] : trk_.progress) {
    if (id != id_) send_append(id);
  }
}

void RaftCore::bcast_heartbeat(const std::string& context) {
  for (const auto& [id, pr] : trk_.progress) {
    if (id == id_) continue;
    pb::Message m;
    m.set_type(pb::MSG_HEARTBEAT);
    m.set_to(id);
    // A follower may not have the entries up to our commit index; never tell it to commit
    // past what it has matched.
    m.set_commit(std::min(pr.match, log_.committed()));
    m.set_context(context);
    send(std::move(m));
  }
}

}  // namespace aspen::raft
