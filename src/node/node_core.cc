#include "node/node_core.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/assert.h"
#include "core/buggify.h"
#include "core/limits.h"
#include "kv/command_hlc.h"
#include "kv/commands.h"
#include "rpc/error_info.h"

namespace aspen::node {

namespace {
// Does the Ready change what Raft needs durable beyond entries: the term or the vote?
// (A new commit index alone is recomputed after a crash.) Unknown prior state counts as yes.
bool changes_term_or_vote(const raft::Ready& rd, const pb::HardState* persisted) {
  return rd.hard_state && (persisted == nullptr || rd.hard_state->term() != persisted->term() ||
                           rd.hard_state->vote() != persisted->vote());
}
}  // namespace

bool applies_conf_change(const raft::Ready& rd) {
  return std::any_of(rd.committed_entries.begin(), rd.committed_entries.end(),
                     [](const pb::Entry& e) { return e.type() != pb::ENTRY_NORMAL; });
}

storage::WriteBatch write_batch_for(const raft::Ready& rd, const pb::HardState* persisted) {
  storage::WriteBatch b;
  // Applying a membership change is made durable too: operators decommission a removed
  // node once every remaining member has applied the change, and members use the membership
  // they applied; a crash undoing that apply could leave them needing the removed node's
  // vote again (found by the simulator once it modelled unsynced applies).
  b.is_sync_required = rd.snapshot.has_value() || !rd.entries.empty() || changes_term_or_vote(rd, persisted) ||
                       applies_conf_change(rd);
  b.snapshot = rd.snapshot ? &*rd.snapshot : nullptr;
  b.entries = &rd.entries;
  b.hard_state = rd.hard_state ? &*rd.hard_state : nullptr;
  b.committed = &rd.committed_entries;
  return b;
}

bool has_fixed_result(const kvpb::Command& cmd) {
  // In a client session the apply decides: a repeat is answered with its first answer, and a
  // write older than what the session keeps is refused (kv/sessions.h). Answering those at
  // commit lost acknowledged writes under kill -9 (ClusterTest.KillNineLoop..., 1 run in 4).
  if (cmd.has_session()) return false;
  // Apply can refuse a put only for its lease (gone by then); without one the result is
  // {succeeded, revision = its index} whatever the state.
  if (cmd.has_put()) return cmd.put().lease_id() == 0;
  if (cmd.has_set_multi()) {
    return std::all_of(cmd.set_multi().puts().begin(), cmd.set_multi().puts().end(),
                       [](const kvpb::Put& p) { return p.lease_id() == 0; });
  }
  return false;
}

std::vector<pb::Message> take_early_messages(raft::Ready& rd, bool is_leader, const pb::HardState& persisted) {
  std::vector<pb::Message> early;
  if (!is_leader || rd.snapshot || changes_term_or_vote(rd, &persisted)) return early;
  // Every entry before this Ready's first one is durable; with no entries, all of them are.
  Index durable = rd.entries.empty() ? UINT64_MAX : rd.entries.front().index() - 1;
  std::vector<pb::Message> rest;
  for (auto& m : rd.messages) {
    if (m.type() == pb::MSG_APP || m.type() == pb::MSG_HEARTBEAT) {
      if (m.commit() > durable) m.set_commit(durable);
      early.push_back(std::move(m));
    } else {
      rest.push_back(std::move(m));
    }
  }
  rd.messages = std::move(rest);
  return early;
}

Result<std::unique_ptr<NodeCore>> NodeCore::create(const NodeCoreConfig& config, storage::Store& store) {
  ASPEN_ASSERT_MSG(config.incarnation != 0, "every start of a node core needs a fresh incarnation nonce");
  if (auto s = validate(config.knobs); !s) return std::unexpected(s.error());
  raft::RaftConfig rc = config.raft;
  rc.applied = store.applied_index();
  rc.heartbeat_tick = config.knobs.heartbeat_ticks();
  rc.election_tick = config.knobs.election_ticks();
  rc.max_inflight_msgs = config.knobs.max_inflight_appends;
  rc.max_size_per_msg_bytes = config.knobs.max_append_bytes;
  rc.is_commit_broadcast_lazy = rc.is_commit_broadcast_lazy || config.knobs.should_defer_apply;
  auto raft = raft::RaftCore::create(rc, &store);
  if (!raft) return std::unexpected(raft.error());
  auto core = std::unique_ptr<NodeCore>(new NodeCore(config, store, std::move(*raft)));
  core->recover_log_hlc();
  return core;
}

NodeCore::NodeCore(const NodeCoreConfig& config, storage::Store& store, std::unique_ptr<raft::RaftCore> raft)
    : config_(config), store_(store), raft_(std::move(raft)), hlc_(config.raft.id, config.hlc_max_offset_ms) {}

void NodeCore::recover_log_hlc() {
  // The floor: the largest stamp the state machine applied (kept with the applied index and
  // carried by snapshots), which holds when the log has no stamped entry left (compacted
  // into a snapshot, or just installed one). Entries above the applied index are not in it.
  if (auto t = store_.applied_hlc()) hlc_.saw_log_stamp(*t);
  // The log's stamps increase with the index, so the last stamped entry holds the largest.
  // Entries without a stamp (a new leader's empty entry, membership changes, entries from
  // before stamps) are few in a row; a bounded look back finds a stamped one, and finding
  // none leaves the applied floor, which covers every stamped entry up to the applied index.
  constexpr Index kMaxEntriesLookedBack = 256;
  const Index last = store_.last_index();
  const Index first = store_.first_index();
  for (Index hi = last; hi >= first && hi > 0 && last - hi < kMaxEntriesLookedBack; --hi) {
    auto e = store_.entries(hi, hi + 1, UINT64_MAX);
    if (!e || e->empty()) return;
    if (e->front().type() != pb::ENTRY_NORMAL) continue;
    if (auto t = kv::peek_command_hlc(e->front().data())) {
      hlc_.saw_log_stamp(*t);
      return;
    }
  }
}

void NodeCore::stamp_command(kvpb::Command& cmd) {
  // The leader's clock is the only one apply() sees (lease TTLs, history retention).
  cmd.set_timestamp_ms(now_ms_);
  // Above every stamp in the log: the committed log's stamps increase with the index.
  kv::to_proto(hlc_.stamp_proposal(hlc_physical_ms()), cmd.mutable_hlc());
}

Error NodeCore::not_leader_error() const {
  NodeId leader = raft_->leader();
  if (leader == kNoNode) return Error(ErrorCode::kUnavailable, fmt::format("no leader is known; {}", rpc::kElectionUnderWay));
  return Error(ErrorCode::kNotLeader, fmt::format("node {} is the leader", leader));
}

void NodeCore::respond_write(uint64_t request_id, Result<kvpb::CommandResult> r, Index index) {
  Response resp;
  resp.request_id = request_id;
  resp.is_write = true;
  resp.index = index;
  resp.write = std::move(r);
  responses_.push_back(std::move(resp));
}

void NodeCore::respond_read(uint64_t request_id, Result<kvpb::RangeResult> r, Index read_index) {
  Response resp;
  resp.request_id = request_id;
  resp.is_write = false;
  resp.index = read_index;
  resp.read = std::move(r);
  responses_.push_back(std::move(resp));
}

void NodeCore::advance_clock(uint64_t now_ms) {
  now_ms_ = std::max(now_ms_, now_ms);
  if (now_ms > last_input_ms_) elapsed_ms_ += now_ms - last_input_ms_;
  last_input_ms_ = now_ms;  // after a step back, intervals count again from here
}

void NodeCore::tick(uint64_t now_ms) {
  advance_clock(now_ms);
  // BUGGIFY: a late tick (the loop ran something long): this one does nothing. Raft's
  // timeouts and the core's deadlines then fire later, as they may in production.
  if (ASPEN_BUGGIFY("node.tick_skipped")) return;
  raft_->tick();
  expire_timed_out(elapsed_ms_);
  maybe_expire_leases(now_ms_);
  maybe_compact_history(now_ms_);
  serve_ready_reads();  // reads deferred by the answer budget
}

Status NodeCore::step(const pb::Message& msg) {
  if (msg.type() == pb::MSG_PROP) {
    // Aspen nodes never forward proposals over Raft: a write reaches the leader through the
    // client protocol, where it is validated (limits, reserved keys). One arriving here would
    // skip those checks.
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("a proposal from node {} refused: writes go through the client protocol", msg.from()));
  }
  // Every message advances the hybrid logical clock, whether or not Raft accepts it; a stamp
  // too far ahead is refused by the clock (counted) and the message is stepped all the same.
  if (auto refused = hlc_.receive(msg, hlc_physical_ms())) {
    last_hlc_refusal_ = fmt::format("node {} sent a stamp the hybrid logical clock refused: {}", msg.from(), *refused);
  }
  auto s = raft_->step(msg);
  // An acknowledgement may commit entries that are durable here already (the Ready that
  // wrote them may still be applying): their writers need not wait for the next Ready.
  if (s && msg.type() == pb::MSG_APP_RESP && !pending_writes_.empty()) answer_fixed_results_at_commit();
  return s;
}

