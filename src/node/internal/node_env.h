// What the shell's components share: the node's configuration and identity, its endpoint
// and store, the peer registry and the counters (NodeEnv), and the door into the core and
// its Ready pump (CorePort). Not a public header.
//
// Thread notes beside each member: [const] never changes; [start] set by Shell::start before
// the loop serves anything, read-only after; [loop] the endpoint's loop thread only; [any]
// atomics.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "aspen/client.pb.h"
#include "auth/token.h"
#include "node/metrics.h"
#include "node/node_config.h"
#include "node/node_core.h"
#include "node/peer_monitor.h"
#include "node/peer_registry.h"
#include "storage/store.h"
#include "transport/endpoint.h"

namespace aspen::node::internal {

namespace cpb = aspen::clientpb;

inline constexpr const char* kRaftAlpn = "raft-auth";
inline constexpr const char* kClientAlpn = "aspen-client";
// The log subscription (docs/watch.md): committed entries streamed to consumers.
inline constexpr const char* kLogsAlpn = "aspen-logs";

struct NodeEnv {
  explicit NodeEnv(NodeConfig c) : config(std::move(c)) {}

  const NodeConfig config;                          // [const]
  std::optional<transport::NodeIdentity> identity;  // [start]
  // Shared with the snapshot sender's jobs, which may still hold them for a moment after
  // the shell let go.
  std::shared_ptr<transport::Endpoint> endpoint;  // [start]
  std::shared_ptr<storage::Store> store;          // [start]
  std::string cookie_key;                         // [start] raft_cookie_key(cookie)
  PeerRegistry peers;                             // [loop]
  std::string cluster_id;                         // [loop] from the applied state; empty before init
  std::optional<auth::KeyBytes> auth_root_key;    // [loop] from the applied state; verifies tokens
  // The root key a `cluster init` on this node brought, until the leader duty wrote it. [loop]
  std::optional<auth::KeyBytes> init_root_key;
  NodeCounters counters;                          // [any]
  // Peers' liveness and clocks, from the Raft traffic (RaftLinks feeds it). [loop]
  PeerMonitor peer_monitor{config.clock_offset_warn_ms};
  const std::chrono::steady_clock::time_point started_at = std::chrono::steady_clock::now();
  // FOR TESTS ONLY: how far wall_clock_us() is shifted, in ms: --test-clock-offset-ms, or
  // what --test-clock-offset-file says while the node runs (node/test_clock.h). [any]
  std::atomic<int64_t> test_clock_offset_ms{config.test_clock_offset_ms};

  // The wall clock in ms since the Unix epoch (wall_clock_us() in ms): for times that must
  // agree across nodes or outlive the process: leader stamps (lease expiry, TTLs, history
  // age), token expiry, gossip announcements, blob ages. A clock step moves it, and the
  // test-only offset moves it as a step would. Never for an interval or a deadline of this
  // node's own: those use steady_ms(). [any]
  uint64_t now_ms() const;
  // The same wall clock in us: the real one shifted by test_clock_offset_ms (tests only).
  // Heartbeats carry it (clock drift detection) and the hybrid logical clock reads it. [any]
  int64_t wall_clock_us() const;
  // A monotonic clock in ms, for intervals and deadlines (the peer monitor, timers, the
  // cadence of checks and duties): no clock step moves it. [any]
  static uint64_t steady_ms();
  cpb::NodeAddress address_of(const PeerInfo& p) const;
  // This node's id, key and bound address; built once. [loop]
  const cpb::NodeAddress& self_address() const;
  // The members this node can reach, or itself alone before the cluster exists. [loop]
  std::string build_ticket() const;
  // Reads the root public key from the applied state into auth_root_key, if it is there and
  // not known yet. [loop]
  void load_auth_root_key();

 private:
  mutable std::optional<cpb::NodeAddress> self_address_;  // [loop]
};

// Answers a request that went into the core. [loop]
using CoreDone = std::function<void(const Response&)>;

// The door from the services into the core and its Ready pump; the shell is the one
// implementation. [loop]
class CorePort {
 public:
  virtual ~CorePort() = default;
  // Null once the node stopped serving (shutting down, or a corrupt store).
  virtual NodeCore* core() = 0;
  // Something changed in the core (a step, a report): take its Ready soon.
  virtual void schedule_pump() = 0;
  virtual void submit_write(kvpb::Command cmd, CoreDone done) = 0;
  virtual void submit_read(kvpb::RangeRequest req, ReadConsistency consistency, CoreDone done) = 0;
  virtual void submit_conf_change(const pb::ConfChange& cc, CoreDone done) = 0;
  // Whether the store does not yet show every write this member has answered (a write
  // answered from its apply's results is in the store a moment later,
  // NodeCore::on_results_known).
  virtual bool is_store_behind_answers() = 0;
  // Runs `fn` once it does: now, or from the loop when that apply finishes. For anything
  // served from this member's store, so that it never misses a write the member already
  // acknowledged.
  virtual void when_store_shows_answers(std::function<void()> fn) = 0;
  // Re-reads membership, member records and the cluster id from the applied state.
  virtual void refresh_cluster_view() = 0;
  // Makes this node the only voter of a new cluster (an uninitialized node only) and starts
  // a core on it. Unavailable while a write is in progress.
  virtual Status bootstrap(const pb::ConfState& cs) = 0;
  // Compacts the log up to the applied index. Unavailable while a write is in progress.
  virtual Result<pb::SnapshotMetadata> trigger_snapshot() = 0;
  // The metrics page's numbers as of now.
  virtual MetricsView metrics_view() = 0;
};

// The one way an error reaches a client from this node (reads, writes, admin, relays that
// fail here): sanitized, and with the leader's address when it is NotLeader. [loop]
cpb::Response error_reply(const NodeEnv& env, NodeCore* core, const Error& e);

}  // namespace aspen::node::internal
