// AVX-512 kernel: 16 inputs at once, one input per 32-bit lane of each 512-bit register.
// Compiled with a per-function target attribute so the rest of the build stays baseline
// x86-64; called only when the CPU (and OS) report AVX-512F. Leftover inputs (fewer than 16)
// go to the AVX2 kernel: every AVX-512F CPU has AVX2.
// GCC 12's AVX-512 intrinsics pass a deliberately undefined vector as the (fully masked-off)
// merge source, which -W(maybe-)uninitialized reports inside the header; silence it there only.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include "crypto/internal/blake3_impl.h"

#define ASPEN_AVX512_FN __attribute__((target("avx512f")))
#define ASPEN_AVX512_INLINE __attribute__((target("avx512f"), always_inline)) inline

namespace aspen::crypto::internal {
namespace {

constexpr size_t kLanes = 16;

ASPEN_AVX512_INLINE __m512i add(__m512i a, __m512i b) { return _mm512_add_epi32(a, b); }
ASPEN_AVX512_INLINE __m512i xor_(__m512i a, __m512i b) { return _mm512_xor_si512(a, b); }

// AVX-512F has a rotate instruction, so every rotation is one step.
ASPEN_AVX512_INLINE void mix(__m512i* v, int a, int b, int c, int d, __m512i mx, __m512i my) {
  v[a] = add(add(v[a], v[b]), mx);
  v[d] = _mm512_ror_epi32(xor_(v[d], v[a]), 16);
  v[c] = add(v[c], v[d]);
  v[b] = _mm512_ror_epi32(xor_(v[b], v[c]), 12);
  v[a] = add(add(v[a], v[b]), my);
  v[d] = _mm512_ror_epi32(xor_(v[d], v[a]), 8);
  v[c] = add(v[c], v[d]);
  v[b] = _mm512_ror_epi32(xor_(v[b], v[c]), 7);
}

// 16x16 transpose of 32-bit words: rows r[0..15] (one per lane) become columns, so that
// afterwards r[w] holds word w of every lane.
ASPEN_AVX512_INLINE void transpose16(__m512i* r) {
  // Within each 128-bit quarter q: a[2k] = rows 2k, 2k+1 interleaved on words 4q, 4q+1;
  // a[2k+1] the same on words 4q+2, 4q+3.
  __m512i a[16];
  for (size_t k = 0; k < 8; ++k) {
    a[2 * k] = _mm512_unpacklo_epi32(r[2 * k], r[2 * k + 1]);
    a[2 * k + 1] = _mm512_unpackhi_epi32(r[2 * k], r[2 * k + 1]);
  }
  // b[4g + j], quarter q: lanes 4g..4g+3, word 4q + j.
  __m512i b[16];
  for (size_t g = 0; g < 4; ++g) {
    b[4 * g + 0] = _mm512_unpacklo_epi64(a[4 * g + 0], a[4 * g + 2]);
    b[4 * g + 1] = _mm512_unpackhi_epi64(a[4 * g + 0], a[4 * g + 2]);
    b[4 * g + 2] = _mm512_unpacklo_epi64(a[4 * g + 1], a[4 * g + 3]);
    b[4 * g + 3] = _mm512_unpackhi_epi64(a[4 * g + 1], a[4 * g + 3]);
  }
  // Word 4q + j of every lane is quarter q of b[j], b[4 + j], b[8 + j], b[12 + j]: a 4x4
  // transpose of 128-bit quarters, done with two rounds of quarter shuffles.
  for (size_t j = 0; j < 4; ++j) {
    const __m512i c0 = _mm512_shuffle_i32x4(b[j], b[4 + j], 0x44);       // q0 q1 | q0 q1
    const __m512i c1 = _mm512_shuffle_i32x4(b[j], b[4 + j], 0xEE);       // q2 q3 | q2 q3
    const __m512i c2 = _mm512_shuffle_i32x4(b[8 + j], b[12 + j], 0x44);  // q0 q1 | q0 q1
    const __m512i c3 = _mm512_shuffle_i32x4(b[8 + j], b[12 + j], 0xEE);  // q2 q3 | q2 q3
    r[j] = _mm512_shuffle_i32x4(c0, c2, 0x88);       // quarter 0 of all four
    r[4 + j] = _mm512_shuffle_i32x4(c0, c2, 0xDD);   // quarter 1
    r[8 + j] = _mm512_shuffle_i32x4(c1, c3, 0x88);   // quarter 2
    r[12 + j] = _mm512_shuffle_i32x4(c1, c3, 0xDD);  // quarter 3
  }
}

ASPEN_AVX512_FN void hash16(const uint8_t* input, size_t stride_bytes, size_t num_blocks,
                            const Words8& key, uint64_t counter, bool increments_counter,
                            uint8_t flags, uint8_t flags_start, uint8_t flags_end,
                            uint8_t* out) {
  __m512i h[16];
  for (size_t i = 0; i < 8; ++i) h[i] = _mm512_set1_epi32(static_cast<int>(key[i]));
  alignas(64) uint32_t counter_low[kLanes];
  alignas(64) uint32_t counter_high[kLanes];
  lane_counters(counter, increments_counter, kLanes, counter_low, counter_high);
  const __m512i counter_low_v = _mm512_load_si512(counter_low);
  const __m512i counter_high_v = _mm512_load_si512(counter_high);
  const __m512i block_len_v = _mm512_set1_epi32(static_cast<int>(kBlake3BlockSizeBytes));

  for (size_t b = 0; b < num_blocks; ++b) {
    uint32_t block_flags = flags;
    if (b == 0) block_flags |= flags_start;
    if (b + 1 == num_blocks) block_flags |= flags_end;
    __m512i m[16];
    for (size_t lane = 0; lane < kLanes; ++lane) {
      const uint8_t* p = input + lane * stride_bytes + b * kBlake3BlockSizeBytes;
      // Reading 16 streams at once outruns the hardware prefetcher, and each call starts cold
      // on 16 new chunks; so fetch the block the next group of lanes (the next call) needs.
      // Past the end of the input this is harmless: prefetches never fault.
      _mm_prefetch(reinterpret_cast<const char*>(p + kLanes * stride_bytes), _MM_HINT_T0);
      m[lane] = _mm512_loadu_si512(p);
    }
    transpose16(m);
    __m512i v[16] = {h[0],
                     h[1],
                     h[2],
                     h[3],
                     h[4],
                     h[5],
                     h[6],
                     h[7],
                     _mm512_set1_epi32(static_cast<int>(kIv[0])),
                     _mm512_set1_epi32(static_cast<int>(kIv[1])),
                     _mm512_set1_epi32(static_cast<int>(kIv[2])),
                     _mm512_set1_epi32(static_cast<int>(kIv[3])),
                     counter_low_v,
                     counter_high_v,
                     block_len_v,
                     _mm512_set1_epi32(static_cast<int>(block_flags))};
    // Fully unrolled, the schedule's indices are constants and the message stays in registers.
    ASPEN_BLAKE3_ROUNDS(mix, v, m)
    for (size_t i = 0; i < 8; ++i) h[i] = xor_(v[i], v[i + 8]);
  }
  // Back to one lane per register: pad to 16 rows, transpose, keep each lane's first 8 words.
  for (size_t i = 8; i < 16; ++i) h[i] = _mm512_setzero_si512();
  transpose16(h);
  for (size_t lane = 0; lane < kLanes; ++lane) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + lane * kBlake3HashSizeBytes),
                        _mm512_castsi512_si256(h[lane]));
  }
}

}  // namespace

void hash_many_avx512(const uint8_t* input, size_t stride_bytes, size_t num_inputs,
                      size_t num_blocks, const Words8& key, uint64_t counter,
                      bool increments_counter, uint8_t flags, uint8_t flags_start,
                      uint8_t flags_end, uint8_t* out) {
  while (num_inputs >= kLanes) {
    hash16(input, stride_bytes, num_blocks, key, counter, increments_counter, flags,
           flags_start, flags_end, out);
    input += kLanes * stride_bytes;
    if (increments_counter) counter += kLanes;
    out += kLanes * kBlake3HashSizeBytes;
    num_inputs -= kLanes;
  }
  hash_many_avx2(input, stride_bytes, num_inputs, num_blocks, key, counter, increments_counter,
                 flags, flags_start, flags_end, out);
}

}  // namespace aspen::crypto::internal