void NodeCore::submit_write(uint64_t request_id, kvpb::Command cmd, uint64_t now_ms) {
  advance_clock(now_ms);
  if (auto s = kv::validate_command(cmd); !s) return respond_write(request_id, std::unexpected(s.error()));
  if (!raft_->is_leader()) return respond_write(request_id, std::unexpected(not_leader_error()));
  if (pending_requests() >= config_.knobs.max_pending_requests) {
    ASPEN_PROBE("node.request_refused_queue_full");
    return respond_write(request_id, make_error(ErrorCode::kUnavailable,
                                                fmt::format("too many requests in flight (limit {})",
                                                            config_.knobs.max_pending_requests)));
  }
  stamp_command(cmd);
  Index before = raft_->log().last_index();
  if (auto s = raft_->propose(cmd.SerializeAsString()); !s) {
    return respond_write(request_id, std::unexpected(s.error()));
  }
  Index index = raft_->log().last_index();
  ASPEN_ASSERT_MSG(index == before + 1, "a leader's proposal takes the next index");
  pending_writes_[index] = PendingWrite{request_id, raft_->term(), elapsed_ms_ + config_.knobs.request_timeout_ms,
                                        has_fixed_result(cmd)};
}

void NodeCore::submit_conf_change(uint64_t request_id, const pb::ConfChange& cc, uint64_t now_ms) {
  advance_clock(now_ms);
  if (!raft_->is_leader()) return respond_write(request_id, std::unexpected(not_leader_error()));
  // A membership change waits among the writes: it counts against the same bound.
  if (pending_requests() >= config_.knobs.max_pending_requests) {
    ASPEN_PROBE("node.request_refused_queue_full");
    return respond_write(request_id, make_error(ErrorCode::kUnavailable,
                                                fmt::format("too many requests in flight (limit {})",
                                                            config_.knobs.max_pending_requests)));
  }
  Index before = raft_->log().last_index();
  if (auto s = raft_->propose_conf_change(cc); !s) return respond_write(request_id, std::unexpected(s.error()));
  Index index = raft_->log().last_index();
  ASPEN_ASSERT_MSG(index == before + 1, "a leader's proposal takes the next index");
  pending_writes_[index] = PendingWrite{request_id, raft_->term(), elapsed_ms_ + config_.knobs.request_timeout_ms};
}

