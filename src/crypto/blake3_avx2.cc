// AVX2 kernel: 8 inputs at once, one input per 32-bit lane of each 256-bit register.
// Compiled with a per-function target attribute so the rest of the build stays baseline
// x86-64; called only when the CPU reports AVX2. Leftover inputs (fewer than 8) go to the
// SSE4.1 kernel: every AVX2 CPU has SSE4.1.
#include <immintrin.h>

#include "crypto/internal/blake3_impl.h"

#define ASPEN_AVX2_FN __attribute__((target("avx2")))
#define ASPEN_AVX2_INLINE __attribute__((target("avx2"), always_inline)) inline

namespace aspen::crypto::internal {
namespace {

constexpr size_t kLanes = 8;

ASPEN_AVX2_INLINE __m256i add(__m256i a, __m256i b) { return _mm256_add_epi32(a, b); }
ASPEN_AVX2_INLINE __m256i xor_(__m256i a, __m256i b) { return _mm256_xor_si256(a, b); }

// Rotations right by 16 and 8 move whole bytes: one byte shuffle (per 128-bit half) each.
ASPEN_AVX2_INLINE __m256i rotr16(__m256i x) {
  return _mm256_shuffle_epi8(
      x, _mm256_set_epi8(13, 12, 15, 14, 9, 8, 11, 10, 5, 4, 7, 6, 1, 0, 3, 2, 13, 12, 15, 14, 9,
                         8, 11, 10, 5, 4, 7, 6, 1, 0, 3, 2));
}
ASPEN_AVX2_INLINE __m256i rotr8(__m256i x) {
  return _mm256_shuffle_epi8(
      x, _mm256_set_epi8(12, 15, 14, 13, 8, 11, 10, 9, 4, 7, 6, 5, 0, 3, 2, 1, 12, 15, 14, 13, 8,
                         11, 10, 9, 4, 7, 6, 5, 0, 3, 2, 1));
}
ASPEN_AVX2_INLINE __m256i rotr12(__m256i x) {
  return _mm256_or_si256(_mm256_srli_epi32(x, 12), _mm256_slli_epi32(x, 20));
}
ASPEN_AVX2_INLINE __m256i rotr7(__m256i x) {
  return _mm256_or_si256(_mm256_srli_epi32(x, 7), _mm256_slli_epi32(x, 25));
}

ASPEN_AVX2_INLINE void mix(__m256i* v, int a, int b, int c, int d, __m256i mx, __m256i my) {
  v[a] = add(add(v[a], v[b]), mx);
  v[d] = rotr16(xor_(v[d], v[a]));
  v[c] = add(v[c], v[d]);
  v[b] = rotr12(xor_(v[b], v[c]));
  v[a] = add(add(v[a], v[b]), my);
  v[d] = rotr8(xor_(v[d], v[a]));
  v[c] = add(v[c], v[d]);
  v[b] = rotr7(xor_(v[b], v[c]));
}

// 8x8 transpose of 32-bit words: rows r[0..7] (one per lane) become columns, so that
// afterwards r[j] holds word j of every lane. Interleave pairs of rows by words, then by
// word pairs (both within 128-bit halves), then exchange the halves.
ASPEN_AVX2_INLINE void transpose8(__m256i* r) {
  __m256i a[8];
  for (size_t k = 0; k < 4; ++k) {
    a[2 * k] = _mm256_unpacklo_epi32(r[2 * k], r[2 * k + 1]);
    a[2 * k + 1] = _mm256_unpackhi_epi32(r[2 * k], r[2 * k + 1]);
  }
  // b[4g + j]: lanes 4g..4g+3, word j in the low half and word j + 4 in the high half.
  __m256i b[8];
  for (size_t g = 0; g < 2; ++g) {
    b[4 * g + 0] = _mm256_unpacklo_epi64(a[4 * g + 0], a[4 * g + 2]);
    b[4 * g + 1] = _mm256_unpackhi_epi64(a[4 * g + 0], a[4 * g + 2]);
    b[4 * g + 2] = _mm256_unpacklo_epi64(a[4 * g + 1], a[4 * g + 3]);
    b[4 * g + 3] = _mm256_unpackhi_epi64(a[4 * g + 1], a[4 * g + 3]);
  }
  for (size_t j = 0; j < 4; ++j) {
    r[j] = _mm256_permute2x128_si256(b[j], b[4 + j], 0x20);
    r[j + 4] = _mm256_permute2x128_si256(b[j], b[4 + j], 0x31);
  }
}

// m[w] = message word w of block `offset` for each of the 8 lanes.
ASPEN_AVX2_INLINE void load_message(const uint8_t* input, size_t stride_bytes, size_t offset,
                                    __m256i* m) {
  for (size_t half = 0; half < 2; ++half) {
    __m256i* r = m + 8 * half;
    for (size_t lane = 0; lane < kLanes; ++lane) {
      const uint8_t* p = input + lane * stride_bytes + offset + 32 * half;
      // Reading 8 streams at once outruns the hardware prefetcher, and each call starts cold
      // on 8 new chunks; so fetch the block the next group of lanes (the next call) needs.
      // Past the end of the input this is harmless: prefetches never fault.
      if (half == 0) {
        _mm_prefetch(reinterpret_cast<const char*>(p + kLanes * stride_bytes), _MM_HINT_T0);
      }
      r[lane] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    }
    transpose8(r);
  }
}

ASPEN_AVX2_FN void hash8(const uint8_t* input, size_t stride_bytes, size_t num_blocks,
                         const Words8& key, uint64_t counter, bool increments_counter,
                         uint8_t flags, uint8_t flags_start, uint8_t flags_end, uint8_t* out) {
  __m256i h[8];
  for (size_t i = 0; i < 8; ++i) h[i] = _mm256_set1_epi32(static_cast<int>(key[i]));
  alignas(32) uint32_t counter_low[kLanes];
  alignas(32) uint32_t counter_high[kLanes];
  lane_counters(counter, increments_counter, kLanes, counter_low, counter_high);
  const __m256i counter_low_v = _mm256_load_si256(reinterpret_cast<const __m256i*>(counter_low));
  const __m256i counter_high_v =
      _mm256_load_si256(reinterpret_cast<const __m256i*>(counter_high));
  const __m256i block_len_v = _mm256_set1_epi32(static_cast<int>(kBlake3BlockSizeBytes));

  for (size_t b = 0; b < num_blocks; ++b) {
    uint32_t block_flags = flags;
    if (b == 0) block_flags |= flags_start;
    if (b + 1 == num_blocks) block_flags |= flags_end;
    __m256i m[16];
    load_message(input, stride_bytes, b * kBlake3BlockSizeBytes, m);
    __m256i v[16] = {h[0],
                     h[1],
                     h[2],
                     h[3],
                     h[4],
                     h[5],
                     h[6],
                     h[7],
                     _mm256_set1_epi32(static_cast<int>(kIv[0])),
                     _mm256_set1_epi32(static_cast<int>(kIv[1])),
                     _mm256_set1_epi32(static_cast<int>(kIv[2])),
                     _mm256_set1_epi32(static_cast<int>(kIv[3])),
                     counter_low_v,
                     counter_high_v,
                     block_len_v,
                     _mm256_set1_epi32(static_cast<int>(block_flags))};
    // Fully unrolled, the schedule's indices are constants and the message stays in registers.
    ASPEN_BLAKE3_ROUNDS(mix, v, m)
    for (size_t i = 0; i < 8; ++i) h[i] = xor_(v[i], v[i + 8]);
  }
  // The transpose is its own inverse: h[j] (word j of every lane) becomes lane j's words.
  transpose8(h);
  for (size_t lane = 0; lane < kLanes; ++lane) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + lane * kBlake3HashSizeBytes), h[lane]);
  }
}

}  // namespace

void hash_many_avx2(const uint8_t* input, size_t stride_bytes, size_t num_inputs,
                    size_t num_blocks, const Words8& key, uint64_t counter,
                    bool increments_counter, uint8_t flags, uint8_t flags_start,
                    uint8_t flags_end, uint8_t* out) {
  while (num_inputs >= kLanes) {
    hash8(input, stride_bytes, num_blocks, key, counter, increments_counter, flags, flags_start,
          flags_end, out);
    input += kLanes * stride_bytes;
    if (increments_counter) counter += kLanes;
    out += kLanes * kBlake3HashSizeBytes;
    num_inputs -= kLanes;
  }
  hash_many_sse41(input, stride_bytes, num_inputs, num_blocks, key, counter, increments_counter,
                  flags, flags_start, flags_end, out);
}

}  // namespace aspen::crypto::internal
