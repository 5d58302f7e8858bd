// src/blob pacing: when a paced transfer's bytes are due, at the rate's edges too.
#include "blob/pacing.h"

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <cstdint>

namespace aspen::blob {
namespace {

TEST(PacingTest, AnUnpacedTransferIsNeverHeldBack) {
  EXPECT_EQ(paced_elapsed_us(0, 0), 0U);
  EXPECT_EQ(paced_elapsed_us(uint64_t{64} << 30, 0), 0U);
}

TEST(PacingTest, BytesAreDueInProportionToTheRate) {
  constexpr uint64_t kMiB = 1 << 20;
  EXPECT_EQ(paced_elapsed_us(0, 64 * kMiB), 0U);
  EXPECT_EQ(paced_elapsed_us(64 * kMiB, 64 * kMiB), 1000000U);
  EXPECT_EQ(paced_elapsed_us(32 * kMiB, 64 * kMiB), 500000U);
  EXPECT_EQ(paced_elapsed_us(uint64_t{1} << 30, 64 * kMiB), 16000000U);  // 1 GiB at 64 MiB/s: 16 s
  EXPECT_EQ(paced_elapsed_us(1, 1), 1000000U);
  EXPECT_EQ(paced_elapsed_us(3, 2), 1500000U);
}

TEST(PacingTest, TheLargestBlobAtTheHighestAndLowestRatesDoesNotOverflow) {
  constexpr uint64_t k64GiB = uint64_t{64} << 30;
  EXPECT_EQ(paced_elapsed_us(k64GiB, kMaxPacedBytesPerS), 62500U);  // 64 GiB at 1 TiB/s: 1/16 s
  EXPECT_EQ(paced_elapsed_us(k64GiB, 1), k64GiB * 1000000);         // 1 byte/s: one second a byte
  EXPECT_EQ(paced_elapsed_us(kMaxPacedBytesPerS - 1, kMaxPacedBytesPerS), 999999U);
}

RC_GTEST_PROP(PacingTest, MoreBytesAreNeverDueEarlierAndTheRateIsKept, ()) {
  const uint64_t rate = *rc::gen::inRange<uint64_t>(1, kMaxPacedBytesPerS + 1);
  const uint64_t a = *rc::gen::inRange<uint64_t>(0, uint64_t{1} << 40);
  const uint64_t b = *rc::gen::inRange<uint64_t>(a, (uint64_t{1} << 40) + 1);
  const uint64_t due_a = paced_elapsed_us(a, rate);
  const uint64_t due_b = paced_elapsed_us(b, rate);
  RC_ASSERT(due_a <= due_b);
  // Never ahead of the rate: by due_a microseconds at most a bytes may have gone, and
  // the rounding down costs less than one microsecond's worth of bytes.
  const long double exact_us = static_cast<long double>(a) * 1e6L / static_cast<long double>(rate);
  RC_ASSERT(static_cast<long double>(due_a) <= exact_us);
  RC_ASSERT(exact_us - static_cast<long double>(due_a) < 1.0L + 1e-6L * exact_us);
}

}  // namespace
}  // namespace aspen::blob
