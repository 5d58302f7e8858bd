// Blocking coordination calls wait on changes, not on a backoff, when the store reports
// changes (kv::ChangeNotifier, as the remote client does through watches): a queue pop, a
// barrier wait, a semaphore or RW lock acquire, an election campaign and an election
// observer are woken by the change another client makes, and never sleep.
//
// The store here reports a change by running what "another client" does during the wait
// (and checks that the change falls in the range the caller watches); without one, the calls
// poll as before (the other coord tests).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "coord/barrier.h"
#include "coord/election.h"
#include "coord/queue.h"
#include "coord/rwlock.h"
#include "coord/semaphore.h"
#include "kv/commands.h"
#include "kv/deterministic_store.h"

namespace aspen::coord {
namespace {

class NotifyingStore final : public kv::KeyValueStore, public kv::ChangeNotifier {
 public:
  Result<kvpb::CommandResult> execute(kvpb::Command cmd) override { return inner.execute(std::move(cmd)); }
  Result<kvpb::RangeResult> range(const kvpb::RangeRequest& request) override { return inner.range(request); }
  Result<std::vector<kvpb::Lease>> list_leases() override { return inner.list_leases(); }
  // A lock waiter waits for the deletion of one key: the action must delete it.
  Result<uint64_t> wait_for_delete(std::string_view key, uint64_t, uint64_t timeout_ms) override {
    ++waits;
    if (!action_) {
      clock_ms += timeout_ms;
      return uint64_t{0};
    }
    EXPECT_EQ(changed_key_, key) << "the change is not the deletion waited for";
    std::exchange(action_, nullptr)();
    auto page = inner.range(kv::key_range(key));
    if (!page || page->kvs_size() != 0) return uint64_t{0};
    return page->revision();
  }
  Result<kvpb::RangeResult> range_at(const kvpb::RangeRequest& request, uint64_t revision) override {
    ++reads_at;
    kvpb::RangeRequest at = request;
    at.set_revision(revision);
    return inner.range(at);
  }
  Result<std::unique_ptr<kv::ChangeWaiter>> watch_range(std::string_view start, std::string_view end) override {
    ++opened;
    return std::unique_ptr<kv::ChangeWaiter>(std::make_unique<Changes>(*this, std::string(start), std::string(end)));
  }

  // What another client does while the caller waits: run once, at the first wait, and it must
  // touch `changed_key`, which the caller's watched range must cover.
  void on_first_wait(std::string changed_key, std::function<void()> action) {
    changed_key_ = std::move(changed_key);
    action_ = std::move(action);
  }

  kv::DeterministicKeyValueStore inner;
  uint64_t clock_ms = 1000;  // the callers' Waiter clock; a wait that sees nothing advances it
  int opened = 0;
  int waits = 0;
  int reads_at = 0;
  int sleeps = 0;

  Waiter waiter() {
    return Waiter{[this] { return clock_ms; },
                  [this](uint64_t ms) {
                    ++sleeps;
                    clock_ms += ms;
                  },
                  3};
  }

 private:
  class Changes final : public kv::ChangeWaiter {
   public:
    Changes(NotifyingStore& s, std::string start, std::string end)
        : s_(s), start_(std::move(start)), end_(std::move(end)) {}
    Result<bool> wait(uint64_t timeout_ms) override {
      ++s_.waits;
      if (!s_.action_) {
        s_.clock_ms += timeout_ms;
        return false;
      }
      EXPECT_GE(s_.changed_key_, start_) << "the change is outside the watched range";
      EXPECT_TRUE(end_.empty() || s_.changed_key_ < end_) << "the change is outside the watched range";
      std::exchange(s_.action_, nullptr)();
      return true;
    }

   private:
    NotifyingStore& s_;
    std::string start_;
    std::string end_;
  };

