// Deterministic simulation of a whole Aspen Raft cluster in one thread.
//
// Many RaftCores run against a simulated network (delay, loss, duplication, reordering,
// symmetric and asymmetric partitions), simulated disks (a crash loses whatever was not yet
// "synced"), simulated clocks (per-node drift), crashes and restarts, membership changes,
// leadership transfers and log compaction with snapshots. Clients run a workload of writes,
// linearizable reads and CAS on a small key space against the tiny KvModel state machine.
//
// Everything is drawn from one seed (TigerBeetle's swarm testing: the cluster size, fault
// rates and timings too), so `aspen-sim --seed N` replays a run exactly. A run has a safety
// phase (faults on) and then a liveness phase (faults healed: the cluster must make progress
// within a bound). Invariants are checked after every event; the client history is checked
// for linearizability at the end.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "core/buggify.h"
#include "core/rng.h"
#include "node/knobs.h"
#include "raft/raft.h"

namespace aspen::sim {

struct FaultSet {
  bool crash = true;
  bool partition = true;
  bool loss = true;
  bool duplicate = true;
  bool membership = true;
  bool transfer = true;
  bool compaction = true;
  bool drift = true;
  bool buggify = true;  // the ASPEN_BUGGIFY sites in the nodes' code (core/buggify.h)
  // Faults aimed at the moments consensus bugs need (Raft §5.4.2, Figure 8): a leader's
  // crash right after its sync, faults right after an election, a leader isolated right
  // after an append lands, one follower's slow acknowledgements. Rates drawn per seed.
  bool targeted = true;

  static FaultSet none();
  // Parses "all", "none", or a comma list such as "crash,partition,loss".
  static Result<FaultSet> parse(std::string_view spec);
  std::string to_string() const;
};

struct SimOptions {
  uint64_t seed = 1;
  // Events processed in the safety phase (with faults).
  uint64_t steps = 20000;
  FaultSet faults;
  // Bugs planted by the simulator itself, around the nodes' code, which carries none (the
  // mutation suite, scripts/mutants.sh, plants bugs in a scratch copy of the code).
  // Serve reads from the local replica without ReadIndex: only the linearizability checker
  // can see this one.
  bool should_plant_stale_reads = false;
  // Vote requests reach voters claiming the voter's own last index and term when the
  // candidate's log is behind: voters grant votes as if they skipped the §5.4.1 check.
  bool should_plant_skip_election_restriction = false;
  bool is_verbose = false;

  // Swarm knobs; from_seed() draws them, tests may override.
  size_t initial_voters = 3;
  size_t max_nodes = 7;
  size_t clients = 3;
  size_t keys = 3;
  uint32_t loss_per_mille = 20;
  uint32_t duplicate_per_mille = 20;
  uint64_t net_delay_min_us = 200;
  uint64_t net_delay_max_us = 5000;
  uint64_t disk_latency_min_us = 100;
  uint64_t disk_latency_max_us = 2000;
  uint64_t mean_fault_interval_ms = 1000;
  // BUGGIFY: chance that a node crashes right after a sync (with the crash fault on).
  uint32_t crash_after_sync_per_mille = 0;
  // BUGGIFY: chance that a node crashes (and soon restarts) right after it sent a ReadIndex
  // request to the leader (with the crash fault on).
  uint32_t restart_after_read_request_per_mille = 0;
  // Targeted faults (with `targeted` in the fault set), each off in a third to a half of the seeds.
  // A leader crashes right after a sync that persisted its own entries or a commit index;
  // half of the time before that Ready's messages leave (the process died between fsync
  // and send), so the entries live on the leader alone.
  uint32_t leader_crash_after_sync_per_mille = 0;
  // A new leader is crashed or isolated within a few round trips of its election, so that
  // its first entries reach a minority and terms pile up (Figure 8 needs three elections).
  uint32_t election_fault_per_mille = 0;
  // A leader is isolated the moment one of its appends reaches a follower: the entry is on
  // the two of them only, and the acknowledgement never returns.
  uint32_t partition_after_append_per_mille = 0;
  // One voter's append acknowledgements arrive up to this late (0: no slow follower).
  NodeId slow_ack_node = kNoNode;
  uint64_t slow_ack_max_us = 0;
  // A node crashes while the fsync of a Ready with new entries is still running, after that
  // Ready's early messages left (the process dies between send and sync): a leader's
  // followers may hold and acknowledge entries its own disk never gets.
  uint32_t crash_in_sync_per_mille = 0;
  // A joint configuration (§6) is split by a partition into two sides, each holding a
  // majority of one half only: once when the leader appends the joint entry (the outgoing
  // voters must not see it committed without them) and once when the leader applies it
  // (elections inside the joint configuration, with votes from one half only).
  uint32_t joint_split_per_mille = 0;
  // Whether the ASPEN_BUGGIFY sites in the nodes' code (core/buggify.h) may fire in the
  // safety phase; a quarter of them is armed per run. ASPEN_PROBE marks are counted either way.
  bool is_buggify_enabled = true;
  uint32_t clock_drift_per_mille = 50;
  // The nodes' tuning, as a production node has it unless from_seed() draws it
  // (draw_sim_knobs): tick, heartbeat and election timeout, request timeout, queue bounds,
  // replication window and message size, early sends, deferred applies, log compaction.
  node::Knobs knobs;
  uint64_t client_timeout_ms = 5000;
  uint64_t liveness_bound_ms = 60000;

