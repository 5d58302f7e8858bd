// AtomicCounter, BufferedCounter, SequenceGenerator and DistributedRateLimiter: exactness
// under contention, the pure decisions (with rapidcheck), and the failure paths.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "coord/buffered_counter.h"
#include "coord/counter.h"
#include "coord/rate_limiter.h"
#include "coord/sequence.h"
#include "core/limits.h"
#include "kv/deterministic_store.h"

namespace aspen::coord {
namespace {

using kv::DeterministicKeyValueStore;

TEST(CoordCounter, GetAddIncrementDecrementCompareAndSet) {
  DeterministicKeyValueStore s;
  AtomicCounter c(s, "hits");
  EXPECT_EQ(*c.get(), 0);
  EXPECT_EQ(*c.increment(), 1);
  EXPECT_EQ(*c.add(41), 42);
  EXPECT_EQ(*c.decrement(), 41);
  EXPECT_FALSE(*c.compare_and_set(40, 0));
  EXPECT_TRUE(*c.compare_and_set(41, -5));
  EXPECT_EQ(*c.get(), -5);
  AtomicCounter fresh(s, "fresh");
  EXPECT_TRUE(*fresh.compare_and_set(0, 9));  // absent counts as 0
  EXPECT_EQ(*fresh.get(), 9);
}

TEST(CoordCounter, OverflowAndCorruptValuesAreRefused) {
  DeterministicKeyValueStore s;
  AtomicCounter c(s, "big");
  ASSERT_TRUE(c.add(INT64_MAX).has_value());
  auto over = c.increment();
  ASSERT_FALSE(over.has_value());
  EXPECT_EQ(over.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(*c.get(), INT64_MAX);
  ASSERT_TRUE(kv::put(s, "__coord:counter:junk", "12abc").has_value());
  EXPECT_EQ(AtomicCounter(s, "junk").get().error().code(), ErrorCode::kCorruption);
  EXPECT_EQ(AtomicCounter(s, "bad name").get().error().code(), ErrorCode::kInvalidArgument);
}

TEST(CoordCounter, ExactUnderSixteenThreads) {
  DeterministicKeyValueStore s;
  constexpr int kThreads = 16, kOps = 200;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      AtomicCounter c(s, "shared");
      for (int i = 0; i < kOps; ++i) {
        auto r = (t % 4 == 0) ? c.add(3) : c.increment();
        if (!r) failures++;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(*AtomicCounter(s, "shared").get(), 4 * kOps * 3 + 12 * kOps);
}

TEST(CoordBufferedCounter, BuffersUntilFlushAndLosesNothingAcrossThreads) {
  DeterministicKeyValueStore s;
  BufferedCounter b(s, "views", {.flush_interval_ms = 1000, .flush_threshold = 100});
  ASSERT_TRUE(b.add(5).has_value());
  EXPECT_EQ(*AtomicCounter(s, "views").get(), 0);  // nothing written yet
  EXPECT_FALSE(b.is_flush_due(500));
  EXPECT_TRUE(b.is_flush_due(1000));
  EXPECT_EQ(*b.flush(1000), 5);
  EXPECT_EQ(b.pending(), 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 500; ++i) {
        ASSERT_TRUE(b.add(1).has_value());
        if (i % 50 == 0) {
          ASSERT_TRUE(b.flush(2000).has_value());
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_TRUE(b.flush(3000).has_value());
  EXPECT_EQ(*AtomicCounter(s, "views").get(), 5 + 8 * 500);
}

TEST(CoordBufferedCounter, PureFlushPolicy) {
  BufferedCounterConfig cfg{.flush_interval_ms = 100, .flush_threshold = 10};
  EXPECT_FALSE(is_flush_due(0, 0, 1000, cfg));   // nothing pending
  EXPECT_TRUE(is_flush_due(-10, 0, 1, cfg));     // magnitude counts
  EXPECT_FALSE(is_flush_due(9, 0, 99, cfg));
  EXPECT_TRUE(is_flush_due(9, 0, 100, cfg));
}

TEST(CoordSequence, IdsAreUniqueAndIncreasingPerGeneratorAcrossThreads) {
  DeterministicKeyValueStore s;
  std::mutex mu;
  std::set<uint64_t> all;
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      SequenceGenerator gen(s, "orders", 7);
      uint64_t last = 0;
      for (int i = 0; i < 300; ++i) {
        auto id = gen.next();
        ASSERT_TRUE(id.has_value());
        ASSERT_GT(*id, last);
        last = *id;
        std::lock_guard g(mu);
        ASSERT_TRUE(all.insert(*id).second) << "duplicate id " << *id;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(all.size(), 8u * 300);
}

TEST(CoordSequence, RejectsBadBlockSizes) {
  DeterministicKeyValueStore s;
  EXPECT_EQ(SequenceGenerator(s, "x", 0).next().error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(SequenceGenerator(s, "x", limits::kMaxSequenceBlockSize + 1).next().error().code(),
            ErrorCode::kInvalidArgument);
  auto b = SequenceGenerator(s, "x", 1).reserve(10);
  EXPECT_EQ(b->first, 1u);
  EXPECT_EQ(b->end, 11u);
}

TEST(CoordRateLimiter, TokenBucketRefillsWithTime) {
  DeterministicKeyValueStore s;
  DistributedRateLimiter rl(s, "api", {.capacity = 10, .refill_per_second = 2});
  EXPECT_TRUE(rl.try_acquire(10, 0)->is_allowed);
  auto denied = *rl.try_acquire(1, 0);
  EXPECT_FALSE(denied.is_allowed);
  EXPECT_EQ(denied.retry_after_ms, 500u);
  EXPECT_FALSE(rl.try_acquire(1, 499)->is_allowed);
  EXPECT_TRUE(rl.try_acquire(1, 500)->is_allowed);
  EXPECT_TRUE(rl.try_acquire(10, 100000)->is_allowed);  // refill caps at capacity
  EXPECT_FALSE(rl.try_acquire(1, 100000)->is_allowed);
}

TEST(CoordRateLimiter, NeverGrantsMoreThanCapacityPlusRefillAcrossThreads) {
  DeterministicKeyValueStore s;
  std::atomic<uint64_t> granted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      DistributedRateLimiter rl(s, "shared", {.capacity = 50, .refill_per_second = 1000});
      for (uint64_t now = 0; now < 100; ++now) {
        auto d = rl.try_acquire(1, now);
        ASSERT_TRUE(d.has_value());
        if (d->is_allowed) granted++;
      }
    });
  }
  for (auto& th : threads) th.join();
  // Clients' clocks interleave, but a bucket never refills for time it has already seen.
  EXPECT_LE(granted.load(), 50u + 99u);
  EXPECT_GE(granted.load(), 50u);
}

TEST(CoordRateLimiter, RejectsBadConfigAndRequests) {
  DeterministicKeyValueStore s;
  EXPECT_EQ(DistributedRateLimiter(s, "a", {.capacity = 0, .refill_per_second = 1}).try_acquire(1, 0).error().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(DistributedRateLimiter(s, "a", {.capacity = 1, .refill_per_second = 0}).try_acquire(1, 0).error().code(),
            ErrorCode::kInvalidArgument);
  DistributedRateLimiter rl(s, "a", {.capacity = 5, .refill_per_second = 1});
  EXPECT_EQ(rl.try_acquire(0, 0).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(rl.try_acquire(6, 0).error().code(), ErrorCode::kInvalidArgument);
}

RC_GTEST_PROP(CoordRateLimiterProperty, TokensNeverExceedCapacityAndGrantsMatchArithmetic, ()) {
  RateLimitConfig cfg{*rc::gen::inRange<uint64_t>(1, 1000), *rc::gen::inRange<uint64_t>(1, 10000)};
  std::optional<BucketState> state;
  uint64_t now = *rc::gen::inRange<uint64_t>(0, 1'000'000);
  const uint64_t start = now;
  uint64_t granted = 0;
  const auto steps = *rc::gen::container<std::vector<std::pair<uint64_t, uint64_t>>>(
      rc::gen::pair(rc::gen::inRange<uint64_t>(0, 5000), rc::gen::inRange<uint64_t>(1, 1001)));
  for (auto [dt, want] : steps) {
    now += dt;
    uint64_t n = std::min(want, cfg.capacity);
    auto [d, next] = decide_tokens(state, cfg, n, now);
    RC_ASSERT(next.milli_tokens <= cfg.capacity * 1000);
    RC_ASSERT(next.last_refill_ms == now);
    if (d.is_allowed) granted += n;
    else RC_ASSERT(d.retry_after_ms > 0);
    state = next;
  }
  // Never more than a full bucket plus what the elapsed time refilled.
  RC_ASSERT(granted * 1000 <= cfg.capacity * 1000 + (now - start) * cfg.refill_per_second);
}

}  // namespace
}  // namespace aspen::coord
