// The portable BLAKE3 compression function and kernel: the reference the SIMD kernels are
// tested against, and what runs for single blocks (partial chunks, parents, root output).
#include <cstring>

#include "core/assert.h"
#include "crypto/internal/blake3_impl.h"

namespace aspen::crypto::internal {
namespace {

inline uint32_t rotr32(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

// The quarter-round: mixes two message words into one column or diagonal of the state.
inline void mix(uint32_t* v, int a, int b, int c, int d, uint32_t mx, uint32_t my) {
  v[a] = v[a] + v[b] + mx;
  v[d] = rotr32(v[d] ^ v[a], 16);
  v[c] = v[c] + v[d];
  v[b] = rotr32(v[b] ^ v[c], 12);
  v[a] = v[a] + v[b] + my;
  v[d] = rotr32(v[d] ^ v[a], 8);
  v[c] = v[c] + v[d];
  v[b] = rotr32(v[b] ^ v[c], 7);
}

// Runs the 7 rounds over the 16-word state `v` for one block.
void compress_state(const Words8& cv, const uint8_t* block, uint8_t block_len_bytes,
                    uint64_t counter, uint8_t flags, uint32_t v[16]) {
  ASPEN_ASSERT(block_len_bytes <= kBlake3BlockSizeBytes);
  uint32_t m[16];
  for (size_t i = 0; i < 16; ++i) m[i] = load_le32(block + 4 * i);
  for (size_t i = 0; i < 8; ++i) v[i] = cv[i];
  for (size_t i = 0; i < 4; ++i) v[8 + i] = kIv[i];
  v[12] = static_cast<uint32_t>(counter);
  v[13] = static_cast<uint32_t>(counter >> 32);
  v[14] = block_len_bytes;
  v[15] = flags;
  ASPEN_BLAKE3_ROUNDS(mix, v, m)
}

}  // namespace

void compress_in_place(Words8& cv, const uint8_t block[kBlake3BlockSizeBytes],
                       uint8_t block_len_bytes, uint64_t counter, uint8_t flags) {
  uint32_t v[16];
  compress_state(cv, block, block_len_bytes, counter, flags, v);
  for (size_t i = 0; i < 8; ++i) cv[i] = v[i] ^ v[i + 8];
}

void compress_xof(const Words8& cv, const uint8_t block[kBlake3BlockSizeBytes],
                  uint8_t block_len_bytes, uint64_t counter, uint8_t flags,
                  uint8_t out[kBlake3BlockSizeBytes]) {
  uint32_t v[16];
  compress_state(cv, block, block_len_bytes, counter, flags, v);
  for (size_t i = 0; i < 8; ++i) {
    store_le32(out + 4 * i, v[i] ^ v[i + 8]);
    store_le32(out + 32 + 4 * i, v[i + 8] ^ cv[i]);
  }
}

void hash_many_portable(const uint8_t* input, size_t stride_bytes, size_t num_inputs,
                        size_t num_blocks, const Words8& key, uint64_t counter,
                        bool increments_counter, uint8_t flags, uint8_t flags_start,
                        uint8_t flags_end, uint8_t* out) {
  ASPEN_ASSERT(num_blocks > 0);
  for (size_t lane = 0; lane < num_inputs; ++lane) {
    Words8 cv = key;
    const uint8_t* p = input + lane * stride_bytes;
    const uint64_t lane_counter = counter + (increments_counter ? lane : 0);
    for (size_t b = 0; b < num_blocks; ++b) {
      uint8_t block_flags = flags;
      if (b == 0) block_flags |= flags_start;
      if (b + 1 == num_blocks) block_flags |= flags_end;
      compress_in_place(cv, p + b * kBlake3BlockSizeBytes,
                        static_cast<uint8_t>(kBlake3BlockSizeBytes), lane_counter, block_flags);
    }
    store_words8(out + lane * kBlake3HashSizeBytes, cv);
  }
}

}  // namespace aspen::crypto::internal
