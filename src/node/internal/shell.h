// The node shell's internals, shared by node.cc (lifecycle, Ready pump, storage thread),
// raft_links.cc (Raft traffic on "raft-auth"), client_service.cc (the "aspen-client"
// protocol) and admin.cc (cluster administration). Not a public header.
//
// Threads: the endpoint's loop thread runs everything here (ticks and retries are asio
// timers on it) except the store's writes and log compaction, which run on the storage
// thread (StorageWorker), and snapshot streaming, which runs on the snapshot sender (a
// Worker); stop() joins both.
// Members marked [loop] are touched on the loop thread only; NodeCore and RaftCore among
// them. [storage] is the storage thread, [mu] a member guarded by the mutex beside it.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>

#include "aspen/client.pb.h"
#include "aspen/cluster.pb.h"
#include "node/node_config.h"
#include "node/log_compaction.h"
#include "node/node_core.h"
#include "node/peer_registry.h"
#include "node/ready_cycle.h"
#include "node/storage_worker.h"
#include "node/worker.h"
#include "rpc/handler_registry.h"
#include "storage/store.h"
#include "transport/endpoint.h"

namespace aspen::node::internal {

namespace cpb = aspen::clientpb;

inline constexpr const char* kRaftAlpn = "raft-auth";
inline constexpr const char* kClientAlpn = "aspen-client";
// A snapshot being received is written to <data dir>/<connection>-<stream><this>; leftovers
// from a stopped node are removed at start.
inline constexpr std::string_view kIncomingSnapshotExtension = ".incoming-snapshot";
// Tags of the frames after a snapshot stream's greeting.
inline constexpr char kSnapshotChunkTag = 'c';
inline constexpr char kSnapshotMessageTag = 'm';

struct NodeCounters {
  std::atomic<uint64_t> client_requests{0};
  std::atomic<uint64_t> client_errors{0};
  std::atomic<uint64_t> forwarded_requests{0};
  std::atomic<uint64_t> raft_messages_in{0};
  std::atomic<uint64_t> raft_messages_out{0};
  std::atomic<uint64_t> raft_messages_dropped{0};
  std::atomic<uint64_t> raft_refused{0};  // connections/streams refused: unknown key, bad cookie
  // Writes this node's core answered (as leader), from submission to answer.
  std::atomic<uint64_t> core_writes_answered{0};
  std::atomic<uint64_t> core_write_us_total{0};
  std::atomic<uint64_t> storage_errors{0};
  std::atomic<uint64_t> applied_commands{0};
  std::atomic<uint64_t> snapshots_sent{0};
};

// A Raft link to one peer (outbound; the peer dials us for its own messages). [loop]
struct OutLink {
  transport::PublicKey key;
  std::optional<transport::Stream> stream;
  bool is_connecting = false;
  uint64_t generation = 0;
  std::deque<std::string> queue;
  std::chrono::steady_clock::time_point retry_after{};
  uint32_t backoff_ms = 0;
  std::string last_dial_refusal;  // the last key refusal logged as a warning
};

// A node-to-node connection to the leader, for forwarding client requests. [loop]
struct ForwardLink {
  transport::PublicKey key;
  std::optional<transport::Connection> conn;
  bool is_connecting = false;
  std::vector<std::function<void(Result<transport::Connection>)>> waiters;
};

class Shell : public std::enable_shared_from_this<Shell> {
 public:
  explicit Shell(NodeConfig config);
  ~Shell();

  Status start();
  void stop();

  // --- thread-safe views for the process (main thread) ---
  std::string ticket_text() const;
  transport::SocketAddr local_addr() const;
  transport::PublicKey public_key() const;
  bool is_initialized() const;

