// SimOptions: fault sets and swarm knobs drawn from the seed.
#include <fmt/format.h>

#include "core/rng.h"
#include "sim/simulation.h"

namespace aspen::sim {

FaultSet FaultSet::none() {
  FaultSet f;
  f.crash = f.partition = f.loss = f.duplicate = f.membership = f.transfer = f.compaction = f.drift = f.buggify = f.targeted = false;
  return f;
}

Result<FaultSet> FaultSet::parse(std::string_view spec) {
  if (spec == "all") return FaultSet{};
  FaultSet f = none();
  if (spec == "none") return f;
  while (!spec.empty()) {
    size_t comma = spec.find(',');
    std::string_view name = spec.substr(0, comma);
    if (name == "crash") f.crash = true;
    else if (name == "partition") f.partition = true;
    else if (name == "loss") f.loss = true;
    else if (name == "duplicate" || name == "dup") f.duplicate = true;
    else if (name == "membership") f.membership = true;
    else if (name == "transfer") f.transfer = true;
    else if (name == "compaction" || name == "snapshot") f.compaction = true;
    else if (name == "drift") f.drift = true;
    else if (name == "buggify") f.buggify = true;
    else if (name == "targeted") f.targeted = true;
    else {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("unknown fault '{}': expected all, none, or a comma list of "
                                    "crash, partition, loss, duplicate, membership, transfer, "
                                    "compaction, drift, buggify, targeted",
                                    name));
    }
    if (comma == std::string_view::npos) break;
    spec.remove_prefix(comma + 1);
  }
  return f;
}

std::string FaultSet::to_string() const {
  std::string out;
  auto add = [&out](bool on, const char* name) {
    if (!on) return;
    if (!out.empty()) out += ',';
    out += name;
  };
  add(crash, "crash");
  add(partition, "partition");
  add(loss, "loss");
  add(duplicate, "duplicate");
  add(membership, "membership");
  add(transfer, "transfer");
  add(compaction, "compaction");
  add(drift, "drift");
  add(buggify, "buggify");
  add(targeted, "targeted");
  return out.empty() ? "none" : out;
}

SimOptions SimOptions::from_seed(uint64_t seed, uint64_t steps, const FaultSet& faults) {
  SimOptions o;
  o.seed = seed;
  o.steps = steps;
  o.faults = faults;
  // A separate stream from the run's own, so knobs do not shift the run's draws.
  Rng r(seed ^ 0x5eed5eed5eed5eedULL);
  static constexpr size_t kVoterChoices[] = {1, 3, 3, 3, 5, 5};
  o.initial_voters = kVoterChoices[r.uniform(std::size(kVoterChoices))];
  o.max_nodes = o.initial_voters + r.range(0, 3);
  o.clients = r.range(1, 5);
  o.keys = r.range(1, 4);
  o.loss_per_mille = static_cast<uint32_t>(r.range(0, 100));
  o.duplicate_per_mille = static_cast<uint32_t>(r.range(0, 50));
  o.net_delay_min_us = r.range(50, 1000);
  o.net_delay_max_us = o.net_delay_min_us + r.range(0, r.chance(1, 4) ? 200000 : 10000);
  o.disk_latency_min_us = r.range(50, 500);
  o.disk_latency_max_us = o.disk_latency_min_us + r.range(0, r.chance(1, 8) ? 100000 : 5000);
  o.mean_fault_interval_ms = r.range(200, 3000);
  o.clock_drift_per_mille = static_cast<uint32_t>(r.range(0, 100));
  o.crash_after_sync_per_mille = r.chance(1, 2) ? 0 : static_cast<uint32_t>(r.range(1, 20));
  o.restart_after_read_request_per_mille = r.chance(1, 2) ? 0 : static_cast<uint32_t>(r.range(20, 300));
  // The election timeout must clear a few round trips, each one network delay each way and
  // a disk write (Raft §5.2: broadcastTime << electionTimeout), even on the slowest links
  // this seed drew; a real deployment has to respect the same relation.
  const uint64_t round_trip_ms = (2 * o.net_delay_max_us + o.disk_latency_max_us) / 1000;
  o.knobs = draw_sim_knobs(r, 3 * round_trip_ms);
  // Most runs with BUGGIFY, some without, so that the sites' absence is covered too.
  o.is_buggify_enabled = !r.chance(1, 8);
  // Targeted faults, drawn last so that the draws above stay what they were. They are on in
  // half of the seeds, and those run at full intensity; the other half runs exactly the
  // workload of the seeds before targeted faults existed (their clients complete about
  // twice the operations: crashed leaders commit nothing). Independent draws per fault left
  // only one seed in twelve without any, and halved the clients' work over a seed range.
  // Within a targeted seed each fault is off now and then, so that every combination runs.
  // The leader crash needs high rates: Figure 8 takes three of them in a row at the right
  // syncs (with 5 to 200 per mille it was caught in 1 of 1,000 seeds, with 200 to 900 in
  // 29 of 2,000).
  if (r.chance(1, 2)) {
    o.leader_crash_after_sync_per_mille = static_cast<uint32_t>(r.range(200, 900));
    o.election_fault_per_mille = r.chance(1, 3) ? 0 : static_cast<uint32_t>(r.range(50, 500));
    o.partition_after_append_per_mille = r.chance(1, 2) ? 0 : static_cast<uint32_t>(r.range(1, 30));
    if (r.chance(1, 3)) {
      o.slow_ack_node = r.range(1, o.initial_voters);
      o.slow_ack_max_us = r.range(1, 4) * uint64_t{o.knobs.election_timeout_ms} * 1000 / 2;
    }
    o.crash_in_sync_per_mille = r.chance(1, 2) ? 0 : static_cast<uint32_t>(r.range(20, 300));
    o.joint_split_per_mille = r.chance(1, 4) ? 0 : static_cast<uint32_t>(r.range(300, 1000));
  }
  return o;
}

