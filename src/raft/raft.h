// RaftCore: a deterministic, sans-I/O implementation of the Raft consensus algorithm
// (Ongaro & Ousterhout, "In Search of an Understandable Consensus Algorithm", and Ongaro's
// thesis), shaped like etcd-io/raft's RawNode.
//
// RaftCore owns no sockets, files, threads, clocks or random devices. The caller drives it:
//   - tick() at a fixed interval (the caller's clock decides what a tick is; 100 ms by default);
//   - step(msg) for every message that arrives from a peer;
//   - propose(data), propose_conf_change(cc), read_index(ctx), transfer_leadership(to);
//   - when has_ready(), take ready() and handle it (contract below), then call advance(rd).
// Randomness (election timeouts) comes from a seed in RaftConfig, so a seed replays a run.
//
// THE READY CONTRACT. Handle the fields of a Ready in this order:
//   1. If `snapshot` is set, persist it (it replaces the log and the state machine).
//   2. Persist `entries` (appending; an entry overwrites any stored entry with the same index
//      and everything after it) and `hard_state` if set. Make them durable (fsync) before 3.
//      Nothing acknowledged to a peer may be lost by a crash: votes and appended entries are
//      promises.
//   3. Send `messages`. They may depend on the state persisted in step 2.
//   4. Apply `committed_entries` to the state machine in order. For an ENTRY_CONF_CHANGE entry
//      call apply_conf_change() and persist the ConfState it returns with the applied index.
//   5. Serve `read_states`: a read with that context is linearizable once the state machine
//      has applied at least `index`.
//   6. Call advance(rd). Do not call ready() again before advance().
// Between ready() and advance() the caller may keep calling tick(), step() and propose():
// that is how proposals arriving during an fsync are batched into the next Ready.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "aspen/raft.pb.h"
#include "core/error.h"
#include "core/limits.h"
#include "core/rng.h"
#include "core/types.h"
#include "raft/confchange.h"
#include "raft/log_storage.h"
#include "raft/raft_log.h"
#include "raft/tracker.h"

namespace aspen::raft {

struct RaftConfig {
  NodeId id = kNoNode;
  // In ticks; the election timeout is drawn uniformly from [election_tick, 2 x election_tick).
  // No defaults here: a node derives them from its node::Knobs (NodeCore::create), tests set
  // them; create() refuses 0.
  uint32_t heartbeat_tick = 0;
  uint32_t election_tick = 0;
  // The last index the state machine has applied (entries after it are redelivered).
  Index applied = 0;
  uint64_t max_size_per_msg_bytes = limits::kMaxEntriesPerMessageBytes;
  size_t max_inflight_msgs = 0;  // per follower in replicate state; set like the ticks above
  uint64_t max_uncommitted_entries_bytes = limits::kMaxUncommittedEntriesBytes;
  uint64_t max_committed_size_per_ready_bytes = limits::kMaxCommittedEntriesPerReadyBytes;
  // §6.2: a leader that has not heard from a quorum for an election timeout steps down, and
  // followers that heard from a leader recently ignore vote requests.
  bool check_quorum = true;
  // §9.6: a candidate first asks whether it could win, without bumping terms.
  bool pre_vote = true;
  // After a commit, send appends only to followers that have entries to receive; the others
  // learn the commit index from the next append or heartbeat. Spares a message round per
  // commit (and, in the node, lets a leader's apply wait for the next proposal).
  bool is_commit_broadcast_lazy = false;
  uint64_t seed = 1;
};

enum class Role : uint8_t { kFollower, kPreCandidate, kCandidate, kLeader };
const char* role_name(Role r);

struct SoftState {
  NodeId leader = kNoNode;
  Role role = Role::kFollower;
  friend bool operator==(const SoftState&, const SoftState&) = default;
};

struct ReadState {
  Index index = 0;
  std::string context;
  // The leader could not confirm its leadership for this read within an election timeout
  // (or stepped down first): `index` means nothing and the reads behind `context` must fail.
  bool is_refused = false;
};

struct Ready {
  std::optional<SoftState> soft_state;       // changed leader/role: informational
  std::optional<pb::HardState> hard_state;   // persist (step 2)
  std::optional<pb::Snapshot> snapshot;      // persist and install (step 1)
  std::vector<pb::Entry> entries;            // persist (step 2)
  std::vector<pb::Message> messages;         // send after persisting (step 3)
  std::vector<pb::Entry> committed_entries;  // apply (step 4)
  std::vector<ReadState> read_states;        // serve (step 5)

