// Internal to sim/: the simulated cluster behind run_simulation().
#pragma once

#include <functional>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <set>
#include <string>
#include <vector>

#include "core/rng.h"
#include "node/node_core.h"
#include "node/ready_cycle.h"
#include "node/snapshot_staging.h"
#include "raft/raft.h"
#include "sim/linearizability.h"
#include "storage/mem_store.h"
#include "sim/simulation.h"
#include "sim/past_read_checker.h"
#include "sim/watch_checker.h"

namespace aspen::sim {

namespace pb = aspen::raftpb;

// FNV-1a, for cheap content fingerprints in invariant checks and the event hash.
// The simulated nodes' HLC clocks (Cluster::start_node): simulated time from this epoch
// (2027-01-15), each node's off by up to this much either way.
inline constexpr uint64_t kHlcSimEpochMs = 1'800'000'000'000;
inline constexpr int64_t kHlcSimMaxSkewMs = 1'000;

inline uint64_t fnv1a(std::string_view bytes, uint64_t seed = 0xcbf29ce484222325ULL) {
  uint64_t h = seed;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

// A client operation waiting at a node for its entry to apply or its read to be served.
struct PendingOp {
  uint64_t client_id = 0;
  uint64_t token = 0;
  std::string key;
  // The highest log index of a command acknowledged to any client before this op began: a
  // linearizable read must be served at a read point at least this high.
  Index read_floor = 0;
  Term arrival_term = 0;  // the node's term when the op arrived (Situation::kReadAcrossLeaderChange)
};

// Where and when a client's command first applied anywhere (ground truth that resolves the
// outcome of operations whose clients timed out).
struct AppliedCommand {
  Index index = 0;
  uint64_t first_applied_us = 0;
  bool has_succeeded = false;  // CAS: whether it swapped; plain writes always do
};

struct SimNode {
  NodeId id = kNoNode;
  bool is_up = false;
  bool is_retired = false;   // removed from the cluster and shut down for good
  uint64_t incarnation = 0;  // bumped by every crash; events of an older incarnation are void
  uint64_t tick_interval_us = 100000;

  // Durable: the node's Store, written only when a Ready is "synced" (one atomic write).
  std::unique_ptr<storage::MemStore> store;
  Index applied() const { return store->applied_index(); }

  // Volatile: lost in a crash. `core` is node's Raft core, for inspection and faults.
  std::unique_ptr<node::NodeCore> node;
  raft::RaftCore* core = nullptr;
  // The node's Ready driver (the shell's own): one Ready in flight at a time.
  std::optional<node::ReadyCycle> cycle;
  bool is_persisting() const { return cycle && cycle->is_in_flight(); }
  // Snapshots received and not installed yet, with their data: the node's rules
  // (snapshot_staging.h), the data in memory instead of a file. Lost in a crash, as the
  // node's staged files are removed at start.
  node::StagedSnapshots staged_snapshots;
  // Steps whose entries wait for an asynchronous apply (the node's apply thread), in order.
  std::deque<std::shared_ptr<node::ReadyCycle::Step>> pending_applies;
  // Client requests NodeCore is working on, by request id.
  std::map<uint64_t, PendingOp> requests;
  // Durable: the highest synced commit index whose entries were recorded as committed.
  Index commit_seen = 0;
  // When this node, leading, last answered a write (Situation::kWriteAnsweredThenLeaderCrash).
  uint64_t last_write_answered_us = 0;
};

struct SimClient {
  uint64_t id = 0;
  uint64_t seq = 0;
  bool is_busy = false;
  uint64_t token = 0;       // identifies the op in flight; a stale response is ignored
  size_t history_index = 0; // the op's record in history_
  NodeId leader_hint = kNoNode;
};

enum class Phase : uint8_t { kSafety, kLiveness, kDone };

class Cluster {
 public:
  // `buggify` is the run's session: its sites stop firing when the faults heal.
  Cluster(const SimOptions& options, buggify::Session& buggify);
  SimResult run();

 private:
  using Action = std::function<void()>;
  struct Event {
    uint64_t time_us;
    uint64_t seq;
    Action action;
    bool operator>(const Event& o) const {
      return time_us != o.time_us ? time_us > o.time_us : seq > o.seq;
    }
  };

  // --- scheduler (simulation.cc) ---
  void at(uint64_t delay_us, Action action);
  void mark(Situation s) { ++situations_[static_cast<size_t>(s)]; }
  void note_event(uint64_t kind, uint64_t a, uint64_t b = 0);
  bool fail(std::string what);
  void trace(const std::string& line) const;
  std::string describe_nodes() const;

  // --- nodes (simulation.cc) ---
  SimNode& add_node(NodeId id, const pb::ConfState& initial);
  void start_node(SimNode& n);
  void crash_node(SimNode& n);
  void retire_node(SimNode& n);
  void schedule_retirement(NodeId id, Index config_index, std::set<NodeId> members);
  void schedule_tick(SimNode& n);
  // Tells the crashed node's followers, after a short delay, that their leader is gone.
  void report_gone_leader(const SimNode& gone);
  void maybe_take_ready(SimNode& n);
  void on_synced(SimNode& n, const std::shared_ptr<node::ReadyCycle::Step>& step);   // its log part is durable
  void on_applied(SimNode& n, const std::shared_ptr<node::ReadyCycle::Step>& step);  // and its apply done
  // Checks each entry against the cluster's history, then applies the step's entries.
  // `on_results`: WriteBatch::on_results, as the node's apply thread sets it.
  std::vector<storage::AppliedEntry> apply_checked(
      SimNode& n, const node::ReadyCycle::Step& step,
      std::function<void(std::vector<storage::AppliedEntry>&)> on_results = nullptr);
  void after_applies(SimNode& n, const std::vector<pb::Entry>& entries, const std::vector<storage::AppliedEntry>& applied);
  void run_async_apply(SimNode& n);     // the oldest pending asynchronous apply
  void drain_async_applies(SimNode& n); // every pending one, before a snapshot or synchronous apply
  void after_apply(SimNode& n, const pb::Entry& e, const storage::AppliedEntry& a);
  void deliver_responses(SimNode& n);
  void maybe_compact(SimNode& n);
  void send_message(const pb::Message& m);
  void deliver(const pb::Message& m);
  void deliver_snapshot(SimNode& to, const pb::Message& m);
  void report_snapshot(const pb::Message& msg, bool failed);
  SimNode* node(NodeId id);
  SimNode* current_leader();

  // --- clients (simulation.cc) ---
  void schedule_client(SimClient& c, uint64_t delay_us);
  void client_issue(SimClient& c);
  void node_receive_request(NodeId to, uint64_t client_id, uint64_t token, const Operation& op, Index read_floor);
  void respond(uint64_t client_id, uint64_t token, std::optional<std::string> read_value,
               bool cas_succeeded, bool is_definite_failure, Index index);
  void client_timeout(uint64_t client_id, uint64_t token);

  // --- faults (faults.cc) ---
  void schedule_fault();
  void inject_fault();
  void fault_crash();
  void crash_and_restart_later(SimNode& n, uint64_t min_down_ms = 100, uint64_t max_down_ms = 8000);
  void maybe_restart_after_read_request(SimNode& n, const std::vector<pb::Message>& sent);
  void fault_partition();
  void start_partition(const std::set<NodeId>& side, bool is_asymmetric, uint64_t heal_after_ms);
  // Targeted faults (SimOptions: leader_crash_after_sync_per_mille and the ones after it).
  enum class SyncCrash : uint8_t { kNone, kBeforeSend, kAfterSend };
  SyncCrash draw_leader_crash_after_sync(const SimNode& n, const raft::Ready& rd, bool commits_old_term_entry);
  void maybe_fault_after_election(SimNode& leader);
  void maybe_partition_after_append(const pb::Message& m, uint64_t delivery_delay_us);
  void maybe_crash_in_sync(SimNode& n, const node::ReadyCycle::Step& step, uint64_t sync_latency_us);
  // Splits the voters of `cfg` (a joint configuration, or the one the leader just proposed)
  // into two sides that each hold a majority of one half only, the leader's side first.
  void maybe_split_joint_config(NodeId leader, const raft::JointConfig& cfg, const char* when);
  uint64_t targeted_down_ms();
  void fault_membership();
  void maybe_force_joint(pb::ConfChange& cc);
  bool is_splitting_joint_configs() const;
  void fault_transfer();
  void heal_all();
  bool is_blocked(NodeId from, NodeId to) const;

  // --- invariants (invariants.cc) ---
  void check_after_event(SimNode& n);
  void check_leader(SimNode& n);
  void check_persisted_entries(SimNode& n, const std::vector<pb::Entry>& ents);
  void check_sent_commit(const pb::Message& m);
  void check_applied(SimNode& n, const pb::Entry& e);
  void check_applied_hlc(SimNode& n, const pb::Entry& e);
  void record_commits(SimNode& n, Index durable_commit);
  bool check_liveness_done();
  void check_final_state();
  void check_read_point(const SimNode& n, const PendingOp& op, Index read_index);
  std::vector<Operation> history_for_checker() const;

  SimOptions opt_;
  buggify::Session& buggify_;
  Rng rng_;
  uint64_t now_us_ = 0;
  uint64_t event_seq_ = 0;
  std::priority_queue<Event, std::vector<Event>, std::greater<>> events_;
  uint64_t event_hash_ = 0xcbf29ce484222325ULL;
  Phase phase_ = Phase::kSafety;
  bool is_failed_ = false;
  SimVerdict verdict_ = SimVerdict::kOk;
  std::string failure_;
  SimStats stats_;
  // Watchers on every node, held to the watch guarantees (sim/watch_checker.h).
  WatchChecker watches_;
  // Reads at past revisions, held to the state current then (sim/past_read_checker.h).
  PastReadChecker past_reads_;
  SituationCounts situations_{};

  std::map<NodeId, std::unique_ptr<SimNode>> nodes_;
  NodeId next_node_id_ = 1;
  std::set<NodeId> ever_members_;  // nodes some committed configuration included
  Index last_config_index_ = 0;    // index of the newest conf change applied anywhere
  std::vector<SimClient> clients_;
  std::vector<Operation> history_;
  std::vector<bool> is_history_dropped_;


  // Network faults.
  std::set<std::pair<NodeId, NodeId>> blocked_;  // (from, to)
  bool is_partitioned_ = false;
  uint64_t partition_generation_ = 0;  // a heal applies to the partition it was scheduled for

  // Invariant bookkeeping.
  std::map<Term, NodeId> leader_of_term_;
  std::map<std::pair<Index, Term>, std::pair<uint64_t, Term>> entry_fingerprints_;  // -> (data hash, prev term)
  std::map<Index, std::pair<Term, uint64_t>> applied_entries_;  // index -> (term, data hash)
  // Stamped commands by index, as first applied: their HLC stamps must increase with the index.
  std::map<Index, HlcTimestamp> applied_hlcs_;
  // index -> (term, first node that knew it committed): what any node's commit index ever
  // covered. Checked at the commit, not at the apply, so a wrong commit is caught even when
  // no node lives to apply it (Figure 8: the leader that counted crashes right after).
  std::map<Index, std::pair<Term, NodeId>> committed_terms_;
  std::map<std::string, AppliedCommand> acked_writes_;  // op value -> where it first applied
  Index max_acked_index_ = 0;  // highest log index of a command a client has been answered

  // Liveness phase.
  uint64_t liveness_deadline_us_ = 0;
  SimClient probe_client_;
  size_t probe_stage_ = 0;
};

}  // namespace aspen::sim