bool has_targeted_faults(const SimOptions& o) {
  return o.faults.targeted && (o.leader_crash_after_sync_per_mille > 0 || o.election_fault_per_mille > 0 ||
                               o.partition_after_append_per_mille > 0 || o.slow_ack_node != kNoNode ||
                               o.crash_in_sync_per_mille > 0 || o.joint_split_per_mille > 0);
}

const char* situation_name(Situation s) {
  switch (s) {
    case Situation::kLeaderChangeWithUncommittedEntries: return "leader_change_with_uncommitted_entries";
    case Situation::kOldTermEntryCommittedByNewLeader: return "old_term_entry_committed_by_new_leader";
    case Situation::kUncommittedSuffixOverwritten: return "uncommitted_suffix_overwritten";
    case Situation::kLeaderCrashWithUncommittedEntries: return "leader_crash_with_uncommitted_entries";
    case Situation::kCrashLosesUnsyncedReady: return "crash_loses_unsynced_ready";
    case Situation::kJointConfigEntered: return "joint_config_entered";
    case Situation::kElectionInJointConfig: return "election_in_joint_config";
    case Situation::kCrashInJointConfig: return "crash_in_joint_config";
    case Situation::kPartitionInJointConfig: return "partition_in_joint_config";
    case Situation::kLeaderRemovesItself: return "leader_removes_itself";
    case Situation::kSnapshotInstalledDuringPartition: return "snapshot_installed_during_partition";
    case Situation::kSnapshotInstalledAfterCrash: return "snapshot_installed_after_crash";
    case Situation::kReadAcrossLeaderChange: return "read_across_leader_change";
    case Situation::kWriteAnsweredThenLeaderCrash: return "write_answered_then_leader_crash";
    case Situation::kAnsweredBeforeApplyCommitThenCrash: return "answered_before_apply_commit_then_crash";
    case Situation::kCount: break;
  }
  return "?";
}

const char* situation_meaning(Situation s) {
  switch (s) {
    case Situation::kLeaderChangeWithUncommittedEntries:
      return "a new leader holds entries of earlier terms above its commit index (§5.4.2)";
    case Situation::kOldTermEntryCommittedByNewLeader:
      return "a leader's synced commit covers an entry of an earlier term (Figure 8's moment)";
    case Situation::kUncommittedSuffixOverwritten:
      return "a node's log suffix is replaced by a newer leader's entries (§5.3)";
    case Situation::kLeaderCrashWithUncommittedEntries:
      return "a leader crashes holding entries above its commit index";
    case Situation::kCrashLosesUnsyncedReady:
      return "a node crashes while a Ready's fsync is in flight";
    case Situation::kJointConfigEntered: return "a node applies a joint configuration (§6)";
    case Situation::kElectionInJointConfig: return "a leader is elected in a joint configuration";
    case Situation::kCrashInJointConfig: return "a voter of a joint configuration crashes";
    case Situation::kPartitionInJointConfig: return "a partition starts while the leader's configuration is joint";
    case Situation::kLeaderRemovesItself: return "a leader applies a configuration without itself";
    case Situation::kSnapshotInstalledDuringPartition: return "a node installs a snapshot while a partition stands";
    case Situation::kSnapshotInstalledAfterCrash: return "a node that crashed before installs a snapshot";
    case Situation::kReadAcrossLeaderChange:
      return "a linearizable read is answered after its node's term moved (§6.4)";
    case Situation::kWriteAnsweredThenLeaderCrash:
      return "a leader crashes within a round trip of answering a write";
    case Situation::kAnsweredBeforeApplyCommitThenCrash:
      return "writes answered from an apply's results, then a crash before the state machine's commit";
    case Situation::kCount: break;
  }
  return "?";
}

std::string SimOptions::describe() const {
  return fmt::format(
      "voters={} max_nodes={} clients={} keys={} loss={}‰ dup={}‰ delay={}-{}us disk={}-{}us "
      "fault_every~{}ms drift={}‰ crash_after_sync={}‰ restart_after_read={}‰ buggify={} faults={}\n  "
      "targeted: leader_crash_after_sync={}‰ election_fault={}‰ partition_after_append={}‰ slow_acks=node {} up to {}us "
      "crash_in_sync={}‰ joint_split={}‰"
      "\n  knobs: {}",
      initial_voters, max_nodes, clients, keys, loss_per_mille, duplicate_per_mille, net_delay_min_us,
      net_delay_max_us, disk_latency_min_us, disk_latency_max_us, mean_fault_interval_ms, clock_drift_per_mille,
      crash_after_sync_per_mille, restart_after_read_request_per_mille, is_buggify_enabled, faults.to_string(),
      leader_crash_after_sync_per_mille, election_fault_per_mille, partition_after_append_per_mille, slow_ack_node,
      slow_ack_max_us, crash_in_sync_per_mille, joint_split_per_mille, node::describe(knobs));
}

}  // namespace aspen::sim
