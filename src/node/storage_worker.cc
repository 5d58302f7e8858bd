#include "node/storage_worker.h"

#include <chrono>
#include <future>

#include "core/assert.h"
#include "core/log.h"
#include "node/log_compaction.h"

namespace aspen::node {

namespace {
uint64_t micros_since(std::chrono::steady_clock::time_point t) {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t).count());
}
}  // namespace

StorageWorker::StorageWorker(storage::Store& store, const Knobs& knobs, uint64_t node_id, Hooks hooks)
    : store_(store),
      knobs_(knobs),
      node_id_(node_id),
      hooks_(std::move(hooks)),
      apply_worker_("apply", 4),
      worker_("storage", 1) {
  ASPEN_ASSERT(hooks_.post && hooks_.on_log_durable && hooks_.on_persisted && hooks_.on_applied);
}

StorageWorker::~StorageWorker() { stop(); }

void StorageWorker::submit(std::shared_ptr<Job> job) {
  // One job at a time: the loop hands over the next Ready only after on_persisted.
  worker_.submit([this, job = std::move(job)] { persist(job); });
}

void StorageWorker::stop() {
  worker_.stop();
  apply_worker_.stop();
}

void StorageWorker::submit_apply(std::shared_ptr<Job> job) {
  apply_worker_.submit([this, job = std::move(job)] { apply_async(job); });
}

void StorageWorker::drain_applies() {
  std::promise<void> idle;
  auto done = idle.get_future();
  if (!apply_worker_.submit([&idle] { idle.set_value(); })) return;  // stopping: nothing will run
  done.wait();
}

Result<std::vector<storage::AppliedEntry>> StorageWorker::timed_apply(const std::shared_ptr<Job>& job) {
  const auto t_apply = std::chrono::steady_clock::now();
  storage::WriteBatch batch = job->step.batch;
  if (hooks_.on_history && is_history_wanted_.load(std::memory_order_relaxed)) {
    batch.on_history = [this](Index after_index, std::vector<kvpb::HistoryEntry> entries) {
      hooks_.post([hook = hooks_.on_history, after_index, entries = std::move(entries)]() mutable {
        hook(after_index, std::move(entries));
      });
    };
  }
  // Only asynchronous applies: a synchronous one (with a membership change, or with a
  // snapshot) answers its writes when its step finishes, right after, and a membership
  // change only once synced in full.
  if (hooks_.on_results && job->step.is_apply_async) {
    batch.on_results = [this, job](std::vector<storage::AppliedEntry>& applied) {
      // The payloads go to the loop (a transaction's reads may be large); on_applied then
      // sees the entries without them, and has no write left to answer.
      std::vector<storage::AppliedEntry> results;
      results.reserve(applied.size());
      for (auto& a : applied) results.push_back({a.index, a.term, a.type, std::move(a.result)});
      hooks_.post([hook = hooks_.on_results, job, results = std::move(results)]() mutable { hook(job, std::move(results)); });
    };
  }
  auto applied = store_.apply(batch);
  stats_.applies.fetch_add(1, std::memory_order_relaxed);
  stats_.apply_latency.observe_us(micros_since(t_apply));
  return applied;
}

void StorageWorker::apply_async(const std::shared_ptr<Job>& job) {
  auto applied = timed_apply(job);
  hooks_.post([hook = hooks_.on_applied, job, applied = std::move(applied)]() mutable { hook(job, std::move(applied)); });
}

void StorageWorker::persist(const std::shared_ptr<Job>& job) {
  const auto t0 = std::chrono::steady_clock::now();
  const bool has_sync_apply = job->step.to_apply != nullptr && !job->step.is_apply_async;
  if ((job->step.ready->snapshot || has_sync_apply) && !job->is_log_written) drain_applies();
  // Phase 1, the log: its messages (acks, votes) and answers at commit go out as soon as it
  // is durable, while phase 2 applies the committed entries to the state machine.
  Result<storage::WriteOutcome> out = storage::WriteOutcome{};
  if (!job->is_log_written) {
    std::lock_guard write_lock(write_mu_);
    if (auto s = store_.write_log(job->step.batch); s) {
      job->is_log_written = true;
      out->entries_appended = job->step.ready->entries.size();
      stats_.log_writes.fetch_add(1, std::memory_order_relaxed);
      stats_.log_write_latency.observe_us(micros_since(t0));
    } else {
      out = std::unexpected(s.error());
    }
  }
  const bool is_apply_handed_off = out && job->step.is_apply_async;
  if (is_apply_handed_off) {
    // Phase 2 goes to the apply thread (below, after on_persisted is posted, so that the
    // loop hears of the step before its apply); the step is done once the log is.
  } else if (out && job->step.batch.committed != nullptr && !job->step.batch.committed->empty()) {
    hooks_.post([hook = hooks_.on_log_durable, job] { hook(job); });
    std::lock_guard write_lock(write_mu_);
    auto applied = timed_apply(job);
    if (applied) {
      out->applied = std::move(*applied);
    } else {
      out = std::unexpected(applied.error());
    }
  }
  stats_.batches.fetch_add(1, std::memory_order_relaxed);
  stats_.entries.fetch_add(job->step.ready->entries.size(), std::memory_order_relaxed);
  stats_.batch_latency.observe_us(micros_since(t0));
  const bool is_written = out.has_value();
  hooks_.post([hook = hooks_.on_persisted, job, out = std::move(out)]() mutable { hook(job, std::move(out)); });
  if (is_apply_handed_off) submit_apply(job);
  // Compaction runs after the batch was answered, off its critical path; the next batch
  // waits for it only if it is already ready.
  if (is_written) maybe_compact();
}

void StorageWorker::maybe_compact() {
  // Keep the log bounded: compact well behind the applied index (lagging followers within
  // the kept entries still get entries, others a snapshot).
  Index to = compaction_point(store_.first_index(), store_.last_index(), store_.applied_index(),
                              store_.log_size_bytes(), knobs_);
  if (to == 0) return;
  std::lock_guard write_lock(write_mu_);
  if (auto s = store_.compact(to); s) {
    stats_.compactions.fetch_add(1, std::memory_order_relaxed);
  } else {
    ASPEN_LOG_WARN("node {}: log compaction failed: {}", node_id_, s.error().to_string());
  }
}

}  // namespace aspen::node