void NodeCore::submit_read(uint64_t request_id, kvpb::RangeRequest request, ReadConsistency consistency,
                           uint64_t now_ms) {
  advance_clock(now_ms);
  if (auto s = kv::validate_range(request); !s) return respond_read(request_id, std::unexpected(s.error()));
  // A stale read is served from the store at once, unless a write this member answered
  // (from its apply's results) is not in the store yet: it waits for that apply below.
  const bool is_answer_unapplied = store_.applied_index() < answered_from_results_through_;
  if (consistency == ReadConsistency::kStale && !is_answer_unapplied && !is_revision_unapplied(request)) {
    return respond_read(request_id, store_.range(request));
  }
  if (pending_requests() >= config_.knobs.max_pending_requests) {
    ASPEN_PROBE("node.request_refused_queue_full");
    return respond_read(request_id, make_error(ErrorCode::kUnavailable,
                                               fmt::format("too many requests in flight (limit {})",
                                                           config_.knobs.max_pending_requests)));
  }
  PendingRead read{request_id, std::move(request), elapsed_ms_ + config_.knobs.request_timeout_ms};
  ++pending_read_count_;
  if (consistency == ReadConsistency::kStale) {
    // A stale read at a revision this node has committed but not yet applied (a watcher got
    // its event before the store's commit, docs/watch.md), or behind a write answered from
    // its results, waits for the entries this node knows are committed now (every answered
    // one among them), not for a quorum round; then it is served from the store, or refused
    // as usual if the revision still does not exist.
    reads_waiting_apply_.emplace_back(raft_->log().committed(), std::vector<PendingRead>{std::move(read)});
    return;
  }
  read_batch_.push_back(std::move(read));
  // BUGGIFY: this read starts its own round now instead of waiting for the batch: batching is
  // an optimisation, each round is a full ReadIndex (§6.4).
  if (ASPEN_BUGGIFY("node.read_batch_flushed_early")) flush_read_batch();
}

