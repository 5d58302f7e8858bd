// Knobs: every tuning constant of a node, in one struct.
//
// A knob changes how fast or how eagerly a node does something, never what is correct:
// timeouts, the tick, compaction thresholds, queue bounds, retry delays, replication flow.
// Size limits of the wire and disk formats are not knobs; they stay in core/limits.h.
//
// One Knobs instance is the source of truth for a node: NodeConfig holds it (the
// --heartbeat-ms and --election-timeout-ms flags override their fields), the shell reads its
// own knobs from it, NodeCore::create() derives the Raft tick counts and flow-control window
// from it, and compaction_point() takes it. The defaults are what a production node does and
// what docs/ say. The simulator draws a Knobs per seed (sim::draw_sim_knobs) within the ranges
// validate() accepts, so that tuning a knob cannot hide a bug the defaults would show.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "core/limits.h"

namespace aspen::node {

// An election timeout must cover a few lost heartbeats (Raft §5.2: broadcastTime <<
// electionTimeout).
inline constexpr uint32_t kMinElectionToHeartbeatRatio = 3;

struct Knobs {
  // --- time ---
  uint32_t tick_interval_ms = 10;             // how often the shell ticks the core; Raft counts time in ticks
  uint32_t heartbeat_ms = 100;                // a leader's heartbeat interval (--heartbeat-ms)
  uint32_t election_timeout_ms = 1000;        // silence before a follower campaigns, drawn from [1x, 2x) (--election-timeout-ms)
  uint64_t request_timeout_ms = 10000;        // a client request not answered by then fails with Timeout
  uint64_t lease_check_interval_ms = 500;     // how often a leader looks for expired leases
  uint64_t leader_silence_heartbeats = 3;     // a follower stops relaying to a leader silent this many heartbeats
  uint32_t storage_retry_delay_ms = 1000;     // pause before a failed storage write (a full disk) is retried
  uint64_t leader_duty_interval_ms = 200;     // how often a leader checks the cluster id and member records
  uint64_t cluster_view_refresh_ms = 5000;    // how often membership and member records are re-read anyway
  uint64_t init_timeout_ms = 10000;           // how long `cluster init` waits for the new cluster's first leader
  uint32_t raft_dial_backoff_min_ms = 50;     // first pause after a failed dial of a peer's Raft link
  uint32_t raft_dial_backoff_max_ms = 2000;   // the pause doubles per failure up to this
  uint64_t token_cache_ms = 1000;             // a connection's verified token is reused this long (revocation delay)
  uint64_t storage_check_interval_ms = 250;   // how often a node measures its storage against its limits
  uint64_t snapshot_send_timeout_ms = 600000; // a snapshot send (and the read transaction it holds) ends by then
  // History (MVCC) retention: the leader compacts away versions older than both bounds allow
  // (0 disables a bound; both 0 keep history until an operator compacts).
  uint64_t history_retention_revisions = 100000;  // revisions kept below the store revision (--history-retention-revisions)
  uint64_t history_retention_ms = 3600000;        // and no version older than this (--history-retention-s)
  uint64_t history_check_interval_ms = 5000;      // how often a leader applies those bounds
  // A watcher that has not read its answers (limits::kMaxWatchUnackedBytes unacknowledged)
  // for this long is cancelled; until then it is only paused.
  uint64_t watch_stall_cancel_ms = 60000;

  // --- blobs (docs/blobs.md) ---
  uint64_t blob_max_size_bytes = limits::kMaxBlobSizeBytes;  // the largest blob an import accepts (--blob-max-size-bytes)
  uint64_t blob_gc_grace_ms = 3600000;         // an untagged blob is kept this long after its last import (--blob-gc-grace-s)
  uint64_t blob_gc_interval_ms = 600000;       // how often a node runs blob GC by itself (0: only when asked)
  uint32_t blob_replication_factor = 0;        // members that should hold a tagged blob (0: every voter) (--blob-replication-factor)
  uint64_t blob_replication_interval_ms = 1000;  // how often a node looks for tagged blobs it should fetch
  // A node's fetch bandwidth for replication (0: no cap; --blob-replication-bytes-per-s).
  // 64 MiB/s: about half of a 1 Gbit/s link, so replicating a large blob to a new member
  // leaves room for Raft's appends and the clients on the same link and disk.
  uint64_t blob_replication_bytes_per_s = uint64_t{64} << 20;
  uint32_t blob_max_transfers = 16;            // add and get streams a node serves at once; more are refused

