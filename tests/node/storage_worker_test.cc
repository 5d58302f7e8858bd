// StorageWorker: the order in which a step's phases run on the storage and apply threads and
// are reported to the loop. An asynchronous apply of entries already in the durable log runs
// alongside its step's log write (a committed entry's watchers do not wait for the fsync of
// entries appended after it), yet the loop still hears "persisted" before "applied".
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "node/storage_worker.h"
#include "storage/mem_store.h"
#include "../storage/store_test_util.h"

namespace aspen::node {
namespace {

using storage::testing::put_entry;
using storage::testing::voters;

// A MemStore whose write_log waits at a gate the test opens; everything else passes through.
class GatedStore final : public storage::Store {
 public:
  Status write_log(const storage::WriteBatch& batch) override {
    std::unique_lock lock(mu_);
    ++log_writes_waiting_;
    cv_.notify_all();
    cv_.wait(lock, [&] { return is_open_; });
    --log_writes_waiting_;
    lock.unlock();
    return inner_.write_log(batch);
  }
  Result<std::vector<storage::AppliedEntry>> apply(const storage::WriteBatch& batch) override { return inner_.apply(batch); }
  Result<kvpb::RangeResult> range(const kvpb::RangeRequest& r) const override { return inner_.range(r); }
  Result<std::vector<kvpb::Lease>> list_leases(uint64_t after, size_t limit) const override {
    return inner_.list_leases(after, limit);
  }
  Result<std::vector<uint64_t>> expired_leases(uint64_t now_ms, size_t limit) const override {
    return inner_.expired_leases(now_ms, limit);
  }
  Result<kv::HistoryPage> read_history(Index rev, uint32_t pos, size_t limit, size_t max_bytes,
                                       bool with_prev) const override {
    return inner_.read_history(rev, pos, limit, max_bytes, with_prev);
  }
  Result<std::optional<Index>> history_retention_target(uint64_t now_ms, uint64_t keep, uint64_t age) const override {
    return inner_.history_retention_target(now_ms, keep, age);
  }
  Index applied_index() const override { return inner_.applied_index(); }
  std::optional<HlcTimestamp> applied_hlc() const override { return inner_.applied_hlc(); }
  pb::ConfState conf_state() const override { return inner_.conf_state(); }
  Status bootstrap(const pb::ConfState& v) override { return inner_.bootstrap(v); }
  Status compact(Index index) override { return inner_.compact(index); }
  uint64_t log_size_bytes() const override { return inner_.log_size_bytes(); }
  uint64_t state_size_bytes() const override { return inner_.state_size_bytes(); }
  Result<pb::SnapshotMetadata> stream_snapshot(const std::function<Status(std::string_view)>& sink) const override {
    return inner_.stream_snapshot(sink);
  }
  raft::InitialState initial_state() const override { return inner_.initial_state(); }
  Result<std::vector<pb::Entry>> entries(Index lo, Index hi, uint64_t max_bytes) const override {
    return inner_.entries(lo, hi, max_bytes);
  }
  Result<Term> term(Index i) const override { return inner_.term(i); }
  Index first_index() const override { return inner_.first_index(); }
  Index last_index() const override { return inner_.last_index(); }
  Result<pb::Snapshot> snapshot() const override { return inner_.snapshot(); }

  storage::MemStore& inner() { return inner_; }
  void open_gate() {
    std::lock_guard lock(mu_);
    is_open_ = true;
    cv_.notify_all();
  }
  bool wait_for_log_write_waiting() {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(10), [&] { return log_writes_waiting_ > 0; });
  }

 private:
  storage::MemStore inner_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool is_open_ = false;
  int log_writes_waiting_ = 0;
};

// What the worker posted to the loop, in order.
struct Posted {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> events;
  void add(std::string e) {
    std::lock_guard lock(mu);
    events.push_back(std::move(e));
    cv.notify_all();
  }
  bool wait_for(const std::string& e) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(10),
                       [&] { return std::find(events.begin(), events.end(), e) != events.end(); });
  }
  std::vector<std::string> snapshot() {
    std::lock_guard lock(mu);
    return events;
  }
};