  // Draws all swarm knobs from the seed.
  static SimOptions from_seed(uint64_t seed, uint64_t steps, const FaultSet& faults);
  std::string describe() const;
};

// Whether any targeted fault is on in this run (SimOptions::from_seed draws them for half
// of the seeds; the other half runs the workload the simulator ran before they existed).
bool has_targeted_faults(const SimOptions& o);

enum class SimVerdict : uint8_t { kOk = 0, kInvariantBroken = 1, kNoProgress = 2 };

// Situations that matter for consensus bugs, counted per run (`aspen-sim --coverage`), in
// the spirit of FoundationDB's CODE_PROBE: a soak that stops reaching one has lost its
// power to find the bugs that live there, and the table shows the drop. Names and
// meanings are in situation_name() / situation_meaning(); the order is the table's.
enum class Situation : uint8_t {
  kLeaderChangeWithUncommittedEntries,  // a new leader holds entries of earlier terms above its commit index
  kOldTermEntryCommittedByNewLeader,    // a leader's commit covers an earlier term's entry (§5.4.2)
  kUncommittedSuffixOverwritten,        // a node's log suffix is replaced by a newer leader's entries
  kLeaderCrashWithUncommittedEntries,   // a leader dies holding entries above its commit index
  kCrashLosesUnsyncedReady,             // a node dies while a Ready's fsync is in flight
  kJointConfigEntered,                  // a node applies a joint configuration
  kElectionInJointConfig,               // a leader is elected while its configuration is joint
  kCrashInJointConfig,                  // a voter of a joint configuration crashes
  kPartitionInJointConfig,              // a partition starts while a leader's configuration is joint
  kLeaderRemovesItself,                 // a leader applies a configuration without itself
  kSnapshotInstalledDuringPartition,    // a node installs a snapshot while a partition stands
  kSnapshotInstalledAfterCrash,         // a node that crashed before installs a snapshot
  kReadAcrossLeaderChange,              // a linearizable read is answered after its node's term moved
  kWriteAnsweredThenLeaderCrash,        // a leader crashes right after it answered a write
  kAnsweredBeforeApplyCommitThenCrash,  // writes answered from an apply's results, then a crash before its commit
  kCount
};
inline constexpr size_t kSituationCount = static_cast<size_t>(Situation::kCount);
const char* situation_name(Situation s);
const char* situation_meaning(Situation s);
using SituationCounts = std::array<uint64_t, kSituationCount>;

struct SimStats {
  uint64_t events = 0;
  uint64_t sim_time_ms = 0;
  uint64_t ops_ok = 0;
  uint64_t ops_failed = 0;
  uint64_t ops_indeterminate = 0;
  uint64_t leaders_elected = 0;
  uint64_t crashes = 0;
  uint64_t unreachable_leader_reports = 0;  // followers told their crashed leader is unreachable
  uint64_t partitions = 0;
  uint64_t conf_changes_applied = 0;
  uint64_t transfers = 0;
  uint64_t snapshots_sent = 0;
  uint64_t snapshots_installed = 0;
  uint64_t messages_delivered = 0;
  uint64_t messages_dropped = 0;
  uint64_t max_term = 0;
  uint64_t max_commit = 0;
  uint64_t restarts_after_read_request = 0;
  uint64_t targeted_faults = 0;  // crashes and partitions of the `targeted` fault kind
  uint64_t reads_checked_at_serve = 0;  // linearizable reads whose read point was checked
  uint64_t past_reads_checked = 0;      // reads at a past revision held to that revision's state
  uint64_t past_reads_compacted = 0;    // ... that found it compacted
  uint64_t linearizability_inconclusive = 0;  // the checker's search budget ran out (a failure)
};

struct SimResult {
  SimVerdict verdict = SimVerdict::kOk;
  std::string failure;     // what broke, with enough context to debug
  uint64_t event_hash = 0; // fingerprint of every event: equal seeds give equal hashes
  SimStats stats;
  // Which BUGGIFY sites fired and which probes were reached in this run, by name.
  buggify::Report coverage;
  // How often the run reached each Situation.
  SituationCounts situations{};
};

// Knobs for one run, drawn within the ranges node::validate() accepts: small compaction
// thresholds (so compaction and snapshots happen often), varied timeouts and ticks, small
// queue bounds and replication windows now and then. `min_election_timeout_ms` keeps the
// election timeout above a few round trips of the simulated network and disk (Raft §5.2:
// broadcastTime << electionTimeout), which a real deployment must respect too. Knobs the
// simulator does not run (the shell's retries, dial backoff, forwarding) keep their defaults.
node::Knobs draw_sim_knobs(Rng& rng, uint64_t min_election_timeout_ms);

SimResult run_simulation(const SimOptions& options);

}  // namespace aspen::sim