  // ===== everything below runs on the loop thread =====
  uint64_t now_ms() const;  // wall clock: leader stamps must agree across nodes
  void schedule_pump();
  void pump();
  using StorageJob = StorageWorker::Job;
  void on_log_durable(std::shared_ptr<StorageJob> job);  // [loop]
  void on_persisted(std::shared_ptr<StorageJob> job, Result<storage::WriteOutcome> outcome);  // [loop]
  void on_applied(std::shared_ptr<StorageJob> job, Result<std::vector<storage::AppliedEntry>> applied);  // [loop]
  // A failed storage phase: counted and logged; corruption stops serving, else `retry` runs
  // after storage_retry_delay_ms.
  void on_storage_failure(std::string_view what, const Error& error, std::function<void()> retry);  // [loop]
  void schedule_tick();
  void on_tick();
  void refresh_cluster_view();

  // Requests into NodeCore; `done` runs on the loop thread with the response.
  using CoreDone = std::function<void(const Response&)>;
  void submit_write(kvpb::Command cmd, CoreDone done);
  void submit_read(kvpb::RangeRequest req, ReadConsistency consistency, CoreDone done);
  void submit_conf_change(const pb::ConfChange& cc, CoreDone done);
  void deliver_responses();

  // raft_links.cc
  void send_raft_messages(std::vector<pb::Message>& msgs);
  void send_raft(NodeId to, std::string bytes);
  void dial_raft(NodeId to);
  void on_raft_message(transport::Stream& stream, std::string bytes);
  void on_raft_stream_closed(transport::Stream& stream, const std::optional<Error>& error);
  // Snapshots go on a stream of their own, in frames, from a thread of their own: they may
  // be far larger than one frame and than a stream's send buffer.
  // Streams the state machine to `to` from a read transaction on a thread of its own; `m`
  // is the core's MsgSnap, whose metadata is replaced by the streamed state's.
  void send_snapshot(NodeId to, pb::Message m);
  // A received snapshot's data file, by (index, term), until the storage thread installed it.
  void drop_staged_snapshots_up_to(Index index);
  bool accept_raft_connection(transport::Connection& conn);
  std::string raft_hello() const;

  // client_service.cc
  using Reply = rpc::Reply;
  void register_client_handlers();
  void serve_client(transport::Stream& stream, std::string bytes);
  void forward_to_leader(cpb::Request req, Reply reply);
  void with_leader_connection(std::function<void(Result<transport::Connection>)> fn);
  // The one way an error reaches a client from this node (reads, writes, admin, relays that
  // fail here): sanitized, and with the leader's address when it is NotLeader.
  cpb::ErrorInfo error_info(const Error& e) const;
  cpb::Response error_reply(const Error& e) const;
  cpb::Response error_reply(ErrorCode code, std::string message) const;
  void handle_read(const cpb::Request& req, Reply reply);
  void handle_batch_read(const cpb::Request& req, Reply reply);
  void handle_scan(const cpb::Request& req, Reply reply);
  void handle_write(const cpb::Request& req, Reply reply);
  void handle_lease_list(const cpb::Request& req, Reply reply);

  // admin.cc
  void register_admin_handlers();
  void handle_health(const cpb::Request& req, Reply reply);
  void handle_metrics(const cpb::Request& req, Reply reply);
  void handle_raft_metrics(const cpb::Request& req, Reply reply);
  void handle_leader(const cpb::Request& req, Reply reply);
  void handle_node_info(const cpb::Request& req, Reply reply);
  void handle_ticket(const cpb::Request& req, Reply reply);
  void handle_init(const cpb::Request& req, Reply reply);
  void handle_add_learner(const cpb::Request& req, Reply reply);
  void handle_change_membership(const cpb::Request& req, Reply reply);
  void handle_remove_node(const cpb::Request& req, Reply reply);
  void handle_snapshot(const cpb::Request& req, Reply reply);
  void reply_membership(Reply reply, const Response& r);
  const cpb::NodeAddress& self_address() const;
  mutable std::optional<cpb::NodeAddress> self_address_;  // [loop] see self_address()
  cpb::NodeAddress address_of(const PeerInfo& p) const;
  std::string build_ticket() const;
  std::string prometheus_text() const;
  Status recreate_core();
  void run_leader_duties();
  std::vector<std::function<bool()>> init_waiters_;  // [loop] true = answered, drop it
  bool is_duty_in_flight_ = false;
  Index refresh_at_applied_ = 0;  // [loop] refresh the cluster view once this is applied (0: none)
  uint64_t last_duty_ms_ = 0;