  std::string changed_key_;
  std::function<void()> action_;
};

constexpr uint64_t kTtlMs = 60000;

TEST(CoordChangeWait, AQueuePopIsWokenByAPushWithoutSleeping) {
  NotifyingStore s;
  QueueManager q(s, "jobs", QueueConfig{});
  s.on_first_wait("__coord:queue:jobs:", [&] { ASSERT_TRUE(q.enqueue("payload", "", s.clock_ms).has_value()); });
  auto got = q.dequeue_until(1, s.clock_ms + 10000, s.waiter());
  ASSERT_TRUE(got.has_value()) << got.error().to_string();
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ((*got)[0].payload, "payload");
  EXPECT_EQ(s.waits, 1);
  EXPECT_EQ(s.sleeps, 0);
}

TEST(CoordChangeWait, AnEmptyQueuePopTimesOutWaitingOnChangesOnly) {
  NotifyingStore s;
  QueueManager q(s, "idle", QueueConfig{});
  auto got = q.dequeue_until(1, s.clock_ms + 2000, s.waiter());
  ASSERT_FALSE(got.has_value());
  EXPECT_EQ(got.error().code(), ErrorCode::kTimeout);
  EXPECT_EQ(s.opened, 1);
  // Bounded waits of kMaxCoordBackoffMs each: a message that becomes visible again after a
  // claim expired (no write marks that moment) is still found in time.
  EXPECT_GE(s.waits, static_cast<int>(2000 / limits::kMaxCoordBackoffMs));
  EXPECT_EQ(s.sleeps, 0);
}

TEST(CoordChangeWait, ABarrierWaitIsWokenByTheLastArrival) {
  NotifyingStore s;
  BarrierManager first(s, "phase", 2);
  BarrierManager second(s, "phase", 2);
  auto t = first.enter("a");
  ASSERT_TRUE(t.has_value());
  s.on_first_wait("__coord:barrier:phase", [&] { ASSERT_TRUE(second.enter("b").has_value()); });
  auto w = first.wait(*t, s.clock_ms + 10000, s.waiter());
  ASSERT_TRUE(w.has_value()) << w.error().to_string();
  EXPECT_EQ(s.sleeps, 0);
}

TEST(CoordChangeWait, ASemaphoreAcquireIsWokenByARelease) {
  NotifyingStore s;
  DistributedSemaphore sem(s, "pool", 1);
  auto held = sem.try_acquire("a", 1, kTtlMs);
  ASSERT_TRUE(held.has_value() && held->has_value());
  // The first waiter watches the semaphore's line of keys.
  s.on_first_wait("__coord:semq:pool:", [&] { ASSERT_TRUE(sem.release(**held).has_value()); });
  auto p = sem.try_acquire_until("b", 1, kTtlMs, s.clock_ms + 10000, s.waiter());
  ASSERT_TRUE(p.has_value()) << p.error().to_string();
  EXPECT_EQ(p->holder, "b");
  EXPECT_EQ(s.sleeps, 0);
}

TEST(CoordChangeWait, AWriterIsWokenWhenTheLastReaderReleases) {
  NotifyingStore s;
  DistributedRWLock rw(s, "catalog");
  auto reader = rw.try_acquire("r", RWMode::kRead, kTtlMs);
  ASSERT_TRUE(reader.has_value() && reader->has_value());
  // The writer waits for the deletion of the reader's key, the one just ahead of it.
  s.on_first_wait(fmt::format("__coord:rwq:catalog:{:016x}/r", (*reader)->lease_id),
                  [&] { ASSERT_TRUE(rw.release(**reader).has_value()); });
  auto w = rw.try_acquire_until("w", RWMode::kWrite, kTtlMs, s.clock_ms + 10000, s.waiter());
  ASSERT_TRUE(w.has_value()) << w.error().to_string();
  EXPECT_EQ(s.sleeps, 0);
}

TEST(CoordChangeWait, ACampaignIsWokenWhenTheLeaderResigns) {
  NotifyingStore s;
  LeaderElection a(s, "scheduler", "a", kTtlMs);
  LeaderElection b(s, "scheduler", "b", kTtlMs);
  ASSERT_TRUE(a.campaign("addr-a", s.clock_ms).value());
  s.on_first_wait("__coord:election:scheduler", [&] { ASSERT_TRUE(a.resign().has_value()); });
  auto won = b.campaign_until("addr-b", s.clock_ms + 10000, s.waiter());
  ASSERT_TRUE(won.has_value()) << won.error().to_string();
  EXPECT_TRUE(b.is_leader());
  EXPECT_EQ(s.sleeps, 0);
}

TEST(CoordChangeWait, AnObserverSeesEachLeaderChange) {
  NotifyingStore s;
  LeaderElection a(s, "scheduler", "a", kTtlMs);
  LeaderElection b(s, "scheduler", "b", kTtlMs);
  LeaderElection observer(s, "scheduler", "observer", kTtlMs);
  ASSERT_TRUE(a.campaign("addr-a", s.clock_ms).value());
  auto known = observer.leader();
  ASSERT_TRUE(known.has_value() && known->has_value());
  // Unchanged: the observer waits until its deadline.
  auto none = observer.wait_for_leader_change(*known, s.clock_ms + 1000, s.waiter());
  ASSERT_FALSE(none.has_value());
  EXPECT_EQ(none.error().code(), ErrorCode::kTimeout);
  // a resigns: the observer is told there is no leader; then b takes over.
  s.on_first_wait("__coord:election:scheduler", [&] { ASSERT_TRUE(a.resign().has_value()); });
  auto gone = observer.wait_for_leader_change(*known, s.clock_ms + 10000, s.waiter());
  ASSERT_TRUE(gone.has_value()) << gone.error().to_string();
  EXPECT_FALSE(gone->has_value());
  s.on_first_wait("__coord:election:scheduler", [&] { ASSERT_TRUE(b.campaign("addr-b", s.clock_ms).value()); });
  auto next = observer.wait_for_leader_change(*gone, s.clock_ms + 10000, s.waiter());
  ASSERT_TRUE(next.has_value()) << next.error().to_string();
  ASSERT_TRUE(next->has_value());
  EXPECT_EQ((*next)->candidate, "b");
  EXPECT_EQ((*next)->value, "addr-b");
  EXPECT_GT((*next)->fencing_token, (*known)->fencing_token);
  EXPECT_EQ(s.sleeps, 0);
}

}  // namespace
}  // namespace aspen::coord