  bool must_sync() const { return hard_state.has_value() || !entries.empty() || snapshot.has_value(); }
};

// A read-only summary for status pages and invariant checks.
struct RaftStatus {
  NodeId id = kNoNode;
  NodeId leader = kNoNode;
  Role role = Role::kFollower;
  Term term = 0;
  NodeId vote = kNoNode;
  Index commit = 0;
  Index applied = 0;
  Index last_index = 0;
  NodeId lead_transferee = kNoNode;
};

class RaftCore {
 public:
  // Restores hard state, membership and log from storage. Fails on an invalid config or an
  // inconsistent stored state. `storage` must outlive the core.
  static Result<std::unique_ptr<RaftCore>> create(const RaftConfig& config, const LogStorage* storage);
  ~RaftCore();
  RaftCore(const RaftCore&) = delete;
  RaftCore& operator=(const RaftCore&) = delete;

  void tick();
  // A message from a peer. Local message types are refused.
  Status step(const pb::Message& msg);
  // Proposes a state-machine command. Errors: ProposalDropped (no leader, leadership transfer
  // in progress, too many uncommitted bytes, this node was removed).
  Status propose(std::string data);
  Status propose_conf_change(const pb::ConfChange& cc);
  // Requests a linearizable read point; the answer arrives in a Ready's read_states with the
  // same context (possibly refused, see ReadState). Batching: one call may stand for many
  // client reads. The context is the caller's name for the request and is only echoed back:
  // it must be unique across the caller's restarts (a reused context could match an answer
  // meant for a request of an earlier life, computed at an older read point).
  Status read_index(std::string context);
  void transfer_leadership(NodeId transferee);
  // Starts an election now (e.g. to bootstrap a single-node cluster quickly).
  void campaign();
  // The transport could not reach `peer`. A leader stops streaming to it and probes; a
  // follower told that its leader is unreachable starts a pre-vote at once (pre_vote only).
  void report_unreachable(NodeId peer);
  void report_snapshot(NodeId peer, bool failed);
  // Call when a committed ENTRY_CONF_CHANGE entry is applied; returns the membership to persist.
  pb::ConfState apply_conf_change(const pb::ConfChange& cc);

  bool has_ready() const;
  // Whether the next Ready holds anything beyond committed entries to apply and the commit
  // index they move: messages, entries or a snapshot to persist, term or vote, read states.
  bool has_ready_beyond_apply() const;
  Ready ready();
  void advance(const Ready& rd);

  RaftStatus status() const;
  const ProgressTracker& tracker() const { return trk_; }
  NodeId id() const { return id_; }
  NodeId leader() const { return lead_; }
  Term term() const { return term_; }
  Role role() const { return role_; }
  bool is_leader() const { return role_ == Role::kLeader; }
  const RaftLog& log() const { return log_; }
  // A follower whose readers wait on its applied state (watchers) asks, in its answers to
  // appends and heartbeats, to learn each commit index at once; without it a lazy leader
  // (is_commit_broadcast_lazy) tells it only with the next append or heartbeat, up to a
  // heartbeat interval late when no writes follow.
  void set_wants_commit_eagerly(bool wants) { wants_commit_eagerly_ = wants; }
  // Ticks since a follower last heard from its leader (or granted a vote); 0 on a leader.
  uint32_t ticks_since_leader_contact() const { return role_ == Role::kLeader ? 0 : election_elapsed_; }

 private:
  RaftCore(const RaftConfig& config, const LogStorage* storage);

  // --- raft.cc: lifecycle, elections, message dispatch ---
  Status step_internal(const pb::Message& m);
  void tick_election();
  void tick_heartbeat();
  void become_follower(Term term, NodeId lead);
  void become_candidate();
  void become_pre_candidate();
  void become_leader();
  void reset(Term term);
  void reset_randomized_election_timeout();
  bool is_past_election_timeout() const { return election_elapsed_ >= randomized_election_timeout_; }
  // Moves the election timer so this node campaigns after min_wait_ticks plus a random part
  // of up to two heartbeats (at most a quarter of the election timeout): the fast-failover
  // delay. Unless may_postpone, a campaign already due sooner stays so.
  void campaign_soon(uint32_t min_wait_ticks, bool may_postpone);
  // A follower heard its leader (append, heartbeat, snapshot): restarts the election timer
  // and ends any fast-failover retries.
  void heard_from_leader(NodeId leader);
  bool is_promotable() const;
  void hup(bool is_transfer);
  void campaign_internal(bool is_pre_vote, bool is_transfer);
  VoteResult poll(NodeId from, pb::MessageType type, bool granted);
  void handle_vote_request(const pb::Message& m);
  // Vote rejections carry the rejecter's commit index; see learn_commit_from_rejection.
  void attach_commit(pb::Message& rejection) const;
  void learn_commit_from_rejection(const pb::Message& m);
  Status step_follower(const pb::Message& m);
  Status step_candidate(const pb::Message& m);
  Status check_remote_message(const pb::Message& m) const;
  Status handle_append_entries(const pb::Message& m);
  Status handle_heartbeat(const pb::Message& m);
  void handle_snapshot(const pb::Message& m);
  bool restore(const pb::Snapshot& snap);
  void send(pb::Message m);
  bool has_unapplied_conf_change() const;
  void load_state(const pb::HardState& hs);
  void step_down_after_removal();