  // Set by the constructor, read-only after: the loop and the storage thread (config_.knobs
  // for compaction) read it without a lock.
  const NodeConfig config_;
  std::optional<transport::NodeIdentity> identity_;
  // Shared with snapshot sender threads, which may outlive a stop() by a few moments.
  std::shared_ptr<transport::Endpoint> endpoint_;
  // Shared with snapshot sender threads, which read from it while they stream.
  std::shared_ptr<storage::Store> store_;
  std::unique_ptr<NodeCore> core_;  // [loop]
  PeerRegistry peers_;              // [loop]
  rpc::HandlerRegistry handlers_;
  NodeCounters counters_;
  std::chrono::steady_clock::time_point started_at_ = std::chrono::steady_clock::now();

  std::optional<ReadyCycle> cycle_;  // [loop] one Ready at a time is with the storage thread
  bool is_pump_scheduled_ = false;
  bool is_stopping_ = false;
  uint64_t next_request_id_ = 1;
  struct Waiting {
    CoreDone done;
    std::chrono::steady_clock::time_point write_started;  // writes only (the write-time metric)
  };
  std::unordered_map<uint64_t, Waiting> waiting_;  // [loop] by NodeCore request id
  std::map<NodeId, OutLink> out_links_;             // [loop]
  ForwardLink forward_link_;                        // [loop]
  // Requests relayed to a leader and not answered yet: by id, the leader they went to and
  // how to answer them. Failed at once when another leader takes over.
  struct ForwardInFlight {
    NodeId leader = kNoNode;
    std::function<void(cpb::Response)> finish;
    std::shared_ptr<bool> is_sent;  // the leader may have received it
  };
  std::map<uint64_t, ForwardInFlight> forwards_;  // [loop]
  uint64_t next_forward_id_ = 1;
  void fail_forwards_not_to(NodeId leader);
  // Inbound Raft streams whose greeting was accepted, by (connection serial, stream id):
  // the node id they speak for.
  std::map<std::pair<uint64_t, int64_t>, NodeId> inbound_raft_;  // [loop]
  // Snapshot streams being received. After the greeting, each frame is tagged: 'c' + a
  // SnapshotChunk, appended to a file in the data directory as it arrives (length-prefixed,
  // the format of pb::Snapshot.data), or 'm' + the final MsgSnap (metadata only).
  struct InboundSnapshot {
    std::string path;
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> file{nullptr, &std::fclose};
    uint64_t size_bytes = 0;
    std::string message;  // the 'm' frame, once it arrived
  };
  std::map<std::pair<uint64_t, int64_t>, InboundSnapshot> inbound_snapshots_;  // [loop]
  std::map<std::pair<Index, Term>, std::string> staged_snapshots_;               // [loop]
  bool is_snapshot_in_flight(NodeId to) const { return snapshots_in_flight_.contains(to); }
  std::set<NodeId> snapshots_in_flight_;  // [loop]
  std::string cluster_id_;                          // [loop]
  uint64_t last_refresh_ms_ = 0;
  std::string cookie_digest_;

  // Published by the loop for other threads.
  mutable std::mutex view_mu_;
  std::string ticket_view_;
  bool is_initialized_view_ = false;

  // The storage thread (its own component); stopped (joined) by stop().
  std::unique_ptr<StorageWorker> storage_;

  std::chrono::steady_clock::time_point next_tick_at_{};  // [loop]

  // Streams snapshots to peers: blocking sends must not run on the loop. Stopped (joined)
  // by stop() after the endpoint closed.
  Worker snapshot_sender_{"snap-send", limits::kMaxQueuedSnapshotSends};
};

}  // namespace aspen::node::internal