bool NodeCore::is_revision_unapplied(const kvpb::RangeRequest& request) const {
  if (request.revision() == 0 || store_.applied_index() >= raft_->log().committed()) return false;
  auto now = store_.read_history(UINT64_MAX, 0, 0, 0, false);  // the revisions only
  return now && request.revision() > now->revision;
}

void NodeCore::flush_read_batch() {
  if (read_batch_.empty()) return;
  // One ReadIndex round for every read that arrived since the last one (§6.4, batched).
  // Unique across nodes and restarts: see NodeCoreConfig::incarnation.
  std::string ctx = fmt::format("{}.{:016x}.{}", raft_->id(), config_.incarnation, next_read_context_++);
  auto s = raft_->read_index(ctx);
  if (!s) {
    ASPEN_PROBE("node.read_round_not_started");
    for (auto& r : read_batch_) {
      respond_read(r.request_id, std::unexpected(raft_->leader() == kNoNode || raft_->is_leader()
                                                     ? Error(s.error().code(), s.error().message())
                                                     : not_leader_error()));
    }
    pending_read_count_ -= read_batch_.size();
    read_batch_.clear();
    return;
  }
  reads_in_flight_.emplace(std::move(ctx), std::move(read_batch_));
  read_batch_.clear();
}

bool NodeCore::has_ready() const {
  return !read_batch_.empty() || raft_->has_ready() || is_stash_due();
}

std::optional<raft::Ready> NodeCore::take_ready() {
  flush_read_batch();
  if (!raft_->has_ready()) {
    // Nothing from Raft, but held-back entries are due: a Ready that only applies them.
    if (is_stash_due()) return raft::Ready{};
    return std::nullopt;
  }
  answer_fixed_results_at_commit();
  raft::Ready rd = raft_->ready();
  buggify_outgoing(rd.messages);
  if (!rd.messages.empty()) {
    const uint64_t physical_ms = hlc_physical_ms();
    for (auto& m : rd.messages) hlc_.stamp(m, physical_ms);
  }
  return rd;
}

void NodeCore::buggify_outgoing(std::vector<pb::Message>& messages) const {
  if (messages.empty()) return;
  // BUGGIFY: the network may lose or repeat any message. Not a snapshot: the shell reports a
  // snapshot's fate to Raft (report_snapshot), which a silent loss here would skip. Not a
  // proposal twice: the transport delivers a stream message at most once, and a command
  // applied twice is not idempotent.
  std::vector<pb::Message> out;
  out.reserve(messages.size());
  for (auto& m : messages) {
    const bool may_touch = m.type() != pb::MSG_SNAP && m.to() != raft_->id();
    if (may_touch && ASPEN_BUGGIFY("node.message_dropped")) continue;
    if (may_touch && m.type() != pb::MSG_PROP && ASPEN_BUGGIFY("node.message_duplicated")) out.push_back(m);
    out.push_back(std::move(m));
  }
  messages = std::move(out);
}

void NodeCore::answer_fixed_results_at_commit() {
  if (pending_writes_.empty() || raft_->log().unstable_snapshot()) return;
  // Committed means on a majority, but the leader counts its own log before its fsync
  // (take_early_messages). Entries before the first unstable one are durable here (the
  // previous Ready's write completed), so every copy counted for them is durable: such a
  // write survives any minority of crashes and may be acknowledged now.
  const auto& unstable = raft_->log().unstable_entries();
  Index durable = unstable.empty() ? raft_->log().last_index() : unstable.front().index() - 1;
  // The Ready in flight may have made more durable already. Only while the log still holds
  // that very entry (same index and term: the same entry, §5.3) and so everything before it.
  if (log_durable_index_ > durable) {
    auto t = raft_->log().term(log_durable_index_);
    if (t && *t == log_durable_term_) durable = log_durable_index_;
  }
  const Index answerable = std::min(durable, raft_->log().committed());
  for (auto it = pending_writes_.begin(); it != pending_writes_.end() && it->first <= answerable;) {
    if (!it->second.is_result_fixed) {
      ++it;
      continue;
    }
    auto term = raft_->log().term(it->first);
    if (!term || *term != it->second.term) {
      ASPEN_PROBE("node.fixed_result_held_term_changed");
      ++it;
      continue;
    }
    kvpb::CommandResult r;
    r.set_revision(it->first);
    r.set_succeeded(true);
    respond_write(it->second.request_id, std::move(r), it->first);
    it = pending_writes_.erase(it);
  }
}