  // --- raft_leader.cc: replication, commit, ReadIndex, transfer ---
  Status step_leader(const pb::Message& m);
  void handle_append_response(const pb::Message& m, Progress& pr);
  void handle_heartbeat_response(const pb::Message& m, Progress& pr);
  Status handle_proposal(pb::Message& m);
  void handle_read_index(const pb::Message& m, uint64_t arrived_tick);
  void handle_transfer_leader(NodeId transferee);
  void respond_read_index(const pb::Message& req, Index read_index);
  bool append_entries(std::vector<pb::Entry>& ents);
  bool maybe_commit();
  bool committed_entry_in_current_term() const;
  void release_pending_read_index_messages();
  void send_append(NodeId to) { maybe_send_append(to, true); }
  bool maybe_send_append(NodeId to, bool send_if_empty);
  bool maybe_send_snapshot(NodeId to, Progress& pr);
  void bcast_append();
  void bcast_heartbeat(const std::string& context);
  // ReadIndex rounds (raft_leader.cc).
  void bcast_read_round();
  void release_confirmed_reads();
  void refuse_read(const pb::Message& req);
  // To the requester: a read state when it is this node, a MSG_READ_INDEX_RESP otherwise.
  void answer_read(const pb::Message& req, Index read_index, bool is_refused);
  void expire_reads();
  void send_timeout_now(NodeId to);
  void abort_leader_transfer() { lead_transferee_ = kNoNode; }
  void switch_to_config(ConfigAndProgress cp);

  // --- state ---
  NodeId id_;
  Term term_ = 0;
  NodeId vote_ = kNoNode;
  NodeId lead_ = kNoNode;
  Role role_ = Role::kFollower;
  bool is_learner_ = false;
  RaftLog log_;
  ProgressTracker trk_;
  std::vector<pb::Message> msgs_;
  std::vector<ReadState> read_states_;

  RaftConfig config_;
  Rng rng_;
  uint32_t election_elapsed_ = 0;
  uint32_t heartbeat_elapsed_ = 0;
  uint32_t randomized_election_timeout_ = 0;
  // After the transport reported our leader unreachable: how many more campaign attempts
  // may come soon rather than after a whole election timeout. Zero once a leader is heard.
  uint32_t fast_campaigns_left_ = 0;
  static constexpr uint32_t kFastCampaignRetries = 6;

  NodeId lead_transferee_ = kNoNode;
  // A conf change may be proposed only when the previous one (at this index) is applied.
  Index pending_conf_index_ = 0;
  uint64_t uncommitted_size_bytes_ = 0;
  // New proposals are waiting to be broadcast at the next ready().
  bool should_bcast_append_ = false;
  // Reads are waiting for a leadership-confirming heartbeat round at the next ready().
  bool should_bcast_read_heartbeat_ = false;

  // ReadIndex (§6.4). A read is confirmed by a heartbeat round: every heartbeat a leader sends
  // while reads wait carries a round number it alone assigns (increasing, never reused by
  // this process), and followers echo it. A quorum of acks for round r proves this node was
  // leader after every read that arrived before round r was sent. Acks are matched to
  // rounds, never to the requesters' contexts, so a context reused by a requester cannot
  // release another request. A read that misses its round is covered by the next one (each
  // periodic heartbeat is a round while reads wait) and is refused after an election timeout.
  struct PendingRead {
    Index index = 0;           // the commit index when it arrived
    pb::Message request;       // answered to request.from() with request.context()
    uint64_t round = 0;        // the first round sent after it arrived
    uint64_t arrived_tick = 0;
  };
  std::deque<PendingRead> pending_reads_;  // by arrival, so rounds never decrease
  uint64_t next_read_round_ = 1;
  std::map<NodeId, uint64_t> read_round_acked_;  // highest round each peer acked in this term
  // Reads that arrived before this leader committed an entry in its term.
  struct HeldRead {
    pb::Message request;
    uint64_t arrived_tick = 0;
  };
  std::vector<HeldRead> pending_read_index_messages_;
  uint64_t ticks_ = 0;  // ticks since this core was created
  bool wants_commit_eagerly_ = false;  // see set_wants_commit_eagerly

  // What the last Ready reported, to detect changes.
  SoftState prev_soft_state_;
  pb::HardState prev_hard_state_;
};

}  // namespace aspen::raft
