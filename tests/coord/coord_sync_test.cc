// DistributedSemaphore, DistributedRWLock, BarrierManager and ServiceRegistry.
#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include <fmt/format.h>

#include "coord/barrier.h"
#include "coord/owned_key.h"
#include "coord/rwlock.h"
#include "coord/semaphore.h"
#include "coord/service_registry.h"
#include "coord_test_util.h"
#include "core/limits.h"

namespace aspen::coord {
namespace {

using kv::DeterministicKeyValueStore;
using testing::kFarDeadline;

TEST(CoordSemaphore, BoundedPermitsAndTtlReturnsCrashedHoldersPermits) {
  DeterministicKeyValueStore s;
  DistributedSemaphore sem(s, "pool", 3);
  auto a = **sem.try_acquire("a", 2, 2000);
  EXPECT_FALSE(sem.try_acquire("b", 2, 2000)->has_value());
  auto b = **sem.try_acquire("b", 1, 2000);
  EXPECT_EQ(*sem.available(), 0u);
  ASSERT_TRUE(sem.release(b).has_value());
  EXPECT_EQ(*sem.available(), 1u);
  s.advance_time_ms(2000);  // a crashed
  EXPECT_EQ(*sem.available(), 3u);
  EXPECT_TRUE(sem.try_acquire("c", 3, 2000)->has_value());
  EXPECT_EQ(sem.release(a).error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(sem.renew(a).error().code(), ErrorCode::kNotFound);
}

TEST(CoordSemaphore, RejectsBadArguments) {
  DeterministicKeyValueStore s;
  auto code = [](auto r) { return r.has_value() ? ErrorCode::kOk : r.error().code(); };
  EXPECT_EQ(code(DistributedSemaphore(s, "p", 0).try_acquire("a", 1, 2000)), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code(DistributedSemaphore(s, "p", limits::kMaxSemaphorePermits + 1).try_acquire("a", 1, 2000)),
            ErrorCode::kInvalidArgument);
  DistributedSemaphore sem(s, "p", 2);
  EXPECT_EQ(code(sem.try_acquire("a", 3, 2000)), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code(sem.try_acquire("a", 0, 2000)), ErrorCode::kInvalidArgument);
  ASSERT_TRUE(sem.try_acquire("a", 1, 2000)->has_value());
  EXPECT_EQ(code(sem.try_acquire("a", 1, 2000)), ErrorCode::kInvalidArgument);  // already holds
  EXPECT_EQ(code(DistributedSemaphore(s, "p", 5).try_acquire("b", 1, 2000)), ErrorCode::kInvalidArgument);
}

// The size is the oldest waiter's: a client that gives another size is refused, and while
// its key is in line it does not make the waiters ahead of it fail.
TEST(CoordSemaphore, AWaiterWithAnotherSizeDoesNotDisturbTheLine) {
  DeterministicKeyValueStore s;
  DistributedSemaphore sem(s, "p", 1);
  auto h = sem.try_acquire("h", 1, 60000);
  ASSERT_TRUE(h.has_value() && h->has_value());
  uint64_t now = 0;
  int polls = 0;
  Waiter w{[&] { return now; },
           [&](uint64_t ms) {
             now += ms;
             if (++polls == 1) {
               // A misconfigured waiter joins behind 'w' (as if it were between its write and
               // its first read), then the holder releases.
               auto lease = kv::lease_grant(s, 60000);
               ASSERT_TRUE(lease.has_value());
               const std::string key = fmt::format("__coord:semq:p:{:016x}/odd", lease->id());
               ASSERT_TRUE(kv::put(s, key, encode_owner({"odd", "1/5", lease->id(), 0}), lease->id()).has_value());
               ASSERT_TRUE(sem.release(**h).has_value());
             }
           },
           3};
  auto got = sem.try_acquire_until("w", 1, 60000, 10000, w);
  ASSERT_TRUE(got.has_value()) << got.error().to_string();
  auto odd = DistributedSemaphore(s, "p", 5).try_acquire("odd2", 1, 60000);
  ASSERT_FALSE(odd.has_value());
  EXPECT_EQ(odd.error().code(), ErrorCode::kInvalidArgument);
}

// The line (holders and waiters together) is bounded: one more is refused, naming the limit;
// a holder that goes makes room.
TEST(CoordSemaphore, HolderLimitIsEnforced) {
  DeterministicKeyValueStore s;
  constexpr size_t kMax = limits::kMaxSemaphoreHolders + limits::kMaxSemaphoreWaiters;
  DistributedSemaphore sem(s, "big", kMax + 10);
  std::vector<SemaphorePermit> held;
  for (size_t i = 0; i < kMax; ++i) {
    auto p = sem.try_acquire("h" + std::to_string(i), 1, 60000);
    ASSERT_TRUE(p.has_value() && p->has_value()) << i;
    held.push_back(**p);
  }
  auto r = sem.try_acquire("new", 1, 60000);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(r.error().message().find("waiters"), std::string::npos) << r.error().message();
  ASSERT_TRUE(sem.release(held[0]).has_value());
  auto p = sem.try_acquire("new", 1, 60000);
  ASSERT_TRUE(p.has_value()) << p.error().to_string();
  EXPECT_TRUE(p->has_value());
}

// Waiters are granted in arrival order: a small request that would fit does not overtake a
// large one waiting ahead of it (which would otherwise starve), and one-shot try_acquire never
// overtakes either.
TEST(CoordSemaphore, WaitersAreGrantedInArrivalOrder) {
  DeterministicKeyValueStore s;
  DistributedSemaphore sem(s, "pool", 3);
  auto a = sem.try_acquire("a", 2, 60000);
  ASSERT_TRUE(a.has_value() && a->has_value());
  int polls = 0;
  bool was_small_refused = false;
  uint64_t now = 0;
  Waiter w{[&] { return now; },
           [&](uint64_t ms) {
             now += ms;
             if (++polls == 1) {
               // 'big' waits for 2 permits; one is free, but 'small' came later.
               auto small = sem.try_acquire("small", 1, 60000);
               was_small_refused = small.has_value() && !small->has_value();
               EXPECT_EQ(sem.state()->waiting.size(), 1u);
               ASSERT_TRUE(sem.release(**a).has_value());
             }
           },
           3};
  auto big = sem.try_acquire_until("big", 2, 60000, 10000, w);
  ASSERT_TRUE(big.has_value()) << big.error().to_string();
  EXPECT_TRUE(was_small_refused);
  auto small = sem.try_acquire("small", 1, 60000);
  ASSERT_TRUE(small.has_value() && small->has_value()) << "2 + 1 of 3";
  EXPECT_EQ(sem.available().value(), 0u);
  auto st = sem.state();
  ASSERT_EQ(st->holders.size(), 2u);
  EXPECT_EQ(st->holders[0].id, "big");
  EXPECT_EQ(semaphore_in_use(*st), 3u);
}

// A state record of the semaphore as it was before the waiting line of keys does not block
// the new one (its holders' leases are long gone after an upgrade).
TEST(CoordSemaphore, ARecordWithoutAWaitingLineStillReads) {
  DeterministicKeyValueStore s;
  RecordWriter w('M');
  w.u64(4).u64(1).str("old").u64(1).u64(77);
  ASSERT_TRUE(kv::put(s, "__coord:sem:legacy", w.finish()).has_value());
  DistributedSemaphore sem(s, "legacy", 4);
  EXPECT_EQ(sem.available().value(), 4u);
  auto p = sem.try_acquire("new", 4, 2000);
  ASSERT_TRUE(p.has_value()) << p.error().to_string();
  EXPECT_TRUE(p->has_value());
}

TEST(CoordSemaphore, NeverExceedsPermitsUnderSixteenThreads) {
  DeterministicKeyValueStore s;
  constexpr uint64_t kPermits = 3;
  std::atomic<uint64_t> in_use{0};
  std::atomic<uint64_t> max_seen{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&, t] {
      DistributedSemaphore sem(s, "pool", kPermits);
      testing::YieldingWaiter w;
      for (int i = 0; i < 10; ++i) {
        auto p = sem.try_acquire_until("t" + std::to_string(t), 1, 60000, kFarDeadline, w.waiter());
        ASSERT_TRUE(p.has_value()) << p.error().to_string();
        uint64_t now_in = in_use.fetch_add(1) + 1;
        uint64_t prev = max_seen.load();
        while (now_in > prev && !max_seen.compare_exchange_weak(prev, now_in)) {
        }
        std::this_thread::yield();
        in_use.fetch_sub(1);
        ASSERT_TRUE(sem.release(*p).has_value());
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_LE(max_seen.load(), kPermits);
  EXPECT_GE(max_seen.load(), 1u);
}

TEST(CoordRWLock, ManyReadersOrOneWriter) {
  DeterministicKeyValueStore s;
  DistributedRWLock rw(s, "cat");
  auto r1 = **rw.try_acquire("r1", RWMode::kRead, 2000);
  auto r2 = **rw.try_acquire("r2", RWMode::kRead, 2000);
  EXPECT_FALSE(rw.try_acquire("w", RWMode::kWrite, 2000)->has_value());
  ASSERT_TRUE(rw.release(r1).has_value());
  ASSERT_TRUE(rw.release(r2).has_value());
  auto w = **rw.try_acquire("w", RWMode::kWrite, 2000);
  EXPECT_FALSE(rw.try_acquire("r3", RWMode::kRead, 2000)->has_value());
  ASSERT_TRUE(rw.release(w).has_value());
  auto w2 = **rw.try_acquire("w2", RWMode::kWrite, 2000);
  EXPECT_GT(w2.fencing_token, w.fencing_token);
}

TEST(CoordRWLock, WaitingWriterBlocksNewReaders) {
  DeterministicKeyValueStore s;
  DistributedRWLock rw(s, "cat");
  auto r1 = **rw.try_acquire("r1", RWMode::kRead, 60000);
  uint64_t now = 0;
  int polls = 0;
  bool was_reader_refused = false;
  Waiter w{[&] { return now; },
           [&](uint64_t ms) {
             now += ms;
             if (++polls == 1) {
               // The writer is queued now: a new reader must wait behind it.
               was_reader_refused = !rw.try_acquire("r2", RWMode::kRead, 60000)->has_value();
               ASSERT_TRUE(rw.release(r1).has_value());
             }
           },
           3};
  auto writer = rw.try_acquire_until("w", RWMode::kWrite, 60000, 10000, w);
  ASSERT_TRUE(writer.has_value()) << writer.error().to_string();
  EXPECT_TRUE(was_reader_refused);
  ASSERT_TRUE(rw.release(*writer).has_value());
  EXPECT_TRUE(rw.try_acquire("r2", RWMode::kRead, 60000)->has_value());
}

TEST(CoordRWLock, TimedOutWriterLeavesTheQueueAndCrashedReaderExpires) {
  DeterministicKeyValueStore s;
  DistributedRWLock rw(s, "cat");
  ASSERT_TRUE(rw.try_acquire("reader", RWMode::kRead, 2000)->has_value());
  uint64_t now = 0;
  Waiter w{[&] { return now; }, [&](uint64_t ms) { now += ms; }, 3};
  EXPECT_EQ(rw.try_acquire_until("w", RWMode::kWrite, 2000, 50, w).error().code(), ErrorCode::kTimeout);
  EXPECT_TRUE(rw.state()->waiting_writers.empty());
  EXPECT_TRUE(rw.try_acquire("r2", RWMode::kRead, 2000)->has_value());  // not blocked by a gone writer
  s.advance_time_ms(2000);  // both readers crash
  EXPECT_TRUE(rw.try_acquire("w", RWMode::kWrite, 2000)->has_value());
}

TEST(CoordRWLock, WritersExcludeEveryoneUnderThreads) {
  DeterministicKeyValueStore s;
  std::atomic<int> readers{0}, writers{0};
  std::atomic<bool> violated{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 12; ++t) {
    threads.emplace_back([&, t] {
      DistributedRWLock rw(s, "shared");
      testing::YieldingWaiter w;
      const RWMode mode = t % 3 == 0 ? RWMode::kWrite : RWMode::kRead;
      for (int i = 0; i < 10; ++i) {
        auto h = rw.try_acquire_until("t" + std::to_string(t), mode, 60000, kFarDeadline, w.waiter());
        ASSERT_TRUE(h.has_value()) << h.error().to_string();
        if (mode == RWMode::kWrite) {
          if (writers.fetch_add(1) != 0 || readers.load() != 0) violated = true;
          std::this_thread::yield();
          writers.fetch_sub(1);
        } else {
          readers.fetch_add(1);
          if (writers.load() != 0) violated = true;
          std::this_thread::yield();
          readers.fetch_sub(1);
        }
        ASSERT_TRUE(rw.release(*h).has_value());
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_FALSE(violated);
}

TEST(CoordBarrier, ReleasesAllTogetherThenResetsAfterLeave) {
  DeterministicKeyValueStore s;
  BarrierManager b(s, "stage", 3);
  auto t1 = *b.enter("a");
  auto t2 = *b.enter("b");
  EXPECT_FALSE(*b.is_released(t1));
  EXPECT_EQ(b.state()->members.size(), 2u);
  auto t3 = *b.enter("c");
  EXPECT_TRUE(t3.did_release);
  EXPECT_TRUE(*b.is_released(t1) && *b.is_released(t2));
  EXPECT_EQ(b.enter("late").error().code(), ErrorCode::kUnavailable);
  for (auto p : {"a", "b", "c"}) ASSERT_TRUE(b.leave(p).has_value());
  EXPECT_EQ(b.state()->generation, 2u);
  EXPECT_FALSE(b.enter("late")->did_release);
  EXPECT_EQ(b.leave("nobody").error().code(), ErrorCode::kNotFound);
}

TEST(CoordBarrier, WithdrawBeforeReleaseAndWaitTimesOut) {
  DeterministicKeyValueStore s;
  BarrierManager b(s, "stage", 2);
  auto t = *b.enter("a");
  ASSERT_TRUE(b.leave("a").has_value());
  EXPECT_TRUE(b.state()->members.empty());
  uint64_t now = 0;
  Waiter w{[&] { return now; }, [&](uint64_t ms) { now += ms; }, 1};
  EXPECT_EQ(b.wait(t, 100, w).error().code(), ErrorCode::kTimeout);
  EXPECT_EQ(BarrierManager(s, "stage", 3).enter("x").error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(BarrierManager(s, "z", 0).enter("x").error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(BarrierManager(s, "z", limits::kMaxBarrierParties + 1).enter("x").error().code(),
            ErrorCode::kInvalidArgument);
}

TEST(CoordBarrier, ReleasesExactlyOnceUnderSixteenThreads) {
  DeterministicKeyValueStore s;
  constexpr int kParties = 16;
  std::atomic<int> releases{0}, passed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kParties; ++t) {
    threads.emplace_back([&, t] {
      BarrierManager b(s, "start", kParties);
      testing::YieldingWaiter w;
      auto ticket = b.enter("p" + std::to_string(t));
      ASSERT_TRUE(ticket.has_value()) << ticket.error().to_string();
      if (ticket->did_release) releases++;
      ASSERT_TRUE(b.wait(*ticket, kFarDeadline, w.waiter()).has_value());
      passed++;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(releases, 1);
  EXPECT_EQ(passed, kParties);
  EXPECT_EQ(BarrierManager(s, "start", kParties).state()->generation, 1u);
}

TEST(CoordServiceRegistry, RegisterDiscoverHeartbeatExpireDeregister) {
  DeterministicKeyValueStore s;
  ServiceRegistry reg(s);
  auto a = *reg.register_instance("api", "api-1", "10.0.0.1:80", {{"zone", "a"}}, 2000);
  auto b = *reg.register_instance("api", "api-2", "10.0.0.2:80", {}, 2000);
  ASSERT_TRUE(reg.register_instance("db", "db-1", "10.0.0.3:5432", {}, 2000).has_value());
  auto found = *reg.discover("api");
  ASSERT_EQ(found.size(), 2u);
  EXPECT_EQ(found[0].instance_id, "api-1");
  EXPECT_EQ(found[0].address, "10.0.0.1:80");
  EXPECT_EQ(found[0].metadata.at("zone"), "a");
  s.advance_time_ms(1500);
  ASSERT_TRUE(reg.heartbeat(a).has_value());
  s.advance_time_ms(1000);  // b missed its heartbeat
  found = *reg.discover("api");
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].instance_id, "api-1");
  EXPECT_EQ(reg.heartbeat(b).error().code(), ErrorCode::kNotFound);
  ASSERT_TRUE(reg.deregister(a).has_value());
  EXPECT_TRUE(reg.discover("api")->empty());
  EXPECT_EQ(reg.deregister(a).error().code(), ErrorCode::kNotFound);
}

TEST(CoordServiceRegistry, RejectsBadArguments) {
  DeterministicKeyValueStore s;
  ServiceRegistry reg(s);
  auto code = [](auto r) { return r.has_value() ? ErrorCode::kOk : r.error().code(); };
  EXPECT_EQ(code(reg.register_instance("", "i", "a", {}, 2000)), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code(reg.register_instance("s", "i i", "a", {}, 2000)), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code(reg.register_instance("s", "i", std::string(limits::kMaxServiceAddressBytes + 1, 'a'), {}, 2000)),
            ErrorCode::kInvalidArgument);
  std::map<std::string, std::string> many;
  for (size_t i = 0; i <= limits::kMaxServiceMetadataEntries; ++i) many["k" + std::to_string(i)] = "v";
  EXPECT_EQ(code(reg.register_instance("s", "i", "a", many, 2000)), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code(reg.register_instance("s", "i", "a", {{"k", std::string(limits::kMaxCoordRecordBytes, 'v')}}, 2000)),
            ErrorCode::kValueTooLarge);
  EXPECT_EQ(code(reg.register_instance("s", "i", "a", {}, 1)), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(s.list_leases()->empty());  // refused registrations leave no lease behind
}

}  // namespace
}  // namespace aspen::coord