bool NodeCore::should_apply_now(bool is_forced) const {
  if (is_forced || !config_.knobs.should_defer_apply || apply_stash_.empty()) return true;
  const Index last = apply_stash_.back().index();
  // Someone waits for these entries' apply: a linearizable read, a writer whose result the
  // apply decides (or whose entry another leader's replaced), a lease expiry in flight,
  // watchers on this member.
  if (!reads_waiting_apply_.empty() || is_apply_awaited_) return true;
  if (!pending_writes_.empty() && pending_writes_.begin()->first <= last) return true;
  if (lease_expire_in_flight_ != 0 && lease_expire_in_flight_ <= last) return true;
  if (apply_stash_.size() >= limits::kMaxBatchSize || apply_stash_bytes_ >= limits::kMaxCommittedEntriesPerReadyBytes / 2) {
    return true;
  }
  return elapsed_ms_ >= apply_stash_since_ms_ + config_.knobs.apply_delay_max_ms;
}

bool NodeCore::is_stash_due() const {
  return !apply_stash_.empty() && !is_async_apply_in_flight_ && should_apply_now(is_stash_forced_);
}

NodeCore::ToApply NodeCore::take_entries_to_apply(const raft::Ready& rd) {
  bool is_forced = rd.snapshot.has_value() || is_stash_forced_;
  if (apply_stash_.empty()) apply_stash_since_ms_ = elapsed_ms_;
  for (const auto& e : rd.committed_entries) {
    // A membership change is applied at once: Raft gates the next change and the joint
    // configuration's exit on its apply (and members act on the membership they applied).
    is_forced = is_forced || e.type() == pb::ENTRY_CONF_CHANGE;
    apply_stash_bytes_ += e.ByteSizeLong();
    apply_stash_.push_back(e);
  }
  if (apply_stash_.empty()) return {};
  // One asynchronous apply at a time: what arrives meanwhile waits for it, so the store's
  // queue stays bounded and the next batch is bigger. A membership change waits too: the
  // store applies in index order, and the earlier apply may be waiting to be retried (a full
  // disk) outside the apply thread's queue, which a synchronous apply would not wait for
  // (chaos run, seed 6 with --overlap: the leader's disk filled, a promotion was committed,
  // and its apply came before the failed one's retry, so the store refused it as a gap and
  // the node stopped as corrupt). Only a snapshot goes first: it replaces what the earlier
  // apply would write, and the retry then skips entries at or below the snapshot.
  const bool is_waiting_for_apply = is_async_apply_in_flight_ && !rd.snapshot.has_value();
  const bool is_held = is_waiting_for_apply || (!is_forced && !should_apply_now(false));
  is_stash_forced_ = is_held && is_forced;
  // BUGGIFY: apply now after all; batching applies is an optimisation.
  if (is_held && (is_async_apply_in_flight_ || !ASPEN_BUGGIFY("node.apply_not_deferred"))) {
    ASPEN_PROBE("node.apply_deferred");
    return {};
  }
  is_stash_forced_ = false;
  ToApply out;
  out.entries = std::make_shared<const std::vector<pb::Entry>>(std::move(apply_stash_));
  out.is_async = !is_forced && config_.knobs.should_apply_async;
  if (out.is_async) is_async_apply_in_flight_ = true;
  apply_stash_.clear();
  apply_stash_bytes_ = 0;
  return out;
}

void NodeCore::on_log_durable(const raft::Ready& rd) {
  if (rd.entries.empty()) return;
  log_durable_index_ = rd.entries.back().index();
  log_durable_term_ = rd.entries.back().term();
  answer_fixed_results_at_commit();
}

