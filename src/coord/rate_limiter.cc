#include "coord/rate_limiter.h"

#include <fmt/format.h>

#include "core/assert.h"
#include "core/limits.h"

namespace aspen::coord {

namespace {
constexpr std::string_view kKind = "ratelimit";
constexpr uint8_t kBucketRecord = 'B';

Result<std::optional<BucketState>> decode_bucket(const std::optional<kvpb::KeyValue>& kv) {
  if (!kv) return std::optional<BucketState>{};
  auto r = RecordReader::open(kv->value(), kBucketRecord, kv->key());
  if (!r) return std::unexpected(r.error());
  auto tokens = r->u64();
  if (!tokens) return std::unexpected(tokens.error());
  auto last = r->u64();
  if (!last) return std::unexpected(last.error());
  if (auto s = r->finish(); !s) return std::unexpected(s.error());
  return std::optional<BucketState>(BucketState{*tokens, *last});
}
}  // namespace

Status validate_rate_limit(const RateLimitConfig& cfg) {
  if (cfg.capacity == 0 || cfg.capacity > limits::kMaxRateLimitCapacity) {
    return make_error(ErrorCode::kInvalidArgument, fmt::format("rate limit capacity {} is outside [1, {}]",
                                                               cfg.capacity, limits::kMaxRateLimitCapacity));
  }
  if (cfg.refill_per_second == 0 || cfg.refill_per_second > limits::kMaxRateLimitRefillPerSecond) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("rate limit refill {} tokens/s is outside [1, {}]", cfg.refill_per_second,
                                  limits::kMaxRateLimitRefillPerSecond));
  }
  return {};
}

BucketState refill_bucket(const std::optional<BucketState>& state, const RateLimitConfig& cfg, uint64_t now_ms) {
  const uint64_t full = cfg.capacity * 1000;
  if (!state) return BucketState{full, now_ms};
  if (now_ms <= state->last_refill_ms) return *state;  // no time passed (or the clock went back)
  uint64_t elapsed_ms = now_ms - state->last_refill_ms;
  // elapsed_ms * refill_per_second milli-tokens accrue; compute in 128 bits, then cap.
  unsigned __int128 added = static_cast<unsigned __int128>(elapsed_ms) * cfg.refill_per_second;
  unsigned __int128 total = added + std::min(state->milli_tokens, full);
  return BucketState{total >= full ? full : static_cast<uint64_t>(total), now_ms};
}

std::pair<RateDecision, BucketState> decide_tokens(const std::optional<BucketState>& state,
                                                  const RateLimitConfig& cfg, uint64_t n, uint64_t now_ms) {
  ASPEN_ASSERT(n >= 1 && n <= cfg.capacity);
  BucketState b = refill_bucket(state, cfg, now_ms);
  const uint64_t need = n * 1000;
  RateDecision d;
  if (b.milli_tokens >= need) {
    b.milli_tokens -= need;
    d.is_allowed = true;
  } else {
    uint64_t missing = need - b.milli_tokens;
    d.retry_after_ms = (missing + cfg.refill_per_second - 1) / cfg.refill_per_second;  // ceil
  }
  d.tokens_remaining = b.milli_tokens / 1000;
  return {d, b};
}

Result<RateDecision> DistributedRateLimiter::try_acquire(uint64_t n, uint64_t now_ms) {
  if (auto s = validate_name(name_); !s) return std::unexpected(s.error());
  if (auto s = validate_rate_limit(cfg_); !s) return std::unexpected(s.error());
  if (n == 0 || n > cfg_.capacity) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("cannot take {} tokens from a bucket of capacity {}", n, cfg_.capacity));
  }
  return update_key<RateDecision>(
      store_, coord_key(kKind, name_), fmt::format("rate limiter '{}'", name_),
      [&](const std::optional<kvpb::KeyValue>& cur) -> Result<Update<RateDecision>> {
        auto state = decode_bucket(cur);
        if (!state) return std::unexpected(state.error());
        auto [decision, next] = decide_tokens(*state, cfg_, n, now_ms);
        if (!decision.is_allowed) return Update<RateDecision>{std::nullopt, decision};
        return Update<RateDecision>{RecordWriter(kBucketRecord).u64(next.milli_tokens).u64(next.last_refill_ms).finish(),
                                    decision};
      });
}

}  // namespace aspen::coord