StorageWorker::Hooks hooks_for(Posted& posted) {
  StorageWorker::Hooks h;
  h.post = [](std::function<void()> task) { task(); };  // the "loop" runs each task at once
  h.on_log_durable = [&posted](std::shared_ptr<StorageWorker::Job>) { posted.add("log_durable"); };
  h.on_persisted = [&posted](std::shared_ptr<StorageWorker::Job>, Result<storage::WriteOutcome> out) {
    posted.add(out ? "persisted" : "persist_failed");
  };
  h.on_applied = [&posted](std::shared_ptr<StorageWorker::Job>, Result<std::vector<storage::AppliedEntry>> r) {
    posted.add(r ? "applied " + std::to_string(r->size()) : "apply_failed");
  };
  h.on_history = [&posted](Index after, std::vector<kvpb::HistoryEntry> entries) {
    posted.add("history after " + std::to_string(after) + ": " + std::to_string(entries.size()));
  };
  return h;
}

// A step that appends `appended` and asynchronously applies `to_apply`.
std::shared_ptr<StorageWorker::Job> async_step(std::vector<pb::Entry> appended, std::vector<pb::Entry> to_apply) {
  auto job = std::make_shared<StorageWorker::Job>();
  auto rd = std::make_shared<raft::Ready>();
  rd->entries = std::move(appended);
  pb::HardState hs;
  hs.set_term(1);
  hs.set_commit(to_apply.back().index());
  rd->hard_state = hs;
  job->step.ready = rd;
  job->step.to_apply = std::make_shared<const std::vector<pb::Entry>>(std::move(to_apply));
  job->step.is_apply_async = true;
  job->step.needs_store = true;
  job->step.batch.entries = &rd->entries;
  job->step.batch.hard_state = &*rd->hard_state;
  job->step.batch.committed = job->step.to_apply.get();
  return job;
}

// Entries 2..3 in the durable log, committed: the store is ready for a step that applies them.
void log_two_entries(GatedStore& store) {
  ASSERT_TRUE(store.bootstrap(voters({1})).has_value());
  std::vector<pb::Entry> ents{put_entry(2, 1, "a", "1"), put_entry(3, 1, "b", "2")};
  pb::HardState hs;
  hs.set_term(1);
  hs.set_commit(1);
  storage::WriteBatch b;
  b.entries = &ents;
  b.hard_state = &hs;
  ASSERT_TRUE(store.inner().write_log(b).has_value());
}

TEST(StorageWorker, AnApplyOfEntriesAlreadyLoggedRunsAlongsideItsStepsLogWrite) {
  GatedStore store;
  ASSERT_NO_FATAL_FAILURE(log_two_entries(store));
  Posted posted;
  Knobs knobs;
  StorageWorker worker(store, knobs, 1, hooks_for(posted));
  worker.set_is_history_wanted(true);
  worker.submit(async_step({put_entry(4, 1, "c", "3")}, {put_entry(2, 1, "a", "1"), put_entry(3, 1, "b", "2")}));
  ASSERT_TRUE(store.wait_for_log_write_waiting());
  // The log write of entry 4 is held at the gate, and entries 2 and 3 are applied meanwhile.
  ASSERT_TRUE(posted.wait_for("history after 1: 2"));
  EXPECT_EQ(store.applied_index(), 3u);
  store.open_gate();
  ASSERT_TRUE(posted.wait_for("applied 2"));
  worker.stop();
  // The loop hears of the step before its apply, and of the changes first of all.
  EXPECT_EQ(posted.snapshot(), (std::vector<std::string>{"history after 1: 2", "persisted", "applied 2"}));
  EXPECT_EQ(store.last_index(), 4u);
}

TEST(StorageWorker, AnApplyOfAnEntryItsOwnStepAppendsWaitsForTheLogWrite) {
  GatedStore store;
  ASSERT_NO_FATAL_FAILURE(log_two_entries(store));
  Posted posted;
  Knobs knobs;
  StorageWorker worker(store, knobs, 1, hooks_for(posted));
  worker.set_is_history_wanted(true);
  // Entry 4 is committed in the same step that appends it (a single-voter leader's case).
  worker.submit(async_step({put_entry(4, 1, "c", "3")},
                           {put_entry(2, 1, "a", "1"), put_entry(3, 1, "b", "2"), put_entry(4, 1, "c", "3")}));
  ASSERT_TRUE(store.wait_for_log_write_waiting());
  EXPECT_TRUE(posted.snapshot().empty()) << "nothing applied before entry 4 is in the log";
  EXPECT_EQ(store.applied_index(), 1u);
  store.open_gate();
  ASSERT_TRUE(posted.wait_for("applied 3"));
  worker.stop();
  EXPECT_EQ(posted.snapshot(), (std::vector<std::string>{"persisted", "history after 1: 3", "applied 3"}));
}

}  // namespace
}  // namespace aspen::node
