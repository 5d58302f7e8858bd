// DistributedRateLimiter: a token bucket shared by every client of the store.
//
//   DistributedRateLimiter rl(store, "api/tenant-4", {.capacity = 100, .refill_per_second = 10});
//   auto d = rl.try_acquire(1, now_ms);
//   if (!d->is_allowed) reject(d->retry_after_ms);
//
// State: "__coord:ratelimit:<name>" = {milli-tokens, last refill time}, updated by CAS. Time is
// a parameter (now_ms, the caller's clock): the decision is the pure function decide_tokens(),
// in integer thousandths of a token so every client computes exactly the same result. A
// refused request writes nothing. Clients should share one clock source; a clock that runs
// backwards refills nothing rather than failing. The configuration is the caller's: clients
// of one name must agree on it.
#pragma once

#include <string>

#include "coord/coord_common.h"

namespace aspen::coord {

struct RateLimitConfig {
  uint64_t capacity = 1;           // tokens the bucket holds; also the largest single request
  uint64_t refill_per_second = 1;  // tokens added per second
};

struct BucketState {
  uint64_t milli_tokens = 0;
  uint64_t last_refill_ms = 0;
  friend bool operator==(const BucketState&, const BucketState&) = default;
};

struct RateDecision {
  bool is_allowed = false;
  uint64_t tokens_remaining = 0;  // whole tokens left after this decision
  uint64_t retry_after_ms = 0;    // when refused: how long until `n` tokens are there
};

Status validate_rate_limit(const RateLimitConfig& cfg);
// Pure. A missing bucket is full at now_ms.
BucketState refill_bucket(const std::optional<BucketState>& state, const RateLimitConfig& cfg, uint64_t now_ms);
// Pure: refill, then take n tokens if there are enough. Returns the decision and the new state.
std::pair<RateDecision, BucketState> decide_tokens(const std::optional<BucketState>& state,
                                                  const RateLimitConfig& cfg, uint64_t n, uint64_t now_ms);

class DistributedRateLimiter {
 public:
  DistributedRateLimiter(kv::KeyValueStore& store, std::string name, RateLimitConfig cfg)
      : store_(store), name_(std::move(name)), cfg_(cfg) {}

  // n in [1, capacity].
  Result<RateDecision> try_acquire(uint64_t n, uint64_t now_ms);

 private:
  kv::KeyValueStore& store_;
  std::string name_;
  RateLimitConfig cfg_;
};

}  // namespace aspen::coord
