// StorageWorker: the node's storage thread, one component. It persists one Ready step at a
// time in the Store's two phases (storage/store.h) and reports each phase back to the event
// loop: "the log is durable" (the step's messages and answers at commit may go) and "the
// step is persisted and applied". After each batch it compacts the log by the knobs'
// policy (log_compaction.h), off the batch's critical path.
//
//   StorageWorker storage(store, knobs, node_id, {post, on_log_durable, on_persisted});
//   storage.submit(job);   // from the loop; one job at a time (ReadyCycle keeps to that)
//   storage.stop();        // the write in progress finishes; later jobs are dropped
//
// Threads: submit() and stop() on any thread; the persisting on the worker's own thread
// ("storage") and asynchronous applies on a second one ("apply"); the hooks are posted to
// the loop. A snapshot install or a synchronous apply first waits for the apply thread to
// be idle, so that applies happen in log order. Every write to the store (batches,
// compaction, and the loop's bootstrap and on-demand snapshot, which only try it) holds
// write_mutex(): LMDB takes one writer at a time and the store's bookkeeping assumes so.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "node/histogram.h"
#include "node/knobs.h"
#include "node/ready_cycle.h"
#include "node/worker.h"
#include "storage/store.h"

namespace aspen::node {

class StorageWorker {
 public:
  // A Ready on its way through the storage thread.
  struct Job {
    ReadyCycle::Step step;
    std::string snapshot_path;    // the staged data file of step's snapshot, if any
    bool is_log_written = false;  // [storage] write_log succeeded: a retry only applies
  };
  struct Hooks {
    std::function<void(std::function<void()>)> post;  // runs a task on the loop
    std::function<void(std::shared_ptr<Job>)> on_log_durable;                                      // [loop]
    std::function<void(std::shared_ptr<Job>, Result<storage::WriteOutcome>)> on_persisted;        // [loop]
    // An asynchronous apply (step.is_apply_async) is done, after on_persisted.
    std::function<void(std::shared_ptr<Job>, Result<std::vector<storage::AppliedEntry>>)> on_applied;  // [loop]
    // Optional: the history entries an apply wrote, before its commit (WriteBatch::on_history),
    // while set_is_history_wanted(true). Posted before that apply's on_persisted/on_applied,
    // and after the previous apply's.
    std::function<void(Index after_index, std::vector<kvpb::HistoryEntry>)> on_history;  // [loop]
    // Optional: an asynchronous apply's results, before its commit (WriteBatch::on_results),
    // so that the writes are answered without waiting for the state machine's sync. Posted
    // after that apply's on_history and before its on_applied.
    std::function<void(std::shared_ptr<Job>, std::vector<storage::AppliedEntry>)> on_results;  // [loop]
  };
  // What it measured, for the metrics (any thread reads them).
  struct Stats {
    std::atomic<uint64_t> batches{0};
    LatencyHistogram batch_latency;      // both phases of a batch
    std::atomic<uint64_t> entries{0};
    std::atomic<uint64_t> log_writes{0};
    LatencyHistogram log_write_latency;  // the log's write transaction and its fdatasync
    std::atomic<uint64_t> applies{0};
    LatencyHistogram apply_latency;      // the state machine's write transaction
    std::atomic<uint64_t> compactions{0};
  };

  StorageWorker(storage::Store& store, const Knobs& knobs, uint64_t node_id, Hooks hooks);
  ~StorageWorker();
  StorageWorker(const StorageWorker&) = delete;
  StorageWorker& operator=(const StorageWorker&) = delete;

  void submit(std::shared_ptr<Job> job);  // any thread; dropped once stopped
  // Applies an asynchronous step's entries (again, after a failure) on the apply thread.
  void submit_apply(std::shared_ptr<Job> job);
  void stop();                            // any thread but its own; idempotent
  // Whether applies copy their changes for on_history (someone watches); any thread.
  void set_is_history_wanted(bool is_wanted) { is_history_wanted_.store(is_wanted, std::memory_order_relaxed); }
  std::mutex& write_mutex() { return write_mu_; }
  const Stats& stats() const { return stats_; }

 private:
  void persist(const std::shared_ptr<Job>& job);  // [storage]
  void apply_async(const std::shared_ptr<Job>& job);  // [apply]
  Result<std::vector<storage::AppliedEntry>> timed_apply(const std::shared_ptr<Job>& job);  // [storage] or [apply]
  void drain_applies();                           // [storage] waits until the apply thread is idle
  void maybe_compact();                           // [storage]

  storage::Store& store_;
  std::atomic<bool> is_history_wanted_{false};  // [any]
  const Knobs& knobs_;
  const uint64_t node_id_;
  const Hooks hooks_;
  std::mutex write_mu_;
  Stats stats_;
  // Last: their threads start once everything above exists. The state machine's applies run
  // on their own thread, so that the next batch's log write does not wait for an LMDB
  // commit; at most one asynchronous apply is queued (NodeCore holds the rest back).
  Worker apply_worker_;
  Worker worker_;
};

}  // namespace aspen::node
