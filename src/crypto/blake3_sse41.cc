// SSE4.1 kernel: 4 inputs at once, one input per 32-bit lane of each 128-bit register.
// Compiled with a per-function target attribute so the rest of the build stays baseline
// x86-64; called only when the CPU reports SSE4.1.
#include <immintrin.h>

#include "crypto/internal/blake3_impl.h"

#define ASPEN_SSE41_FN __attribute__((target("sse4.1")))
#define ASPEN_SSE41_INLINE __attribute__((target("sse4.1"), always_inline)) inline

namespace aspen::crypto::internal {
namespace {

constexpr size_t kLanes = 4;

ASPEN_SSE41_INLINE __m128i add(__m128i a, __m128i b) { return _mm_add_epi32(a, b); }
ASPEN_SSE41_INLINE __m128i xor_(__m128i a, __m128i b) { return _mm_xor_si128(a, b); }

// Rotations right by 16 and 8 move whole bytes, so a byte shuffle does each in one step.
ASPEN_SSE41_INLINE __m128i rotr16(__m128i x) {
  return _mm_shuffle_epi8(x, _mm_set_epi8(13, 12, 15, 14, 9, 8, 11, 10, 5, 4, 7, 6, 1, 0, 3, 2));
}
ASPEN_SSE41_INLINE __m128i rotr8(__m128i x) {
  return _mm_shuffle_epi8(x, _mm_set_epi8(12, 15, 14, 13, 8, 11, 10, 9, 4, 7, 6, 5, 0, 3, 2, 1));
}
ASPEN_SSE41_INLINE __m128i rotr12(__m128i x) {
  return _mm_or_si128(_mm_srli_epi32(x, 12), _mm_slli_epi32(x, 20));
}
ASPEN_SSE41_INLINE __m128i rotr7(__m128i x) {
  return _mm_or_si128(_mm_srli_epi32(x, 7), _mm_slli_epi32(x, 25));
}

ASPEN_SSE41_INLINE void mix(__m128i* v, int a, int b, int c, int d, __m128i mx, __m128i my) {
  v[a] = add(add(v[a], v[b]), mx);
  v[d] = rotr16(xor_(v[d], v[a]));
  v[c] = add(v[c], v[d]);
  v[b] = rotr12(xor_(v[b], v[c]));
  v[a] = add(add(v[a], v[b]), my);
  v[d] = rotr8(xor_(v[d], v[a]));
  v[c] = add(v[c], v[d]);
  v[b] = rotr7(xor_(v[b], v[c]));
}

// Rows r[0..3] (one per lane) become columns: afterwards r[j] holds word j of every lane.
ASPEN_SSE41_INLINE void transpose4(__m128i* r) {
  const __m128i t0 = _mm_unpacklo_epi32(r[0], r[1]);
  const __m128i t1 = _mm_unpacklo_epi32(r[2], r[3]);
  const __m128i t2 = _mm_unpackhi_epi32(r[0], r[1]);
  const __m128i t3 = _mm_unpackhi_epi32(r[2], r[3]);
  r[0] = _mm_unpacklo_epi64(t0, t1);
  r[1] = _mm_unpackhi_epi64(t0, t1);
  r[2] = _mm_unpacklo_epi64(t2, t3);
  r[3] = _mm_unpackhi_epi64(t2, t3);
}

// m[w] = message word w of block `offset` for each of the 4 lanes.
ASPEN_SSE41_INLINE void load_message(const uint8_t* input, size_t stride_bytes, size_t offset,
                                     __m128i* m) {
  for (size_t quarter = 0; quarter < 4; ++quarter) {
    __m128i* r = m + 4 * quarter;
    for (size_t lane = 0; lane < kLanes; ++lane) {
      const uint8_t* p = input + lane * stride_bytes + offset + 16 * quarter;
      // Reading 4 streams at once outruns the hardware prefetcher, and each call starts cold
      // on 4 new chunks; so fetch the block the next group of lanes (the next call) needs.
      // Past the end of the input this is harmless: prefetches never fault.
      if (quarter == 0) {
        _mm_prefetch(reinterpret_cast<const char*>(p + kLanes * stride_bytes), _MM_HINT_T0);
      }
      r[lane] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    }
    transpose4(r);
  }
}

ASPEN_SSE41_FN void hash4(const uint8_t* input, size_t stride_bytes, size_t num_blocks,
                          const Words8& key, uint64_t counter, bool increments_counter,
                          uint8_t flags, uint8_t flags_start, uint8_t flags_end, uint8_t* out) {
  __m128i h[8];
  for (size_t i = 0; i < 8; ++i) h[i] = _mm_set1_epi32(static_cast<int>(key[i]));
  alignas(16) uint32_t counter_low[kLanes];
  alignas(16) uint32_t counter_high[kLanes];
  lane_counters(counter, increments_counter, kLanes, counter_low, counter_high);
  const __m128i counter_low_v = _mm_load_si128(reinterpret_cast<const __m128i*>(counter_low));
  const __m128i counter_high_v = _mm_load_si128(reinterpret_cast<const __m128i*>(counter_high));
  const __m128i block_len_v = _mm_set1_epi32(static_cast<int>(kBlake3BlockSizeBytes));

  for (size_t b = 0; b < num_blocks; ++b) {
    uint32_t block_flags = flags;
    if (b == 0) block_flags |= flags_start;
    if (b + 1 == num_blocks) block_flags |= flags_end;
    __m128i m[16];
    load_message(input, stride_bytes, b * kBlake3BlockSizeBytes, m);
    __m128i v[16] = {h[0],
                     h[1],
                     h[2],
                     h[3],
                     h[4],
                     h[5],
                     h[6],
                     h[7],
                     _mm_set1_epi32(static_cast<int>(kIv[0])),
                     _mm_set1_epi32(static_cast<int>(kIv[1])),
                     _mm_set1_epi32(static_cast<int>(kIv[2])),
                     _mm_set1_epi32(static_cast<int>(kIv[3])),
                     counter_low_v,
                     counter_high_v,
                     block_len_v,
                     _mm_set1_epi32(static_cast<int>(block_flags))};
    // Fully unrolled, the schedule's indices are constants and the message stays in registers.
    ASPEN_BLAKE3_ROUNDS(mix, v, m)
    for (size_t i = 0; i < 8; ++i) h[i] = xor_(v[i], v[i + 8]);
  }
  // Back from word-per-register to lane-per-register: lane l's words 0-3 are h[0..3]
  // transposed, words 4-7 are h[4..7] transposed.
  transpose4(h);
  transpose4(h + 4);
  for (size_t lane = 0; lane < kLanes; ++lane) {
    uint8_t* dst = out + lane * kBlake3HashSizeBytes;
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), h[lane]);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 16), h[4 + lane]);
  }
}

}  // namespace

void hash_many_sse41(const uint8_t* input, size_t stride_bytes, size_t num_inputs,
                     size_t num_blocks, const Words8& key, uint64_t counter,
                     bool increments_counter, uint8_t flags, uint8_t flags_start,
                     uint8_t flags_end, uint8_t* out) {
  while (num_inputs >= kLanes) {
    hash4(input, stride_bytes, num_blocks, key, counter, increments_counter, flags, flags_start,
          flags_end, out);
    input += kLanes * stride_bytes;
    if (increments_counter) counter += kLanes;
    out += kLanes * kBlake3HashSizeBytes;
    num_inputs -= kLanes;
  }
  hash_many_portable(input, stride_bytes, num_inputs, num_blocks, key, counter,
                     increments_counter, flags, flags_start, flags_end, out);
}

}  // namespace aspen::crypto::internal
