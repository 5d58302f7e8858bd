// DistributedLock and LeaderElection against DeterministicKeyValueStore: mutual exclusion
// under threads, fencing tokens, TTL takeover, and every user-facing failure.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "coord/election.h"
#include "coord/lock.h"
#include "coord/session.h"
#include "coord_test_util.h"
#include "core/limits.h"

namespace aspen::coord {
namespace {

using kv::DeterministicKeyValueStore;
using testing::kFarDeadline;

TEST(CoordLock, AcquireReleaseAndTokensStrictlyIncrease) {
  DeterministicKeyValueStore s;
  DistributedLock lock(s, "jobs");
  auto a = lock.try_acquire("a", 5000);
  ASSERT_TRUE(a.has_value() && a->has_value());
  EXPECT_FALSE(lock.try_acquire("b", 5000)->has_value());
  EXPECT_EQ((*lock.holder())->holder, "a");
  EXPECT_EQ((*lock.holder())->fencing_token, (*a)->fencing_token);
  ASSERT_TRUE(lock.release(**a).has_value());
  EXPECT_FALSE(lock.holder()->has_value());
  auto b = lock.try_acquire("b", 5000);
  ASSERT_TRUE(b->has_value());
  EXPECT_GT((*b)->fencing_token, (*a)->fencing_token);
}

TEST(CoordLock, InASessionALockCycleIsTwoWritesAndKeepsTheSessionLease) {
  DeterministicKeyValueStore s;
  auto session = Session::open(s, 60000);
  ASSERT_TRUE(session.has_value()) << session.error().to_string();
  DistributedLock lock(s, "jobs", session->get());
  const uint64_t before = s.revision();
  auto a = lock.try_acquire("a", 5000);
  ASSERT_TRUE(a.has_value() && a->has_value());
  EXPECT_EQ((*a)->lease_id, (*session)->lease_id());
  // Two holders of one session queue separately; the second waits.
  EXPECT_FALSE(lock.try_acquire("b", 5000)->has_value());
  ASSERT_TRUE(lock.release(**a).has_value());
  EXPECT_EQ(s.revision() - before, 2u + 2u) << "a: key + delete; b's failed attempt: key + delete";
  EXPECT_EQ(s.list_leases()->size(), 1u) << "the session's lease outlives its locks";
  auto b = lock.try_acquire("b", 5000);
  ASSERT_TRUE(b.has_value() && b->has_value());
  EXPECT_GT((*b)->fencing_token, (*a)->fencing_token);
  ASSERT_TRUE(lock.release(**b).has_value());
  session->reset();  // closing the session revokes its lease
  EXPECT_TRUE(s.list_leases()->empty());
}

TEST(CoordLock, WaitersAreServedInArrivalOrder) {
  DeterministicKeyValueStore s;
  DistributedLock lock(s, "fifo");
  auto held = **lock.try_acquire("first", 60000);
  std::vector<std::string> order;
  std::vector<std::thread> threads;
  for (int i = 1; i <= 3; ++i) {
    threads.emplace_back([&, i] {
      testing::YieldingWaiter w;
      DistributedLock mine(s, "fifo");
      auto h = mine.try_acquire_until("w" + std::to_string(i), 60000, kFarDeadline, w.waiter());
      ASSERT_TRUE(h.has_value()) << h.error().to_string();
      order.push_back(h->holder);
      ASSERT_TRUE(mine.release(*h).has_value());
    });
    // The next waiter starts only once this one is in the queue.
    for (int spins = 0; kv::scan_prefix(s, "__coord:lockq:fifo:")->kvs_size() != i + 1; ++spins) {
      ASSERT_LT(spins, 10'000'000) << "waiter " << i << " never queued";
      std::this_thread::yield();
    }
  }
  ASSERT_TRUE(lock.release(held).has_value());
  for (auto& t : threads) t.join();
  EXPECT_EQ(order, (std::vector<std::string>{"w1", "w2", "w3"}));
}

TEST(CoordLock, ExpiredHolderIsTakenOverAndItsReleaseFails) {
  DeterministicKeyValueStore s;
  DistributedLock lock(s, "jobs");
  auto crashed = **lock.try_acquire("crashed", 2000);
  EXPECT_FALSE(lock.try_acquire("b", 2000)->has_value());
  s.advance_time_ms(2000);  // the crashed holder never renews
  auto b = lock.try_acquire("b", 2000);
  ASSERT_TRUE(b->has_value());
  EXPECT_GT((*b)->fencing_token, crashed.fencing_token);
  auto stale = lock.release(crashed);
  ASSERT_FALSE(stale.has_value());
  EXPECT_EQ(stale.error().code(), ErrorCode::kNotFound);
  auto renew = lock.renew(crashed);
  ASSERT_FALSE(renew.has_value());
  EXPECT_EQ(renew.error().code(), ErrorCode::kNotFound);
  EXPECT_EQ((*lock.holder())->holder, "b");  // the stale release did not free b's lock
}

TEST(CoordLock, RenewKeepsTheLockPastItsTtl) {
  DeterministicKeyValueStore s;
  DistributedLock lock(s, "jobs");
  auto a = **lock.try_acquire("a", 3000);
  for (int i = 0; i < 5; ++i) {
    s.advance_time_ms(2000);
    ASSERT_TRUE(lock.renew(a).has_value());
  }
  EXPECT_EQ((*lock.holder())->holder, "a");
}

TEST(CoordLock, TryAcquireUntilWaitsForExpiryThenTimesOut) {
  DeterministicKeyValueStore s;
  DistributedLock lock(s, "jobs");
  ASSERT_TRUE(lock.try_acquire("crashed", 3000)->has_value());
  // The waiter's sleeps advance the store clock: the crashed holder's lease runs out.
  auto got = lock.try_acquire_until("b", 3000, s.now_ms() + 10000, testing::store_clock_waiter(s));
  ASSERT_TRUE(got.has_value()) << got.error().to_string();
  EXPECT_EQ(got->holder, "b");
  uint64_t virtual_now = 0;
  Waiter frozen{[&] { return virtual_now; }, [&](uint64_t ms) { virtual_now += ms; }, 1};
  auto timed_out = lock.try_acquire_until("c", 3000, 500, frozen);
  ASSERT_FALSE(timed_out.has_value());
  EXPECT_EQ(timed_out.error().code(), ErrorCode::kTimeout);
  // The failed waiter's lease was revoked: only b's lease is left.
  EXPECT_EQ(s.list_leases()->size(), 1u);
}

TEST(CoordLock, RejectsBadArgumentsWithClearErrors) {
  DeterministicKeyValueStore s;
  auto code = [](auto r) { return r.has_value() ? ErrorCode::kOk : r.error().code(); };
  EXPECT_EQ(code(DistributedLock(s, "").try_acquire("a", 5000)), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code(DistributedLock(s, "a:b").try_acquire("a", 5000)), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code(DistributedLock(s, std::string(limits::kMaxCoordNameBytes + 1, 'x')).try_acquire("a", 5000)),
            ErrorCode::kInvalidArgument);
  DistributedLock lock(s, "ok");
  EXPECT_EQ(code(lock.try_acquire("", 5000)), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code(lock.try_acquire("bad holder", 5000)), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code(lock.try_acquire("a", limits::kMinLeaseTtlMs - 1)), ErrorCode::kInvalidArgument);
  auto e = lock.try_acquire("a", 5000 * 0);
  ASSERT_FALSE(e.has_value());
  EXPECT_NE(e.error().message().find("ttl"), std::string::npos) << e.error().message();
  ASSERT_TRUE(lock.try_acquire("a", 5000)->has_value());
  auto twice = lock.try_acquire("a", 5000);
  ASSERT_FALSE(twice.has_value());
  EXPECT_EQ(twice.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(twice.error().message().find("already held"), std::string::npos);
}

TEST(CoordLock, MutualExclusionAndFencingUnderSixteenThreads) {
  DeterministicKeyValueStore s;
  struct Interval {
    uint64_t enter, exit, token;
  };
  std::mutex mu;
  std::vector<Interval> intervals;
  std::atomic<uint64_t> clock{0};
  std::atomic<int> inside{0};
  std::atomic<bool> violated{false};
  constexpr int kThreads = 16, kRounds = 20;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      DistributedLock lock(s, "shared");
      testing::YieldingWaiter w;
      for (int i = 0; i < kRounds; ++i) {
        auto h = lock.try_acquire_until("t" + std::to_string(t), 60000, kFarDeadline, w.waiter());
        ASSERT_TRUE(h.has_value()) << h.error().to_string();
        uint64_t enter = clock.fetch_add(1);
        if (inside.fetch_add(1) != 0) violated = true;
        std::this_thread::yield();
        inside.fetch_sub(1);
        uint64_t exit = clock.fetch_add(1);
        {
          std::lock_guard g(mu);
          intervals.push_back({enter, exit, h->fencing_token});
        }
        ASSERT_TRUE(lock.release(*h).has_value());
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_FALSE(violated);
  ASSERT_EQ(intervals.size(), size_t{kThreads * kRounds});
  std::sort(intervals.begin(), intervals.end(), [](auto& a, auto& b) { return a.enter < b.enter; });
  for (size_t i = 1; i < intervals.size(); ++i) {
    EXPECT_LT(intervals[i - 1].exit, intervals[i].enter) << "holder intervals overlap";
    EXPECT_LT(intervals[i - 1].token, intervals[i].token) << "fencing token did not increase";
  }
}

TEST(CoordElection, CampaignObserveResignAndHigherTokenNextTerm) {
  DeterministicKeyValueStore s;
  LeaderElection a(s, "sched", "a", 3000), b(s, "sched", "b", 3000);
  EXPECT_TRUE(*a.campaign("addr-a", 0));
  EXPECT_FALSE(*b.campaign("addr-b", 0));
  auto leader = *b.leader();
  ASSERT_TRUE(leader.has_value());
  EXPECT_EQ(leader->candidate, "a");
  EXPECT_EQ(leader->value, "addr-a");
  EXPECT_EQ(leader->fencing_token, a.fencing_token());
  uint64_t first = a.fencing_token();
  ASSERT_TRUE(a.resign().has_value());
  EXPECT_FALSE(a.is_leader());
  EXPECT_TRUE(*b.campaign("addr-b", 0));
  EXPECT_GT(b.fencing_token(), first);
}

TEST(CoordElection, LosingTheLeaseCallsTheCallbackOnce) {
  DeterministicKeyValueStore s;
  LeaderElection a(s, "sched", "a", 3000), b(s, "sched", "b", 3000);
  int lost = 0;
  uint64_t lost_token = 0;
  a.on_leadership_lost([&](const LeaderInfo& was) {
    ++lost;
    lost_token = was.fencing_token;
  });
  ASSERT_TRUE(*a.campaign("", s.now_ms()));
  uint64_t token = a.fencing_token();
  // tick() renews when a third of the TTL passed: leadership survives many TTLs.
  for (int i = 0; i < 10; ++i) {
    s.advance_time_ms(1000);
    EXPECT_TRUE(*a.tick(s.now_ms()));
  }
  s.advance_time_ms(3000);  // a partition: no renewal in time
  EXPECT_TRUE(*b.campaign("", s.now_ms()));
  EXPECT_FALSE(*a.tick(s.now_ms()));
  EXPECT_FALSE(*a.tick(s.now_ms()));
  EXPECT_EQ(lost, 1);
  EXPECT_EQ(lost_token, token);
  EXPECT_FALSE(a.is_leader());
  EXPECT_GT(b.fencing_token(), token);
}

TEST(CoordElection, PureRenewalSchedule) {
  EXPECT_FALSE(is_renewal_due(1000, 3000, 1999));
  EXPECT_TRUE(is_renewal_due(1000, 3000, 2000));
}

TEST(CoordElection, RejectsBadArguments) {
  DeterministicKeyValueStore s;
  EXPECT_EQ(LeaderElection(s, "e", "", 3000).campaign("", 0).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(LeaderElection(s, "e", "a", 10).campaign("", 0).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(LeaderElection(s, "e", "a", 3000).campaign(std::string(limits::kMaxCoordRecordBytes, 'v'), 0).error().code(),
            ErrorCode::kValueTooLarge);
  uint64_t now = 0;
  Waiter w{[&] { return now; }, [&](uint64_t ms) { now += ms; }, 1};
  LeaderElection a(s, "e", "a", 3000), b(s, "e", "b", 3000);
  ASSERT_TRUE(a.campaign_until("", 100, w).has_value());
  EXPECT_EQ(b.campaign_until("", 100, w).error().code(), ErrorCode::kTimeout);
}

}  // namespace
}  // namespace aspen::coord
