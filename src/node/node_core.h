// NodeCore: everything a node decides, with no I/O — the Raft core, the bookkeeping of client
// requests waiting for their entries or read points, ReadIndex batching, and the lease-expiry
// driver. The shell (Node) owns the sockets, the storage thread and the clock, and drives
// NodeCore; the simulator drives it the same way.
//
// The cycle, as in RaftCore's Ready contract:
//   1. feed inputs: tick(now_ms), step(msg), submit_write(...), submit_read(...);
//   2. take_ready(): the Raft work of this round (nullopt if none);
//   3. persist it with Store::write() (one transaction: entries, hard state, applied
//      commands), then send rd.messages;
//   4. on_persisted(rd, outcome): membership changes, answers for the requests whose
//      entries were applied, linearizable reads whose read point is now applied;
//      (writes whose result is fixed when proposed, plain puts, are answered in step 2
//      already, once their entry is committed and durable in this node's log: the apply
//      transaction's fsync is then off their path; reads still wait for the apply;)
//   5. take_responses() and deliver them.
// Writes are accepted only by the leader, which stamps the command with its clock (the only
// time apply() ever sees); elsewhere they fail with NotLeader naming the leader, and the
// shell forwards them.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "aspen/kv.pb.h"
#include "core/error.h"
#include "node/knobs.h"
#include "node/node_hlc.h"
#include "raft/raft.h"
#include "storage/store.h"

namespace aspen::node {

namespace pb = aspen::raftpb;

enum class ReadConsistency : uint8_t {
  kLinearizable,  // ReadIndex: reflects every write acknowledged before the read began
  kStale,         // served from this node's applied state at once; may lag the leader (a read
                  // at a revision it has committed but not applied yet waits for that apply)
};

struct NodeCoreConfig {
  // Identity, seed and protocol switches of the Raft core. Its timing (heartbeat_tick,
  // election_tick) and flow control (max_inflight_msgs, max_size_per_msg_bytes) are not read
  // from here: create() sets them from `knobs`, so that a node has one source of tuning.
  raft::RaftConfig raft;
  // Drawn at random by whoever starts the core (the shell from the OS, the simulator from its
  // seed), fresh on every start; never 0. Names this life of the node in the ReadIndex
  // contexts it sends, so that an answer to a request of an earlier life (same node id, a
  // counter that restarted at 1) can never be taken for an answer to a new one.
  uint64_t incarnation = 0;
  // Timeouts, queue bounds and Raft timing. With knobs.should_defer_apply committed entries
  // are applied in batches (take_entries_to_apply).
  Knobs knobs;
  // The physical clock of the node's hybrid logical clock (node/node_hlc.h), milliseconds
  // since the Unix epoch, read at each event that needs a stamp: the shell passes its wall
  // clock (NodeEnv::wall_clock_us, with the test-only offset). Unset (the simulator, unit
  // tests): the latest time given to tick() or submit_*(). Reading it is the only clock
  // NodeCore touches, and only the HLC uses it: nothing Raft or apply decides depends on it.
  std::function<uint64_t()> hlc_physical_ms;
  uint64_t hlc_max_offset_ms = kDefaultHlcMaxOffsetMs;
};

struct Response {
  uint64_t request_id = 0;
  bool is_write = false;
  // The log index of a write's entry, or the read point a linearizable read was served at
  // (0 for stale reads and errors). For checks and diagnostics.
  Index index = 0;
  Result<kvpb::CommandResult> write = make_error(ErrorCode::kInternal, "unset");
  Result<kvpb::RangeResult> read = make_error(ErrorCode::kInternal, "unset");
};

// The Store write that persists one Ready (step 3 above). Points into `rd`, which must
// outlive the batch. With `persisted` (the hard state already durable), a Ready that only
// applies entries and moves the commit index is marked as not needing full durability
// (Raft needs entries, term and vote durable; commit and applied state are recomputed).
storage::WriteBatch write_batch_for(const raft::Ready& rd, const pb::HardState* persisted = nullptr);
// Whether the Ready applies a membership change (those batches are always synced).
bool applies_conf_change(const raft::Ready& rd);

// A leader may send its appends and heartbeats while its own fsync runs (Raft thesis
// §10.2.1), saving one disk write from every commit's critical path. Safe only because the
// commit index those messages carry is clamped to what is already durable on the leader:
// the leader counts its own unpersisted entries toward a commit, so an unclamped commit
// could let a follower apply an entry that a crash of the leader then erases. Everything
// else (votes, read-index answers, ...) still waits for the fsync, and nothing is sent
// early from a Ready that changes the term or vote or installs a snapshot.
//
// Moves the messages that may leave now out of `rd.messages` (clamped) and returns them.
// `persisted` is the hard state already durable before this Ready.
std::vector<pb::Message> take_early_messages(raft::Ready& rd, bool is_leader, const pb::HardState& persisted);

// Whether a command's result is known when it is proposed (see NodeCore::PendingWrite).
bool has_fixed_result(const kvpb::Command& cmd);

class NodeCore {
 public:
  // The store must outlive the core and be the one the shell persists Readys into.
  static Result<std::unique_ptr<NodeCore>> create(const NodeCoreConfig& config, storage::Store& store);

