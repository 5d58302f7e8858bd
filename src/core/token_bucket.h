// A token bucket: at most `rate_per_s` events per second on average, and bursts of up to
// `burst` events. Pure: the caller passes the time (any monotonic clock, in microseconds),
// so it is unit-tested without a clock and replays exactly.
//
// The level is kept in millionths of a token, so refills are exact integers at any rate:
// one microsecond adds `rate_per_s` millionths.
#pragma once

#include <algorithm>
#include <cstdint>

#include "core/assert.h"

namespace aspen {

class TokenBucket {
 public:
  // rate_per_s 0 disables the limit (every take succeeds). A bucket starts full.
  TokenBucket(uint64_t rate_per_s, uint64_t burst, uint64_t now_us)
      : rate_per_s_(rate_per_s), capacity_(burst * kUnit), level_(burst * kUnit), last_us_(now_us) {
    ASPEN_ASSERT(rate_per_s == 0 || burst >= 1);
    ASPEN_ASSERT(burst <= kMaxBurst && rate_per_s <= kMaxRatePerSecond);
  }

  // Takes one token if there is one. A clock that went backwards adds nothing.
  bool try_take(uint64_t now_us) {
    if (rate_per_s_ == 0) return true;
    refill(now_us);
    if (level_ < kUnit) return false;
    level_ -= kUnit;
    return true;
  }

  // Whole tokens available now (for tests and metrics).
  uint64_t available(uint64_t now_us) {
    refill(now_us);
    return level_ / kUnit;
  }

  static constexpr uint64_t kMaxBurst = uint64_t{1} << 30;
  static constexpr uint64_t kMaxRatePerSecond = uint64_t{1} << 30;

 private:
  static constexpr uint64_t kUnit = 1'000'000;  // millionths of a token per token
  // kMaxBurst tokens in millionths, plus one refill step, stays far from overflow.
  static_assert(kMaxBurst * kUnit < (uint64_t{1} << 62));

  void refill(uint64_t now_us) {
    if (rate_per_s_ == 0 || now_us <= last_us_) return;
    // Past the time that fills the bucket from empty, more time changes nothing; capping
    // it keeps the product below from overflowing after a long idle period.
    const uint64_t elapsed_us = std::min(now_us - last_us_, capacity_ / rate_per_s_ + 1);
    level_ = std::min(capacity_, level_ + elapsed_us * rate_per_s_);
    last_us_ = now_us;
  }

  uint64_t rate_per_s_;
  uint64_t capacity_;  // millionths
  uint64_t level_;     // millionths
  uint64_t last_us_;
};

}  // namespace aspen
