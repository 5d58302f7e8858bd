#include "node/knobs.h"

#include <fmt/format.h>

#include <algorithm>

#include "blob/pacing.h"
#include "core/assert.h"
#include "core/limits.h"

namespace aspen::node {

uint32_t Knobs::heartbeat_ticks() const {
  ASPEN_ASSERT(tick_interval_ms > 0);
  return std::max<uint32_t>(1, heartbeat_ms / tick_interval_ms);
}

uint32_t Knobs::election_ticks() const {
  ASPEN_ASSERT(tick_interval_ms > 0);
  return std::max<uint32_t>(heartbeat_ticks() + 1, election_timeout_ms / tick_interval_ms);
}

namespace {

Status invalid(std::string_view field, std::string why) {
  return make_error(ErrorCode::kConfigInvalid, fmt::format("knob {}: {}", field, why));
}

// A knob that must be at least `min`: zero would stall (a timeout that fires at once, a
// queue that holds nothing, a retry that spins).
template <typename T>
Status at_least(std::string_view field, T value, T min) {
  if (value >= min) return {};
  return invalid(field, fmt::format("must be at least {}, got {}", min, value));
}

}  // namespace

Status validate(const Knobs& k) {
  // A tick longer than a second would make every Raft timeout coarser than operators expect.
  if (k.tick_interval_ms == 0 || k.tick_interval_ms > 1000) {
    return invalid("tick_interval_ms", fmt::format("must be from 1 to 1000, got {}", k.tick_interval_ms));
  }
  if (k.heartbeat_ms < k.tick_interval_ms) {
    return invalid("heartbeat_ms", fmt::format("must be at least one tick ({} ms), got {}", k.tick_interval_ms,
                                               k.heartbeat_ms));
  }
  if (uint64_t min = uint64_t{kMinElectionToHeartbeatRatio} * k.heartbeat_ms; k.election_timeout_ms < min) {
    return invalid("election_timeout_ms", fmt::format("must be at least {} x heartbeat_ms ({} ms), got {}",
                                                      kMinElectionToHeartbeatRatio, min, k.election_timeout_ms));
  }
  if (auto s = at_least<uint64_t>("request_timeout_ms", k.request_timeout_ms, 1); !s) return s;
  if (auto s = at_least<uint64_t>("lease_check_interval_ms", k.lease_check_interval_ms, 1); !s) return s;
  if (auto s = at_least<uint64_t>("leader_silence_heartbeats", k.leader_silence_heartbeats, 1); !s) return s;
  if (auto s = at_least<uint32_t>("storage_retry_delay_ms", k.storage_retry_delay_ms, 1); !s) return s;
  if (auto s = at_least<uint64_t>("leader_duty_interval_ms", k.leader_duty_interval_ms, 1); !s) return s;
  if (auto s = at_least<uint64_t>("cluster_view_refresh_ms", k.cluster_view_refresh_ms, 1); !s) return s;
  if (auto s = at_least<uint64_t>("init_timeout_ms", k.init_timeout_ms, 1); !s) return s;
  if (auto s = at_least<uint64_t>("storage_check_interval_ms", k.storage_check_interval_ms, 1); !s) return s;
  if (auto s = at_least<uint64_t>("history_check_interval_ms", k.history_check_interval_ms, 1); !s) return s;
  if (auto s = at_least<uint64_t>("watch_stall_cancel_ms", k.watch_stall_cancel_ms, 1); !s) return s;
  if (auto s = at_least<uint64_t>("snapshot_send_timeout_ms", k.snapshot_send_timeout_ms, 1000); !s) return s;
  if (auto s = at_least<uint32_t>("raft_dial_backoff_min_ms", k.raft_dial_backoff_min_ms, 1); !s) return s;
  if (k.raft_dial_backoff_max_ms < k.raft_dial_backoff_min_ms) {
    return invalid("raft_dial_backoff_max_ms", fmt::format("must be at least raft_dial_backoff_min_ms ({}), got {}",
                                                           k.raft_dial_backoff_min_ms, k.raft_dial_backoff_max_ms));
  }
  if (auto s = at_least<size_t>("max_pending_requests", k.max_pending_requests, 1); !s) return s;
  if (auto s = at_least<size_t>("max_forwards_in_flight", k.max_forwards_in_flight, 1); !s) return s;
  if (auto s = at_least<size_t>("max_queued_raft_messages_per_peer", k.max_queued_raft_messages_per_peer, 1); !s) {
    return s;
  }
  if (k.client_requests_per_s > limits::kMaxClientRequestsPerSecond) {
    return invalid("client_requests_per_s", fmt::format("must be at most {} (0 disables the limit), got {}",
                                                        limits::kMaxClientRequestsPerSecond, k.client_requests_per_s));
  }
  if (k.client_requests_per_s > 0 && (k.client_request_burst == 0 || k.client_request_burst > (1u << 30))) {
    return invalid("client_request_burst",
                   fmt::format("must be from 1 to {} while client_requests_per_s is set, got {}", 1u << 30,
                               k.client_request_burst));
  }
  if (auto s = at_least<size_t>("max_inflight_appends", k.max_inflight_appends, 1); !s) return s;
  // 1 byte is allowed: Raft then sends one entry per message, a legal (if slow) extreme.
  if (k.max_append_bytes == 0 || k.max_append_bytes > limits::kMaxEntriesPerMessageBytes) {
    return invalid("max_append_bytes", fmt::format("must be from 1 to {} (one transport frame holds it), got {}",
                                                   limits::kMaxEntriesPerMessageBytes, k.max_append_bytes));
  }
  if (auto s = at_least<uint64_t>("compact_threshold_entries", k.compact_threshold_entries, 1); !s) return s;
  if (k.compact_keep_entries >= k.compact_threshold_entries) {
    return invalid("compact_keep_entries", fmt::format("must be below compact_threshold_entries ({}), got {}",
                                                       k.compact_threshold_entries, k.compact_keep_entries));
  }
  if (auto s = at_least<uint64_t>("compact_threshold_bytes", k.compact_threshold_bytes, 1); !s) return s;
  // Held-back applies delay stale reads and the cluster view; more than a second is a mistake.
  if (k.apply_delay_max_ms > 1000) {
    return invalid("apply_delay_max_ms", fmt::format("must be at most 1000, got {}", k.apply_delay_max_ms));
  }
  if (k.compact_keep_bytes >= k.compact_threshold_bytes) {
    return invalid("compact_keep_bytes", fmt::format("must be below compact_threshold_bytes ({}), got {}",
                                                     k.compact_threshold_bytes, k.compact_keep_bytes));
  }
  if (k.blob_max_size_bytes == 0 || k.blob_max_size_bytes > limits::kMaxBlobSizeBytes) {
    return invalid("blob_max_size_bytes", fmt::format("must be from 1 to {} (limits::kMaxBlobSizeBytes), got {}",
                                                      limits::kMaxBlobSizeBytes, k.blob_max_size_bytes));
  }
  if (k.blob_replication_factor > limits::kMaxClusterVoters + limits::kMaxClusterLearners) {
    return invalid("blob_replication_factor", fmt::format("must be at most {} members (0: every voter), got {}",
                                                          limits::kMaxClusterVoters + limits::kMaxClusterLearners,
                                                          k.blob_replication_factor));
  }
  if (auto s = at_least<uint64_t>("blob_replication_interval_ms", k.blob_replication_interval_ms, 1); !s) return s;
  if (k.blob_replication_bytes_per_s > blob::kMaxPacedBytesPerS) {
    return invalid("blob_replication_bytes_per_s", fmt::format("must be at most {} (1 TiB/s; 0: no cap), got {}",
                                                               blob::kMaxPacedBytesPerS, k.blob_replication_bytes_per_s));
  }
  if (auto s = at_least<uint32_t>("blob_max_transfers", k.blob_max_transfers, 1); !s) return s;
  return {};
}

std::string describe(const Knobs& k) {
  return fmt::format(
      "tick_interval_ms={} heartbeat_ms={} election_timeout_ms={} request_timeout_ms={} lease_check_interval_ms={} "
      "leader_silence_heartbeats={} storage_retry_delay_ms={} leader_duty_interval_ms={} cluster_view_refresh_ms={} "
      "init_timeout_ms={} raft_dial_backoff_min_ms={} raft_dial_backoff_max_ms={} token_cache_ms={} storage_check_interval_ms={} snapshot_send_timeout_ms={} max_pending_requests={} max_forwards_in_flight={} "
      "max_queued_raft_messages_per_peer={} client_requests_per_s={} client_request_burst={} max_inflight_appends={} max_append_bytes={} should_send_early={} "
      "should_defer_apply={} apply_delay_max_ms={} should_apply_async={} compact_threshold_entries={} compact_keep_entries={} compact_threshold_bytes={} "
      "compact_keep_bytes={} history_retention_revisions={} history_retention_ms={} history_check_interval_ms={} watch_stall_cancel_ms={} "
      "blob_max_size_bytes={} blob_gc_grace_ms={} blob_gc_interval_ms={} blob_replication_factor={} "
      "blob_replication_interval_ms={} blob_replication_bytes_per_s={} blob_max_transfers={}",
      k.tick_interval_ms, k.heartbeat_ms, k.election_timeout_ms, k.request_timeout_ms, k.lease_check_interval_ms,
      k.leader_silence_heartbeats, k.storage_retry_delay_ms, k.leader_duty_interval_ms, k.cluster_view_refresh_ms,
      k.init_timeout_ms, k.raft_dial_backoff_min_ms, k.raft_dial_backoff_max_ms, k.token_cache_ms, k.storage_check_interval_ms, k.snapshot_send_timeout_ms, k.max_pending_requests,
      k.max_forwards_in_flight, k.max_queued_raft_messages_per_peer, k.client_requests_per_s, k.client_request_burst,
      k.max_inflight_appends, k.max_append_bytes,
      k.should_send_early, k.should_defer_apply, k.apply_delay_max_ms, k.should_apply_async, k.compact_threshold_entries, k.compact_keep_entries,
      k.compact_threshold_bytes, k.compact_keep_bytes, k.history_retention_revisions, k.history_retention_ms,
      k.history_check_interval_ms, k.watch_stall_cancel_ms, k.blob_max_size_bytes, k.blob_gc_grace_ms,
      k.blob_gc_interval_ms, k.blob_replication_factor, k.blob_replication_interval_ms, k.blob_replication_bytes_per_s,
      k.blob_max_transfers);
}

}  // namespace aspen::node
