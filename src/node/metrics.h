// The node's metrics in the Prometheus text format (served by GetMetrics; `aspen-cli
// metrics` prints it; aspen-prometheus-adapter serves every member's to Prometheus).
// Sans-I/O: the shell gathers a MetricsView of counters, gauges and histograms,
// prometheus_text() only formats it, so the page is unit-tested without a node. Names follow
// Prometheus conventions: base units (seconds, bytes), `_total` counters, latencies as
// `_seconds` histograms (node/histogram.h); docs/operations.md lists them.
//
// Threads: NodeCounters are atomics that any thread bumps; the view is taken on the loop.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "core/types.h"
#include "node/histogram.h"
#include "transport/endpoint.h"

namespace aspen::node {

// Client requests by what they ask, for the per-operation latency histogram.
enum class RequestKind : uint8_t { kRead, kBatchRead, kScan, kWrite, kLeaseList, kStatus, kAdmin };
inline constexpr size_t kRequestKindCount = 7;
// The `op` label of a kind: read, batch_read, scan, write, lease_list, status, admin.
const char* request_kind_name(RequestKind kind);

// What the node's components count as they go. [any] (relaxed atomics)
struct NodeCounters {
  std::atomic<uint64_t> client_requests{0};
  std::atomic<uint64_t> client_errors{0};
  std::atomic<uint64_t> client_refused{0};   // requests refused for a missing or bad token
  std::atomic<uint64_t> client_rate_limited{0};  // requests refused over the per-connection rate limit
  std::atomic<uint64_t> tokens_verified{0};  // full verifications (cache misses)
  std::atomic<uint64_t> forwarded_requests{0};
  std::atomic<uint64_t> raft_messages_in{0};
  std::atomic<uint64_t> raft_messages_out{0};
  std::atomic<uint64_t> raft_messages_dropped{0};
  std::atomic<uint64_t> raft_refused{0};  // connections/streams refused: unknown key, bad cookie
  std::atomic<uint64_t> raft_messages_refused{0};  // messages the core refused as impossible
  // Raft message or entry stamps the hybrid logical clock refused: further ahead of this
  // node's clock than its max offset (node/node_hlc.h). The messages were stepped anyway.
  std::atomic<uint64_t> hlc_refused{0};
  // Leases this node, as leader, proposed to expire by its clock (NodeCore's count, copied
  // on each tick).
  std::atomic<uint64_t> lease_expiries_proposed{0};
  // Writes this node's core answered (as leader), from submission to answer.
  std::atomic<uint64_t> core_writes_answered{0};
  LatencyHistogram core_write_latency;
  // Client requests from parsing to the answer, by kind (watches, which stay open, are not).
  std::array<LatencyHistogram, kRequestKindCount> request_latency;
  std::atomic<uint64_t> leader_changes{0};       // a new leader became known (not "none")
  std::atomic<uint64_t> snapshots_received{0};   // snapshots from the leader handed to storage
  std::atomic<uint64_t> storage_errors{0};
  std::atomic<uint64_t> applied_commands{0};
  std::atomic<uint64_t> snapshots_sent{0};
  // Storage space, as the last storage check found it (node/storage_alarm.h).
  std::atomic<uint64_t> storage_used_bytes{0};
  std::atomic<uint64_t> storage_disk_free_bytes{0};
  std::atomic<uint64_t> storage_alarms_active{0};  // alarms in the applied state, any member's
  std::atomic<uint64_t> storage_alarms_raised{0};  // raised by this node
  std::atomic<uint64_t> watches_created{0};
  std::atomic<uint64_t> watches_canceled{0};       // by the node (compacted, stalled, bad request)
  std::atomic<uint64_t> watch_messages_sent{0};    // messages carrying events
  std::atomic<uint64_t> watch_messages_sent_early{0};  // of those, sent before the store's commit
  std::atomic<uint64_t> watch_once_answers{0};         // one-shot watches answered
};

// One reading of everything the page shows.
struct MetricsView {
  NodeId node_id = kNoNode;
  // Raft
  uint64_t term = 0;
  NodeId leader = kNoNode;
  bool is_leader = false;
  Index commit = 0;
  Index applied = 0;
  Index last_log_index = 0;
  size_t pending_requests = 0;
  // The counters above, read once.
  uint64_t raft_messages_in = 0;
  uint64_t raft_messages_out = 0;
  uint64_t raft_messages_dropped = 0;
  uint64_t raft_refused = 0;
  uint64_t raft_messages_refused = 0;
  uint64_t hlc_refused = 0;
  uint64_t lease_expiries_proposed = 0;
  uint64_t snapshots_sent = 0;
  uint64_t client_requests = 0;
  uint64_t client_errors = 0;
  uint64_t client_refused = 0;
  uint64_t client_rate_limited = 0;
  uint64_t tokens_verified = 0;
  uint64_t forwarded_requests = 0;
  uint64_t core_writes_answered = 0;
  HistogramReading core_write_latency;
  std::array<HistogramReading, kRequestKindCount> request_latency;
  uint64_t leader_changes = 0;
  uint64_t snapshots_received = 0;
  uint64_t storage_errors = 0;
  uint64_t applied_commands = 0;
  // The storage thread's (StorageWorker::Stats).
  uint64_t storage_batches = 0;
  HistogramReading storage_batch_latency;
  uint64_t storage_entries = 0;
  uint64_t storage_log_writes = 0;
  HistogramReading storage_log_write_latency;
  uint64_t storage_applies = 0;
  HistogramReading storage_apply_latency;
  uint64_t storage_compactions = 0;
  uint64_t storage_used_bytes = 0;
  uint64_t storage_quota_bytes = 0;
  uint64_t storage_max_bytes = 0;
  uint64_t storage_disk_free_bytes = 0;
  uint64_t storage_min_free_bytes = 0;
  uint64_t storage_alarms_active = 0;
  uint64_t storage_alarms_raised = 0;
  uint64_t watches_created = 0;
  uint64_t watches_canceled = 0;
  uint64_t watch_messages_sent = 0;
  uint64_t watch_messages_sent_early = 0;
  uint64_t watch_once_answers = 0;
  uint64_t watchers = 0;              // open now
  uint64_t watch_unacked_bytes = 0;   // sent to watchers, not yet acknowledged
  transport::TransportMetrics transport;
  // Samples of components that format their own (the blob service: blob_service.cc), HELP
  // and TYPE lines included; appended to the page as they are.
  std::string component_samples;
};

// Copies the counters into `view`.
void read_counters(const NodeCounters& counters, MetricsView& view);

// The page: one HELP and TYPE per metric family, every sample labelled node_id.
std::string prometheus_text(const MetricsView& view);

}  // namespace aspen::node
