// draw_sim_knobs: the nodes' tuning, drawn from the seed (FoundationDB randomizes its knobs
// in simulation; TigerBeetle's swarm testing draws its options the same way).
#include <algorithm>
#include <array>

#include "core/assert.h"
#include "sim/simulation.h"

namespace aspen::sim {

node::Knobs draw_sim_knobs(Rng& rng, uint64_t min_election_timeout_ms) {
  node::Knobs k;
  // Timing. The election timeout comes first: it must clear a few round trips; the tick and
  // the heartbeat then fit under it (at least kMinElectionToHeartbeatRatio heartbeats).
  constexpr uint64_t kMaxElectionTimeoutMs = 3000;  // keeps runs inside the liveness bound
  const uint64_t floor_ms = std::clamp<uint64_t>(min_election_timeout_ms, 30, kMaxElectionTimeoutMs);
  k.election_timeout_ms = static_cast<uint32_t>(rng.range(floor_ms, kMaxElectionTimeoutMs));
  const uint32_t max_heartbeat_ms = k.election_timeout_ms / node::kMinElectionToHeartbeatRatio;
  static constexpr std::array<uint32_t, 6> kTickChoices = {10, 20, 50, 100, 100, 100};
  do {
    k.tick_interval_ms = kTickChoices[rng.uniform(kTickChoices.size())];
  } while (k.tick_interval_ms > max_heartbeat_ms);  // 10 ms always fits (floor_ms >= 30)
  const uint32_t max_heartbeat_ticks = max_heartbeat_ms / k.tick_interval_ms;
  k.heartbeat_ms = k.tick_interval_ms * static_cast<uint32_t>(rng.range(1, std::min<uint32_t>(max_heartbeat_ticks, 10)));
  // A request timeout shorter than an election happens in production with impatient
  // settings; the client then sees Timeout (an unknown outcome) more often. Never shorter
  // than a few of the seed's round trips, or no request could ever finish (seed 402009:
  // 114 ms against one-way delays up to 172 ms).
  const uint64_t short_max_ms = std::max<uint64_t>(floor_ms + 1, 1000);
  k.request_timeout_ms = rng.chance(1, 3) ? rng.range(floor_ms, short_max_ms) : rng.range(short_max_ms, 10000);
  k.lease_check_interval_ms = rng.range(50, 2000);
  // History retention: short, so the history is compacted under faults in most runs.
  k.history_retention_revisions = rng.chance(1, 4) ? 0 : rng.range(1, 300);
  k.history_retention_ms = rng.chance(1, 2) ? 0 : rng.range(100, 20000);
  k.history_check_interval_ms = rng.range(50, 3000);
  // Queue bounds: now and then so small that requests are refused under load.
  if (rng.chance(1, 4)) k.max_pending_requests = rng.range(1, 8);
  // Replication flow: windows of one message, messages of one entry.
  k.max_inflight_appends = rng.range(1, 64);
  k.max_append_bytes = rng.chance(1, 2) ? 1 : rng.range(64, 65536);
  k.should_send_early = rng.chance(1, 2);
  k.should_defer_apply = rng.chance(1, 2);
  k.apply_delay_max_ms = rng.chance(1, 4) ? rng.range(0, 5) : rng.range(5, 500);
  k.should_apply_async = rng.chance(3, 4);
  // Compaction: small thresholds, so that logs are compacted and lagging nodes need
  // snapshots in every run; by size in a third of the runs (the simulator's entries are
  // tens of bytes).
  k.compact_threshold_entries = rng.range(8, 200);
  k.compact_keep_entries = rng.range(0, k.compact_threshold_entries / 2);
  if (rng.chance(1, 3)) {
    k.compact_threshold_bytes = rng.range(1024, 16384);
    k.compact_keep_bytes = rng.range(0, k.compact_threshold_bytes / 2);
  }
  auto valid = node::validate(k);
  ASPEN_ASSERT_MSG(valid.has_value(), "draw_sim_knobs must draw valid knobs");
  return k;
}

}  // namespace aspen::sim