  void tick(uint64_t now_ms);
  Status step(const pb::Message& msg);
  void submit_write(uint64_t request_id, kvpb::Command cmd, uint64_t now_ms);
  void submit_read(uint64_t request_id, kvpb::RangeRequest request, ReadConsistency consistency,
                   uint64_t now_ms);
  // A membership change; answered (as a write, revision = its log index) once applied.
  // Leader only; one change at a time (ProposalDropped while another is pending).
  void submit_conf_change(uint64_t request_id, const pb::ConfChange& cc, uint64_t now_ms);

  bool has_ready() const;
  std::optional<raft::Ready> take_ready();
  // Which committed entries the store applies with this Ready (storage::WriteBatch::committed).
  // Raft hands out each committed entry once; NodeCore holds them back and lets the store
  // apply many in one transaction (one LMDB sync instead of one per entry) until something
  // needs them applied: a read waiting for its read point, a writer waiting for its result,
  // a membership change, a snapshot, a lease expiry, a full batch, or apply_delay_max_ms.
  // Nothing that waits for an apply is ever held back; a stale read may lag that long.
  // Whether something outside the core waits for every apply on this member (watchers: a
  // change reaches them only once applied). While set, applies are not deferred, and a
  // follower asks its leader for each commit index at once (RaftCore::set_wants_commit_eagerly).
  void set_is_apply_awaited(bool is_awaited) {
    is_apply_awaited_ = is_awaited;
    raft_->set_wants_commit_eagerly(is_awaited);
  }
  struct ToApply {
    std::shared_ptr<const std::vector<pb::Entry>> entries;  // null: none now
    // The store may apply them after the Ready is finished, on its own thread, and report
    // with on_applied() later: the next Ready's log write need not wait for the state
    // machine. False for a membership change or a snapshot (applied before the Ready
    // finishes, after every earlier apply) and with knobs.should_apply_async off. At most
    // one asynchronous apply is in flight.
    bool is_async = false;
  };
  ToApply take_entries_to_apply(const raft::Ready& rd);
  // Entries handed out by take_entries_to_apply are applied (`results` in order, from the
  // store): answers, membership, leases, reads waiting for their read point.
  void on_applied(const std::vector<pb::Entry>& entries, const std::vector<storage::AppliedEntry>& results);
  // The results of an asynchronous apply still being committed (WriteBatch::on_results):
  // the writes among them are answered now. They are final: the entries are committed and
  // durable here, and applying them again after a crash gives the same results. Reads wait
  // for on_applied, when the store shows the changes. Optional; on_applied answers any
  // write this did not.
  void on_results_known(const std::vector<storage::AppliedEntry>& results);
  // The last log index of a write answered from its apply's results (on_results_known). Until
  // the store's applied index reaches it, what this member serves from its store must wait
  // (stale reads here do; the shell holds other local reads), so that whatever it serves
  // after an answer shows that write, as when writes were answered only once applied.
  Index answered_from_results_through() const { return answered_from_results_through_; }
  // The Ready's log part (entries, hard state, snapshot) is durable; its apply may still be
  // running. Writes whose result is fixed and whose entry is now committed and durable here
  // are answered.
  void on_log_durable(const raft::Ready& rd);
  // The whole Ready is persisted and `applied` (its take_entries_to_apply) applied
  // (on_log_durable came first).
  void on_persisted(const raft::Ready& rd, const std::vector<pb::Entry>& applied, const storage::WriteOutcome& outcome);
  // The same when the store applied the Ready's own committed entries (no batching).
  void on_persisted(const raft::Ready& rd, const storage::WriteOutcome& outcome) {
    on_persisted(rd, rd.committed_entries, outcome);
  }
  std::vector<Response> take_responses();

  raft::RaftCore& raft() { return *raft_; }
  const raft::RaftCore& raft() const { return *raft_; }
  NodeId leader() const { return raft_->leader(); }
  bool is_leader() const { return raft_->is_leader(); }
  size_t pending_requests() const { return pending_writes_.size() + pending_read_count_; }
  // The node's hybrid logical clock: refusals (stamps too far ahead) counted, the last one's
  // description for the shell's log.
  const NodeHlc& hlc() const { return hlc_; }
  const std::string& last_hlc_refusal() const { return last_hlc_refusal_; }
  // Leases this core, as leader, proposed to expire (their expiry time passed on its clock).
  uint64_t lease_expiries_proposed() const { return lease_expiries_proposed_; }