void NodeCore::on_persisted(const raft::Ready& rd, const std::vector<pb::Entry>& applied,
                            const storage::WriteOutcome& outcome) {
  log_durable_index_ = 0;
  log_durable_term_ = 0;
  // An installed snapshot replaced the log: its applied stamp is a floor even if the sender's
  // MSG_SNAP stamp (NodeHlc::receive) did not carry one.
  if (rd.snapshot) {
    if (auto t = store_.applied_hlc()) hlc_.saw_log_stamp(*t);
  }
  apply_results(applied, outcome.applied);
  for (const auto& rs : rd.read_states) {
    auto it = reads_in_flight_.find(rs.context);
    if (it == reads_in_flight_.end()) continue;
    if (rs.is_refused) {
      ASPEN_PROBE("node.read_refused_unconfirmed");
      Error e = raft_->is_leader() || raft_->leader() == kNoNode
                    ? Error(ErrorCode::kUnavailable, "the leader could not confirm its leadership in time; retry")
                    : not_leader_error();
      for (auto& r : it->second) respond_read(r.request_id, std::unexpected(e));
      pending_read_count_ -= it->second.size();
    } else {
      reads_waiting_apply_.emplace_back(rs.index, std::move(it->second));
    }
    reads_in_flight_.erase(it);
  }
  raft_->advance(rd);
  serve_ready_reads();
}

void NodeCore::on_applied(const std::vector<pb::Entry>& entries, const std::vector<storage::AppliedEntry>& results) {
  ASPEN_ASSERT_MSG(is_async_apply_in_flight_, "on_applied() answers an asynchronous apply");
  is_async_apply_in_flight_ = false;
  apply_results(entries, results);
  serve_ready_reads();
}

void NodeCore::apply_results(const std::vector<pb::Entry>& applied, const std::vector<storage::AppliedEntry>& results) {
  size_t k = 0;
  for (const auto& a : results) {
    while (k < applied.size() && applied[k].index() != a.index) ++k;
    ASPEN_ASSERT_MSG(k < applied.size(), "applied entries come from this Ready");
    const pb::Entry& e = applied[k];
    if (e.type() == pb::ENTRY_CONF_CHANGE) {
      // A snapshot the core took in while this Ready was being written already carries a
      // newer membership: applying an older change now would overwrite it (simulator seed
      // 1099497: a follower went back to a joint configuration it had left).
      const auto& restored = raft_->log().unstable_snapshot();
      const bool is_superseded = restored && restored->metadata().index() >= e.index();
      if (is_superseded) ASPEN_PROBE("node.conf_change_skipped_after_snapshot");
      pb::ConfChange cc;
      if (!is_superseded && cc.ParseFromString(e.data())) raft_->apply_conf_change(cc);
    }
    if (a.index == lease_expire_in_flight_) lease_expire_in_flight_ = 0;
    if (a.index == compact_in_flight_) compact_in_flight_ = 0;
    answer_applied_write(a);
  }
}

void NodeCore::on_results_known(const std::vector<storage::AppliedEntry>& results) {
  for (const auto& a : results) {
    // Membership changes are answered once applied in full (the store syncs them).
    if (a.type != pb::ENTRY_NORMAL || !pending_writes_.contains(a.index)) continue;
    answer_applied_write(a);
    answered_from_results_through_ = std::max(answered_from_results_through_, a.index);
  }
}

void NodeCore::answer_applied_write(const storage::AppliedEntry& a) {
  auto it = pending_writes_.find(a.index);
  if (it == pending_writes_.end()) return;
  if (it->second.term == a.term) {
    kvpb::CommandResult r = a.result;
    if (r.revision() == 0) r.set_revision(a.index);
    if (a.type != pb::ENTRY_NORMAL) r.set_succeeded(true);
    respond_write(it->second.request_id, std::move(r), a.index);
  } else {
    // Another leader's entry took this index: ours was never committed.
    ASPEN_PROBE("node.write_lost_to_new_leader");
    respond_write(it->second.request_id,
                  make_error(ErrorCode::kProposalDropped, "leadership changed before the write committed; retry"));
  }
  pending_writes_.erase(it);
}

