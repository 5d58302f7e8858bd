// Deterministic pseudo-random numbers, passed explicitly to whatever needs randomness.
//
// Nothing in the core reads a random device: a component that needs randomness takes an
// Rng& (or a value drawn from one), so a seed reproduces a whole run. The generator is
// xoshiro256**, seeded through splitmix64; it is fast and good enough for simulation and
// randomized timeouts. It is NOT for cryptography.
#pragma once

#include <cstdint>

#include "core/assert.h"

namespace aspen {

class Rng {
 public:
  explicit Rng(uint64_t seed) {
    for (auto& s : state_) s = splitmix64(seed);
  }

  uint64_t next_u64() noexcept {
    const uint64_t result = rotl(state_[1] * 5, 7) * 9;
    const uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = rotl(state_[3], 45);
    return result;
  }

  // Uniform in [0, n). n must be > 0.
  uint64_t uniform(uint64_t n) noexcept {
    ASPEN_ASSERT(n > 0);
    // Lemire's multiply-shift; the tiny bias is irrelevant for simulation.
    return static_cast<uint64_t>((static_cast<unsigned __int128>(next_u64()) * n) >> 64);
  }

  // Uniform in [lo, hi]. Requires lo <= hi.
  uint64_t range(uint64_t lo, uint64_t hi) noexcept {
    ASPEN_ASSERT(lo <= hi);
    if (hi - lo == UINT64_MAX) return next_u64();  // the full domain: hi - lo + 1 would wrap
    return lo + uniform(hi - lo + 1);
  }

  // True with probability numerator / denominator.
  bool chance(uint64_t numerator, uint64_t denominator) noexcept {
    ASPEN_ASSERT(denominator > 0);
    return uniform(denominator) < numerator;
  }

 private:
  static uint64_t rotl(uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }
  static uint64_t splitmix64(uint64_t& x) noexcept {
    uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  uint64_t state_[4];
};

}  // namespace aspen
