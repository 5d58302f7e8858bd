// The node shell: lifecycle, the Ready pump and the components it wires together. Not a
// public header; Node (node.h) is its face.
//
// Components, each owning its state:
//   StorageWorker   (storage_worker.h)  the storage and apply threads
//   RaftLinks       (raft_links.h)      Raft traffic, snapshot sending ("snap-send") and receiving
//   ClientService   (client_service.h)  the client protocol, relaying to the leader
//   AdminService    (admin_service.h)   administration, introspection, leader duties
//   AlarmService    (alarm_service.h)   storage alarms: each node's storage check, list, disarm
//   WatchService    (watch_service.h)   watches: history read from the store, sent to watchers
//   metrics         (metrics.h)         counters and the Prometheus page
// What they share is NodeEnv; how they reach the core is CorePort, which the shell
// implements (node_env.h). The decisions they carry out are sans-I/O and also run in the
// simulator: ReadyCycle, route_request, next_leader_duty, SnapshotReception/StagedSnapshots,
// the compaction policy.
//
// Threads: the endpoint's loop thread runs everything here (ticks and retries are asio
// timers on it) except the storage and apply threads (StorageWorker) and the snapshot
// sender (RaftLinks); stop() closes the endpoint (joining the loop), then joins those.
// Members marked [loop] are touched on the loop thread only; NodeCore and RaftCore among
// them. [start]: set by start() before the loop serves anything, then read-only.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "node/admin_service.h"
#include "node/alarm_service.h"
#include "node/blob_service.h"
#include "node/client_service.h"
#include "node/internal/node_env.h"
#include "node/raft_links.h"
#include "node/ready_cycle.h"
#include "node/storage_worker.h"
#include "node/test_clock.h"
#include "node/watch_service.h"
#include "rpc/handler_registry.h"

namespace aspen::node::internal {

class Shell final : public CorePort, public std::enable_shared_from_this<Shell> {
 public:
  explicit Shell(NodeConfig config);
  ~Shell() override;

  Status start();
  void stop();

  // --- thread-safe views for the process (main thread) ---
  std::string ticket_text() const;
  transport::SocketAddr local_addr() const;
  transport::PublicKey public_key() const;
  bool is_initialized() const;

  // --- CorePort: the components' door into the core [loop] ---
  NodeCore* core() override { return is_stopping_ ? nullptr : core_.get(); }
  void schedule_pump() override;
  void submit_write(kvpb::Command cmd, CoreDone done) override;
  void submit_read(kvpb::RangeRequest req, ReadConsistency consistency, CoreDone done) override;
  void submit_conf_change(const pb::ConfChange& cc, CoreDone done) override;
  bool is_store_behind_answers() override;
  void when_store_shows_answers(std::function<void()> fn) override;
  void refresh_cluster_view() override;
  Status bootstrap(const pb::ConfState& cs) override;
  Result<pb::SnapshotMetadata> trigger_snapshot() override;
  MetricsView metrics_view() override;

 private:
  using StorageJob = StorageWorker::Job;
  Status start_components();
  Status recreate_core();
  void pump();                                           // [loop]
  void on_log_durable(std::shared_ptr<StorageJob> job);  // [loop]
  void on_persisted(std::shared_ptr<StorageJob> job, Result<storage::WriteOutcome> outcome);  // [loop]
  void on_applied(std::shared_ptr<StorageJob> job, Result<std::vector<storage::AppliedEntry>> applied);  // [loop]
  // A failed storage phase: counted and logged; corruption stops serving, else `retry` runs
  // after storage_retry_delay_ms.
  void on_storage_failure(std::string_view what, const Error& error, std::function<void()> retry);  // [loop]
  void after_applies(bool is_view_stale);  // [loop] refreshes the view, answers, pumps
  void schedule_tick();                    // [loop]
  void on_tick();                          // [loop]
  void poll_test_clock();                  // [loop] the offset file, every kTestClockOffsetPollMs
  uint64_t begin_request(CoreDone done, bool is_write);  // [loop]
  void deliver_responses();                // [loop]

  NodeEnv env_;
  rpc::HandlerRegistry handlers_;  // [start]
  std::unique_ptr<NodeCore> core_;  // [loop]
  std::optional<ReadyCycle> cycle_;  // [loop] one Ready at a time is with the storage thread
  bool is_pump_scheduled_ = false;   // [loop]
  bool is_stopping_ = false;         // [loop]
  NodeId last_leader_seen_ = kNoNode;  // [loop] for the leader-changes counter
  uint64_t next_request_id_ = 1;     // [loop]
  struct Waiting {
    CoreDone done;
    std::chrono::steady_clock::time_point write_started;  // writes only (the write-time metric)
  };
  std::unordered_map<uint64_t, Waiting> waiting_;  // [loop] by NodeCore request id
  // when_store_shows_answers() callbacks waiting for the store (at most
  // knobs.max_pending_requests; past that one runs at once). [loop]
  std::deque<std::function<void()>> waiting_for_store_;
  std::chrono::steady_clock::time_point next_tick_at_{};  // [loop]
  uint64_t last_refresh_ms_ = 0;                          // [loop]
  uint64_t lease_expiries_counted_ = 0;  // [loop] of the core's lease_expiries_proposed(), added to the metric
  // FOR TESTS ONLY: --test-clock-offset-file, when given. [loop]
  std::optional<TestClockOffsetFile> test_clock_file_;
  uint64_t next_test_clock_poll_ms_ = 0;  // [loop] steady clock

  // Published by the loop for other threads.
  mutable std::mutex view_mu_;
  std::string ticket_view_;          // [view_mu_]
  bool is_initialized_view_ = false;  // [view_mu_]

  // The components ([start]); shared where their asynchronous callbacks hold weak pointers.
  std::unique_ptr<StorageWorker> storage_;
  std::shared_ptr<RaftLinks> links_;
  std::shared_ptr<ClientService> clients_;
  std::unique_ptr<AdminService> admin_;
  std::unique_ptr<AlarmService> alarms_;
  std::shared_ptr<WatchService> watches_;
  std::shared_ptr<BlobService> blobs_;
};

}  // namespace aspen::node::internal