void NodeCore::serve_ready_reads() {
  // Answers are built here and sent by the shell after this call: without a budget, one
  // ReadIndex round of many large scans would all sit in memory at once (100 scans of
  // 4 MiB: 400 MiB) before the transport's send caps see any of them. Past the budget the
  // rest waits for the next call (the next tick at the latest); serving a read at a later
  // applied state than its read point is still linearizable.
  const Index applied = store_.applied_index();
  size_t served_bytes = 0;
  for (size_t i = 0; i < reads_waiting_apply_.size();) {
    auto& [index, reads] = reads_waiting_apply_[i];
    if (index > applied) {
      ++i;
      continue;
    }
    size_t served = 0;
    while (served < reads.size() && served_bytes < limits::kMaxReadAnswerBytesPerRound) {
      auto r = store_.range(reads[served].request);
      if (r) {
        for (const auto& kv : r->kvs()) served_bytes += kv.key().size() + kv.value().size();
      }
      respond_read(reads[served].request_id, std::move(r), index);
      ++served;
    }
    pending_read_count_ -= served;
    if (served < reads.size()) {
      reads.erase(reads.begin(), reads.begin() + static_cast<std::ptrdiff_t>(served));
      return;
    }
    reads_waiting_apply_.erase(reads_waiting_apply_.begin() + static_cast<std::ptrdiff_t>(i));
  }
}

void NodeCore::expire_timed_out(uint64_t now_ms) {
  for (auto it = pending_writes_.begin(); it != pending_writes_.end();) {
    if (it->second.deadline_ms > now_ms) {
      ++it;
      continue;
    }
    // The outcome is unknown: the entry may still commit. The client must treat it so.
    ASPEN_PROBE("node.write_timed_out");
    respond_write(it->second.request_id,
                  make_error(ErrorCode::kTimeout, "the write was not confirmed in time; it may or may not have applied"));
    it = pending_writes_.erase(it);
  }
  auto expire_reads = [&](std::vector<PendingRead>& reads) {
    for (auto r = reads.begin(); r != reads.end();) {
      if (r->deadline_ms > now_ms) {
        ++r;
        continue;
      }
      ASPEN_PROBE("node.read_timed_out");
      respond_read(r->request_id, make_error(ErrorCode::kTimeout, "the read could not be confirmed in time"));
      --pending_read_count_;
      r = reads.erase(r);
    }
  };
  for (auto it = reads_in_flight_.begin(); it != reads_in_flight_.end();) {
    expire_reads(it->second);
    it = it->second.empty() ? reads_in_flight_.erase(it) : std::next(it);
  }
  for (auto it = reads_waiting_apply_.begin(); it != reads_waiting_apply_.end();) {
    expire_reads(it->second);
    it = it->second.empty() ? reads_waiting_apply_.erase(it) : std::next(it);
  }
}

void NodeCore::maybe_expire_leases(uint64_t now_ms) {
  if (!raft_->is_leader() || lease_expire_in_flight_ != 0) return;
  if (now_ms < last_lease_check_ms_ + config_.knobs.lease_check_interval_ms) return;
  last_lease_check_ms_ = now_ms;
  auto ids = store_.expired_leases(now_ms, limits::kMaxLeasesPerExpire);
  if (!ids || ids->empty()) return;
  // Only the leader decides that a lease expired, with its own clock; every replica then
  // applies the same LeaseExpire entry.
  kvpb::Command cmd;
  stamp_command(cmd);
  for (uint64_t id : *ids) cmd.mutable_lease_expire()->add_ids(id);
  if (raft_->propose(cmd.SerializeAsString())) {
    ASPEN_PROBE("node.lease_expiry_proposed");
    lease_expiries_proposed_ += ids->size();
    lease_expire_in_flight_ = raft_->log().last_index();
  }
}

void NodeCore::maybe_compact_history(uint64_t now_ms) {
  const auto& k = config_.knobs;
  if (!raft_->is_leader() || compact_in_flight_ != 0) return;
  if (k.history_retention_revisions == 0 && k.history_retention_ms == 0) return;
  if (now_ms < last_history_check_ms_ + k.history_check_interval_ms) return;
  last_history_check_ms_ = now_ms;
  auto target = store_.history_retention_target(now_ms, k.history_retention_revisions, k.history_retention_ms);
  if (!target || !*target) return;
  // Compaction is replicated like any command: every replica drops the same history.
  kvpb::Command cmd;
  stamp_command(cmd);
  cmd.mutable_compact()->set_revision(**target);
  if (raft_->propose(cmd.SerializeAsString())) {
    ASPEN_PROBE("node.history_compaction_proposed");
    compact_in_flight_ = raft_->log().last_index();
  }
}

std::vector<Response> NodeCore::take_responses() {
  std::vector<Response> out = std::move(responses_);
  responses_.clear();
  return out;
}

}  // namespace aspen::node