 private:
  NodeCore(const NodeCoreConfig& config, storage::Store& store, std::unique_ptr<raft::RaftCore> raft);
  void respond_write(uint64_t request_id, Result<kvpb::CommandResult> r, Index index = 0);
  void respond_read(uint64_t request_id, Result<kvpb::RangeResult> r, Index read_index = 0);
  void flush_read_batch();
  void serve_ready_reads();
  void expire_timed_out(uint64_t now_ms);
  void maybe_expire_leases(uint64_t now_ms);
  // History retention (knobs.history_retention_*): the leader proposes a Compact.
  void maybe_compact_history(uint64_t now_ms);
  Error not_leader_error() const;
  // Takes the time an input came with: now_ms_ and elapsed_ms_ (above).
  void advance_clock(uint64_t now_ms);
  uint64_t hlc_physical_ms() const { return config_.hlc_physical_ms ? config_.hlc_physical_ms() : now_ms_; }
  // After a restart: the largest stamp in the log (NodeHlc's log_max).
  void recover_log_hlc();
  // Stamps a command this node proposes as leader (its timestamp_ms and hlc).
  void stamp_command(kvpb::Command& cmd);

  struct PendingWrite {
    uint64_t request_id = 0;
    Term term = 0;
    uint64_t deadline_ms = 0;
    // Its result is known when it is proposed (a put without a lease: applied, it always
    // succeeds at its own index), so it may be answered once committed and durable here.
    bool is_result_fixed = false;
  };
  void answer_fixed_results_at_commit();
  bool should_apply_now(bool is_forced) const;
  bool is_stash_due() const;  // held-back entries should go to the store now
  // A read at a revision above the store's while committed entries wait to be applied.
  bool is_revision_unapplied(const kvpb::RangeRequest& request) const;
  void apply_results(const std::vector<pb::Entry>& applied, const std::vector<storage::AppliedEntry>& results);
  void answer_applied_write(const storage::AppliedEntry& a);  // if it is a pending write
  // Simulation only (core/buggify.h): loses or repeats some outgoing messages.
  void buggify_outgoing(std::vector<pb::Message>& messages) const;
  // Committed entries Raft handed out that the store has not been given yet, and since when.
  std::vector<pb::Entry> apply_stash_;
  uint64_t apply_stash_bytes_ = 0;
  uint64_t apply_stash_since_ms_ = 0;
  bool is_async_apply_in_flight_ = false;
  Index answered_from_results_through_ = 0;  // see answered_from_results_through()
  bool is_stash_forced_ = false;  // the stash holds a membership change, waiting for that apply
  // The last entry of the Ready in flight once its log part is durable (its term, to tell
  // whether the entry is still the one at that index): raft still counts it as unstable
  // until on_persisted. 0 when none.
  Index log_durable_index_ = 0;
  Term log_durable_term_ = 0;
  struct PendingRead {
    uint64_t request_id = 0;
    kvpb::RangeRequest request;
    uint64_t deadline_ms = 0;
  };

  NodeCoreConfig config_;
  storage::Store& store_;
  std::unique_ptr<raft::RaftCore> raft_;
  // The time the shell passes in is its wall clock, which may be stepped back or forward
  // (NTP, an operator, the chaos harness's clock nemesis). Two clocks are kept from it:
  // now_ms_, the largest time seen, for what must agree across nodes (leader stamps, lease
  // expiry, history age); elapsed_ms_, the sum of the forward moves only, for this node's own
  // intervals and deadlines, so that a step back does not hold every pending request past
  // its deadline until the clock catches up. Equal when the input never goes back (the
  // simulator). See advance_clock().
  uint64_t now_ms_ = 0;
  uint64_t elapsed_ms_ = 0;
  uint64_t last_input_ms_ = 0;
  NodeHlc hlc_;
  std::string last_hlc_refusal_;
  uint64_t lease_expiries_proposed_ = 0;

  std::map<Index, PendingWrite> pending_writes_;  // by the log index the proposal took
  // Linearizable reads: collected until the next take_ready(), then one ReadIndex round
  // serves the whole batch; then they wait until the read point is applied.
  std::vector<PendingRead> read_batch_;
  // By ReadIndex context: "<node id>.<incarnation>.<counter>", unique across restarts.
  std::map<std::string, std::vector<PendingRead>> reads_in_flight_;
  std::vector<std::pair<Index, std::vector<PendingRead>>> reads_waiting_apply_;
  bool is_apply_awaited_ = false;
  size_t pending_read_count_ = 0;
  uint64_t next_read_context_ = 1;

  uint64_t last_lease_check_ms_ = 0;
  Index lease_expire_in_flight_ = 0;  // index of a proposed LeaseExpire not yet applied
  uint64_t last_history_check_ms_ = 0;
  Index compact_in_flight_ = 0;  // index of a proposed Compact not yet applied

  std::vector<Response> responses_;
};

}  // namespace aspen::node
