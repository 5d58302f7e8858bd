#include "node/metrics.h"

#include <fmt/format.h>

namespace aspen::node {

const char* request_kind_name(RequestKind kind) {
  switch (kind) {
    case RequestKind::kRead: return "read";
    case RequestKind::kBatchRead: return "batch_read";
    case RequestKind::kScan: return "scan";
    case RequestKind::kWrite: return "write";
    case RequestKind::kLeaseList: return "lease_list";
    case RequestKind::kStatus: return "status";
    case RequestKind::kAdmin: return "admin";
  }
  return "admin";
}

void read_counters(const NodeCounters& c, MetricsView& v) {
  auto r = [](const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  v.raft_messages_in = r(c.raft_messages_in);
  v.raft_messages_out = r(c.raft_messages_out);
  v.raft_messages_dropped = r(c.raft_messages_dropped);
  v.raft_refused = r(c.raft_refused);
  v.raft_messages_refused = r(c.raft_messages_refused);
  v.hlc_refused = r(c.hlc_refused);
  v.lease_expiries_proposed = r(c.lease_expiries_proposed);
  v.snapshots_sent = r(c.snapshots_sent);
  v.client_requests = r(c.client_requests);
  v.client_errors = r(c.client_errors);
  v.client_refused = r(c.client_refused);
  v.client_rate_limited = r(c.client_rate_limited);
  v.tokens_verified = r(c.tokens_verified);
  v.forwarded_requests = r(c.forwarded_requests);
  v.core_writes_answered = r(c.core_writes_answered);
  v.core_write_latency = c.core_write_latency.read();
  for (size_t i = 0; i < kRequestKindCount; ++i) v.request_latency[i] = c.request_latency[i].read();
  v.leader_changes = r(c.leader_changes);
  v.snapshots_received = r(c.snapshots_received);
  v.storage_errors = r(c.storage_errors);
  v.applied_commands = r(c.applied_commands);
  v.storage_used_bytes = r(c.storage_used_bytes);
  v.storage_disk_free_bytes = r(c.storage_disk_free_bytes);
  v.storage_alarms_active = r(c.storage_alarms_active);
  v.storage_alarms_raised = r(c.storage_alarms_raised);
  v.watches_created = r(c.watches_created);
  v.watches_canceled = r(c.watches_canceled);
  v.watch_messages_sent = r(c.watch_messages_sent);
  v.watch_messages_sent_early = r(c.watch_messages_sent_early);
  v.watch_once_answers = r(c.watch_once_answers);
}

namespace {

double seconds(uint64_t us) { return static_cast<double>(us) / 1e6; }

// One histogram's samples (the family's HELP and TYPE come first, once): cumulative buckets,
// +Inf, sum and count. `labels` are the sample's labels after node_id (",op=\"read\"").
void histogram_samples(std::string& out, std::string_view name, NodeId node_id, std::string_view labels,
                       const HistogramReading& h) {
  uint64_t cumulative = 0;
  for (size_t i = 0; i < kLatencyBucketCount; ++i) {
    cumulative += h.counts[i];
    const std::string le = i < kLatencyBucketsUs.size() ? fmt::format("{}", seconds(kLatencyBucketsUs[i])) : "+Inf";
    out += fmt::format("aspen_{}_bucket{{node_id=\"{}\"{},le=\"{}\"}} {}\n", name, node_id, labels, le, cumulative);
  }
  out += fmt::format("aspen_{}_sum{{node_id=\"{}\"{}}} {}\n", name, node_id, labels, seconds(h.sum_us));
  out += fmt::format("aspen_{}_count{{node_id=\"{}\"{}}} {}\n", name, node_id, labels, cumulative);
}

}  // namespace

std::string prometheus_text(const MetricsView& v) {
  std::string out;
  auto family = [&](std::string_view name, std::string_view type, std::string_view help) {
    out += fmt::format("# HELP aspen_{} {}\n# TYPE aspen_{} {}\n", name, help, name, type);
  };
  auto histogram = [&](std::string_view name, std::string_view help, const HistogramReading& h) {
    family(name, "histogram", help);
    histogram_samples(out, name, v.node_id, "", h);
  };
  auto metric = [&](std::string_view name, std::string_view type, std::string_view help, uint64_t value) {
    out += fmt::format("# HELP aspen_{} {}\n# TYPE aspen_{} {}\naspen_{}{{node_id=\"{}\"}} {}\n", name, help, name, type,
                       name, v.node_id, value);
  };
  metric("raft_term", "gauge", "Current Raft term.", v.term);
  metric("raft_leader_id", "gauge", "Node id of the known leader (0 = none).", v.leader);
  metric("raft_is_leader", "gauge", "1 if this node is the leader.", v.is_leader ? 1 : 0);
  metric("raft_commit_index", "gauge", "Highest log index known committed.", v.commit);
  metric("raft_applied_index", "gauge", "Highest log index applied to the state machine.", v.applied);
  metric("raft_last_log_index", "gauge", "Last index in the log.", v.last_log_index);
  metric("raft_messages_received_total", "counter", "Raft messages received from peers.", v.raft_messages_in);
  metric("raft_messages_sent_total", "counter", "Raft messages sent to peers.", v.raft_messages_out);
  metric("raft_messages_dropped_total", "counter", "Raft messages dropped (peer unreachable or backlogged).",
         v.raft_messages_dropped);
  metric("raft_refused_total", "counter", "Raft connections or streams refused (unknown key, wrong cookie).",
         v.raft_refused);
  metric("raft_messages_refused_total", "counter",
         "Raft messages refused as impossible from a correct peer (the log names the first ones).",
         v.raft_messages_refused);
  metric("hlc_refused_total", "counter",
         "Hybrid logical clock stamps from peers refused as too far ahead of this node's clock (the messages were "
         "still processed; see docs/operations.md, Clocks).",
         v.hlc_refused);
  metric("lease_expiries_proposed_total", "counter",
         "Leases this node, as leader, proposed to expire because its clock passed their expiry time (see "
         "docs/operations.md, Clocks).",
         v.lease_expiries_proposed);
  metric("raft_snapshots_sent_total", "counter", "Snapshots sent to lagging followers.", v.snapshots_sent);
  metric("raft_snapshots_received_total", "counter", "Snapshots received from the leader and installed.",
         v.snapshots_received);
  metric("raft_leader_changes_total", "counter", "Times this node learned of a new leader.", v.leader_changes);
  metric("client_requests_total", "counter", "Client requests received.", v.client_requests);
  metric("client_errors_total", "counter", "Client requests answered with an error.", v.client_errors);
  metric("client_unauthorized_total", "counter", "Client requests refused: no token, a bad one, or a missing capability.",
         v.client_refused);
  metric("client_rate_limited_total", "counter",
         "Client requests refused over the per-connection rate limit (knob client_requests_per_s); never executed.",
         v.client_rate_limited);
  metric("auth_token_verifications_total", "counter", "Capability tokens verified in full (not from the per-connection cache).",
         v.tokens_verified);
  metric("client_forwarded_total", "counter", "Client requests forwarded to the leader.", v.forwarded_requests);
  metric("client_pending_requests", "gauge", "Requests (proposals and reads) waiting in the node core.",
         v.pending_requests);
  family("client_request_duration_seconds", "histogram",
         "Client requests from arrival to answer, by operation (op): read, batch_read, scan, write, lease_list, "
         "status (health, metrics, node info), admin (membership, tokens, alarms).");
  for (size_t i = 0; i < kRequestKindCount; ++i) {
    histogram_samples(out, "client_request_duration_seconds", v.node_id,
                      fmt::format(",op=\"{}\"", request_kind_name(static_cast<RequestKind>(i))), v.request_latency[i]);
  }
  metric("storage_writes_total", "counter", "Batches persisted (a log write, then an apply if entries committed).",
         v.storage_batches);
  metric("storage_log_writes_total", "counter",
         "Log writes (one fdatasync each when they hold entries or a new term or vote).", v.storage_log_writes);
  histogram("storage_log_write_duration_seconds",
            "Log write transactions with their fdatasync (the fsync latency a write waits for).",
            v.storage_log_write_latency);
  metric("storage_applies_total", "counter", "State machine transactions applying committed entries.",
         v.storage_applies);
  histogram("storage_apply_duration_seconds", "State machine transactions applying committed entries (Raft apply).",
            v.storage_apply_latency);
  metric("core_writes_answered_total", "counter", "Writes answered by this node as leader.", v.core_writes_answered);
  histogram("raft_write_commit_duration_seconds",
            "Writes this node answered as leader, from arrival in its core to the answer: Raft commit (a quorum "
            "persisted it), or apply when the result needs it.",
            v.core_write_latency);
  metric("storage_entries_written_total", "counter", "Log entries persisted.", v.storage_entries);
  histogram("storage_batch_duration_seconds", "Batches persisted, both phases (log write and apply).",
            v.storage_batch_latency);
  metric("storage_errors_total", "counter", "Failed storage transactions.", v.storage_errors);
  metric("storage_compactions_total", "counter", "Log compactions.", v.storage_compactions);
  metric("applied_entries_total", "counter", "Log entries applied to the state machine.", v.applied_commands);
  metric("storage_used_bytes", "gauge", "Bytes the state machine occupies (freed pages not counted).",
         v.storage_used_bytes);
  metric("storage_quota_bytes", "gauge", "Past this size the node raises the storage alarm (--storage-quota-bytes).",
         v.storage_quota_bytes);
  metric("storage_max_bytes", "gauge", "The state machine's largest possible size (--storage-max-bytes).",
         v.storage_max_bytes);
  metric("storage_disk_free_bytes", "gauge", "Free space on the data directory's filesystem.",
         v.storage_disk_free_bytes);
  metric("storage_min_free_bytes", "gauge", "Below this much free disk the node raises the storage alarm.",
         v.storage_min_free_bytes);
  metric("storage_alarms_active", "gauge",
         "Storage alarms raised in the cluster (any member's); while above 0, writes that add data are refused.",
         v.storage_alarms_active);
  metric("storage_alarms_raised_total", "counter", "Storage alarms this node raised.", v.storage_alarms_raised);
  metric("watchers", "gauge", "Watches this node serves now.", v.watchers);
  metric("watch_unacked_bytes", "gauge", "Bytes sent to watchers that they have not acknowledged yet.",
         v.watch_unacked_bytes);
  metric("watches_created_total", "counter", "Watches created on this node.", v.watches_created);
  metric("watches_canceled_total", "counter",
         "Watches this node ended itself (history compacted, watcher stalled, bad request).", v.watches_canceled);
  metric("watch_messages_sent_total", "counter", "Watch messages carrying events sent.", v.watch_messages_sent);
  metric("watch_messages_sent_early_total", "counter",
         "Of those, messages sent from committed entries before the state machine's commit made them readable.",
         v.watch_messages_sent_early);
  metric("watch_once_answers_total", "counter",
         "One-shot watches (a coordination primitive waiting for its turn) answered: the change came or the wait "
         "timed out.",
         v.watch_once_answers);
  const auto& tm = v.transport;
  metric("transport_connections_open", "gauge", "Open QUIC connections.", tm.connections_open);
  metric("transport_streams_open", "gauge", "Open streams.", tm.streams_open);
  metric("transport_bytes_in_total", "counter", "UDP payload bytes received.", tm.bytes_in);
  metric("transport_bytes_out_total", "counter", "UDP payload bytes sent.", tm.bytes_out);
  metric("transport_handshake_failures_total", "counter", "Failed handshakes.", tm.handshake_failures);
  metric("transport_connections_refused_total", "counter", "Connections refused over any connection limit.",
         tm.connections_refused);
  metric("transport_member_connections_refused_total", "counter", "Member connections refused over the member limit.",
         tm.member_connections_refused);
  metric("transport_client_connections_refused_total", "counter", "Client connections refused over the client limit.",
         tm.client_connections_refused);
  metric("transport_address_connections_refused_total", "counter",
         "Client connections refused over the per-address limit.", tm.address_connections_refused);
  metric("transport_handshakes_refused_total", "counter",
         "Connection attempts refused over the limit of handshakes in progress.", tm.handshakes_refused);
  metric("transport_member_connections_open", "gauge", "Inbound member connections (admitted).",
         tm.member_connections_open);
  metric("transport_client_connections_open", "gauge", "Inbound client connections (admitted).",
         tm.client_connections_open);
  metric("transport_streams_refused_recv_limit_total", "counter",
         "Streams reset because their partial frames would cross a receive buffer limit.",
         tm.streams_refused_recv_limit);
  metric("transport_partial_frame_bytes", "gauge", "Bytes held by partially received frames.", tm.partial_frame_bytes);
  metric("transport_streams_refused_send_limit_total", "counter",
         "Answers not sent (their streams reset) because they would cross a send buffer limit.",
         tm.streams_refused_send_limit);
  metric("transport_client_unacked_send_bytes", "gauge",
         "Bytes queued or in flight to client connections, not yet acknowledged.", tm.client_unacked_send_bytes);
  metric("transport_retries_sent_total", "counter", "Address validation challenges (QUIC Retry) sent.",
         tm.retries_sent);
  metric("transport_invalid_tokens_total", "counter", "Connection attempts with a forged or expired token.",
         tm.invalid_tokens);
  metric("transport_stateless_resets_sent_total", "counter", "Stateless resets sent for unknown connections.",
         tm.stateless_resets_sent);
  metric("transport_send_blocked_total", "counter",
         "Times the UDP send buffer was full and sending paused (raise net.core.wmem_max if frequent).",
         tm.send_blocked);
  metric("transport_datagrams_dropped_total", "counter", "Datagrams dropped because the send queue was full.",
         tm.datagrams_dropped);
  metric("transport_peers_unreachable_total", "counter",
         "Connections ended at once because the peer's address answered with ICMP unreachable (its process is gone).",
         tm.peers_unreachable);
  family("transport_peer_rtt_seconds", "gauge", "Smoothed round-trip time per peer connection (QUIC).");
  for (const auto& r : tm.peer_rtts) {
    out += fmt::format("aspen_transport_peer_rtt_seconds{{node_id=\"{}\",peer=\"{}\",alpn=\"{}\"}} {}\n", v.node_id,
                       r.peer.short_string(), r.alpn, seconds(r.smoothed_rtt_us));
  }
  out += v.component_samples;
  return out;
}

}  // namespace aspen::node
