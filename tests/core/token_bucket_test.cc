// TokenBucket (core/token_bucket.h): a burst, then the rate; time only as an argument.
#include "core/token_bucket.h"

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

namespace aspen {
namespace {

TEST(TokenBucket, BurstThenRefusesUntilRefilled) {
  TokenBucket b(1000, 5, 0);  // 1000/s = one token per ms
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(b.try_take(0));
  EXPECT_FALSE(b.try_take(0));
  EXPECT_FALSE(b.try_take(999));  // 0.999 of a token
  EXPECT_TRUE(b.try_take(1000));
  EXPECT_FALSE(b.try_take(1000));
}

TEST(TokenBucket, RefillStopsAtTheBurst) {
  TokenBucket b(1000, 5, 0);
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(b.try_take(0));
  EXPECT_EQ(b.available(uint64_t{3600} * 1000 * 1000 * 24 * 365), 5u);  // a year idle: still 5
}

TEST(TokenBucket, ZeroRateDisablesTheLimit) {
  TokenBucket b(0, 0, 0);
  for (int i = 0; i < 100000; ++i) EXPECT_TRUE(b.try_take(0));
}

TEST(TokenBucket, ClockGoingBackwardsAddsNothing) {
  TokenBucket b(1000, 1, 5000);
  EXPECT_TRUE(b.try_take(5000));
  EXPECT_FALSE(b.try_take(1000));
  EXPECT_FALSE(b.try_take(5999));
  EXPECT_TRUE(b.try_take(6000));
}

// Over any span, no more than burst + rate x span requests pass, and a client that keeps
// to the rate is never refused.
RC_GTEST_PROP(TokenBucket, AdmitsAtMostBurstPlusRateTimesElapsed, ()) {
  const uint64_t rate = *rc::gen::inRange<uint64_t>(1, 100000);
  const uint64_t burst = *rc::gen::inRange<uint64_t>(1, 1000);
  TokenBucket b(rate, burst, 0);
  uint64_t now = 0, taken = 0;
  const auto steps = *rc::gen::inRange(1, 500);
  for (int i = 0; i < steps; ++i) {
    now += *rc::gen::inRange<uint64_t>(0, 20000);
    if (b.try_take(now)) ++taken;
    RC_ASSERT(taken <= burst + rate * now / 1'000'000);
  }
  TokenBucket paced(rate, burst, 0);
  const uint64_t interval_us = (1'000'000 + rate - 1) / rate;
  for (int i = 0; i < 200; ++i) RC_ASSERT(paced.try_take(uint64_t(i) * interval_us));
}

}  // namespace
}  // namespace aspen