  // --- queue bounds ---
  size_t max_pending_requests = 10000;              // client requests waiting in the core (writes and reads)
  size_t max_forwards_in_flight = 10000;            // requests a follower relays to the leader, unanswered
  size_t max_queued_raft_messages_per_peer = 1024;  // messages held while a peer's link is dialled

  // --- client admission (docs/operations.md, "Limits") ---
  // Requests one client connection may make per second on average (a token bucket), and in
  // a burst; one over is answered Unavailable, naming the limit, and never executed. A
  // member relaying its clients' requests is not limited. 0 disables the limit.
  // Settings --client-requests-per-s / --client-request-burst. The default is above what a node
  // serves (about 50,000 requests/s in all on a 2-core machine), so it stops only a runaway
  // client: at 5,000/s it capped one application's pipelined reads at a third of what the
  // node could serve. An operator who wants clients to share a node evenly sets it lower.
  uint32_t client_requests_per_s = 100000;
  uint32_t client_request_burst = 20000;

  // --- replication flow ---
  size_t max_inflight_appends = 256;               // unacknowledged appends per follower in replicate state
  uint64_t max_append_bytes = uint64_t{1} << 20;   // entries per append message (<= limits::kMaxEntriesPerMessageBytes)
  bool should_send_early = true;                   // a leader sends appends while its own fsync runs (§10.2.1)
  bool should_defer_apply = true;                  // committed entries are applied in batches (see apply_delay_max_ms)
  uint64_t apply_delay_max_ms = 10;                // longest a committed entry waits to be applied when nothing needs it
  bool should_apply_async = true;                  // the state machine applies on its own thread, off the log's path

  // --- log compaction (node/log_compaction.h) ---
  uint64_t compact_threshold_entries = 20000;        // applied entries in the log before it is compacted
  uint64_t compact_keep_entries = 5000;              // entries kept behind applied when compacting
  uint64_t compact_threshold_bytes = uint64_t{64} << 20;  // log size before it is compacted
  uint64_t compact_keep_bytes = uint64_t{16} << 20;       // about this much log is kept when compacting by size

  // Raft's timing in ticks, as RaftConfig wants it: never 0, and an election timeout longer
  // than a heartbeat even when the milliseconds round down.
  uint32_t heartbeat_ticks() const;
  uint32_t election_ticks() const;

  friend bool operator==(const Knobs&, const Knobs&) = default;
};

// The defaults keep the relations validate() checks, and Raft's timing needs no rounding.
static_assert(Knobs{}.heartbeat_ms % Knobs{}.tick_interval_ms == 0);
static_assert(Knobs{}.election_timeout_ms % Knobs{}.tick_interval_ms == 0);
static_assert(Knobs{}.election_timeout_ms >= kMinElectionToHeartbeatRatio * Knobs{}.heartbeat_ms,
              "followers must hear several heartbeats before an election timeout");
static_assert(Knobs{}.client_requests_per_s <= limits::kMaxClientRequestsPerSecond &&
              Knobs{}.client_request_burst >= 1);
static_assert(Knobs{}.compact_keep_entries < Knobs{}.compact_threshold_entries &&
              Knobs{}.compact_keep_bytes < Knobs{}.compact_threshold_bytes);

// ConfigInvalid naming the first field (as spelled above) that is out of range and why.
Status validate(const Knobs& knobs);

// One line, "name=value ...", every knob: for the simulator's replay output and logs.
std::string describe(const Knobs& knobs);

}  // namespace aspen::node
