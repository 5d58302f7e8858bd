// Internals of the BLAKE3 module shared by the hasher and the compression kernels.
//
// Everything here works in 32-bit words of the compression function. Chaining values cross
// the kernel interface as 32 little-endian bytes, which is also how a parent node's block
// holds its two children.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "crypto/blake3.h"

namespace aspen::crypto::internal {

using Words8 = std::array<uint32_t, 8>;

// The initialization vector (the same constants SHA-256 starts from).
inline constexpr Words8 kIv = {0x6A09E667u, 0xBB67AE85u, 0x3C6EF372u, 0xA54FF53Au,
                               0x510E527Fu, 0x9B05688Cu, 0x1F83D9ABu, 0x5BE0CD19u};

// Domain-separation flags (the `d` word of the compression input).
inline constexpr uint8_t kFlagChunkStart = 1 << 0;
inline constexpr uint8_t kFlagChunkEnd = 1 << 1;
inline constexpr uint8_t kFlagParent = 1 << 2;
inline constexpr uint8_t kFlagRoot = 1 << 3;
inline constexpr uint8_t kFlagKeyedHash = 1 << 4;
inline constexpr uint8_t kFlagDeriveKeyContext = 1 << 5;
inline constexpr uint8_t kFlagDeriveKeyMaterial = 1 << 6;

inline constexpr size_t kBlocksPerChunk = kBlake3ChunkSizeBytes / kBlake3BlockSizeBytes;
inline constexpr size_t kRounds = 7;

// Message word order for each round: round 0 takes words in order, and each later round
// applies the specification's fixed permutation to the previous round's order.
inline constexpr std::array<std::array<uint8_t, 16>, kRounds> kMessageSchedule = [] {
  constexpr std::array<uint8_t, 16> kPermutation = {2, 6,  3,  10, 7,  0,  4,  13,
                                                    1, 11, 12, 5,  9,  14, 15, 8};
  std::array<std::array<uint8_t, 16>, kRounds> schedule{};
  for (uint8_t i = 0; i < 16; ++i) schedule[0][i] = i;
  for (size_t r = 1; r < kRounds; ++r) {
    for (size_t i = 0; i < 16; ++i) schedule[r][i] = schedule[r - 1][kPermutation[i]];
  }
  return schedule;
}();

// The rounds of the compression function over state `v` (16 words) and message `m` (16
// words), with the kernel's own `mix` (one per vector width): columns, then diagonals. A
// macro rather than a template so that it expands inside each kernel's target-specific
// function, where the vector types and `mix` are compiled for that target.
#define ASPEN_BLAKE3_ROUNDS(mix, v, m)                                       \
  _Pragma("GCC unroll 7") for (const auto& s : ::aspen::crypto::internal::kMessageSchedule) { \
    mix(v, 0, 4, 8, 12, m[s[0]], m[s[1]]);                                   \
    mix(v, 1, 5, 9, 13, m[s[2]], m[s[3]]);                                   \
    mix(v, 2, 6, 10, 14, m[s[4]], m[s[5]]);                                  \
    mix(v, 3, 7, 11, 15, m[s[6]], m[s[7]]);                                  \
    mix(v, 0, 5, 10, 15, m[s[8]], m[s[9]]);                                  \
    mix(v, 1, 6, 11, 12, m[s[10]], m[s[11]]);                                \
    mix(v, 2, 7, 8, 13, m[s[12]], m[s[13]]);                                 \
    mix(v, 3, 4, 9, 14, m[s[14]], m[s[15]]);                                 \
  }

// Each lane's block counter, split in the low and high words the kernels load: lane i
// counts counter + i when `increments_counter` (chunks), else counter (parents).
inline void lane_counters(uint64_t counter, bool increments_counter, size_t lanes, uint32_t* low, uint32_t* high) {
  for (size_t lane = 0; lane < lanes; ++lane) {
    const uint64_t c = counter + (increments_counter ? lane : 0);
    low[lane] = static_cast<uint32_t>(c);
    high[lane] = static_cast<uint32_t>(c >> 32);
  }
}

inline uint32_t load_le32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
         (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}

inline void store_le32(uint8_t* p, uint32_t w) {
  p[0] = static_cast<uint8_t>(w);
  p[1] = static_cast<uint8_t>(w >> 8);
  p[2] = static_cast<uint8_t>(w >> 16);
  p[3] = static_cast<uint8_t>(w >> 24);
}

inline Words8 load_words8(const uint8_t* p) {
  Words8 w;
  for (size_t i = 0; i < 8; ++i) w[i] = load_le32(p + 4 * i);
  return w;
}

inline void store_words8(uint8_t* p, const Words8& w) {
  for (size_t i = 0; i < 8; ++i) store_le32(p + 4 * i, w[i]);
}

// One compression, keeping only the new chaining value (the first 8 output words).
void compress_in_place(Words8& cv, const uint8_t block[kBlake3BlockSizeBytes],
                       uint8_t block_len_bytes, uint64_t counter, uint8_t flags);
// One compression with all 16 output words (extended output of a root node), as bytes.
void compress_xof(const Words8& cv, const uint8_t block[kBlake3BlockSizeBytes],
                  uint8_t block_len_bytes, uint64_t counter, uint8_t flags,
                  uint8_t out[kBlake3BlockSizeBytes]);

// The kernel interface. Compresses `num_inputs` independent inputs ("lanes"); lane i is
// `num_blocks` whole 64-byte blocks starting at input + i * stride_bytes, all chained from
// `key`. Lane i's counter is counter + i when increments_counter (chunks), else counter
// (parents). Every block gets `flags`, the first also `flags_start`, the last also
// `flags_end`. Lane i's chaining value goes to out[32 * i, 32 * i + 32).
using HashManyFn = void (*)(const uint8_t* input, size_t stride_bytes, size_t num_inputs,
                            size_t num_blocks, const Words8& key, uint64_t counter,
                            bool increments_counter, uint8_t flags, uint8_t flags_start,
                            uint8_t flags_end, uint8_t* out);

void hash_many_portable(const uint8_t* input, size_t stride_bytes, size_t num_inputs,
                        size_t num_blocks, const Words8& key, uint64_t counter,
                        bool increments_counter, uint8_t flags, uint8_t flags_start,
                        uint8_t flags_end, uint8_t* out);
// The SIMD kernels handle inputs in groups of their width and hand the rest to the next
// narrower kernel. Call them only when the CPU supports them.
void hash_many_sse41(const uint8_t* input, size_t stride_bytes, size_t num_inputs,
                     size_t num_blocks, const Words8& key, uint64_t counter,
                     bool increments_counter, uint8_t flags, uint8_t flags_start,
                     uint8_t flags_end, uint8_t* out);
void hash_many_avx2(const uint8_t* input, size_t stride_bytes, size_t num_inputs,
                    size_t num_blocks, const Words8& key, uint64_t counter,
                    bool increments_counter, uint8_t flags, uint8_t flags_start,
                    uint8_t flags_end, uint8_t* out);
void hash_many_avx512(const uint8_t* input, size_t stride_bytes, size_t num_inputs,
                      size_t num_blocks, const Words8& key, uint64_t counter,
                      bool increments_counter, uint8_t flags, uint8_t flags_start,
                      uint8_t flags_end, uint8_t* out);

HashManyFn hash_many_for(Blake3Backend backend);

// Chaining value (never root) of `len_bytes` > 0 bytes of input starting at chunk
// `start_chunk`, under `key` and `mode_flags`; the bytes form a subtree of the tree (see
// blake3_subtree_cv). Uses the wide kernel for batches of chunks and parents.
Words8 subtree_cv(Blake3Backend backend, const uint8_t* data, size_t len_bytes,
                  uint64_t start_chunk, const Words8& key, uint8_t mode_flags);

// Chaining value of a parent node (never root).
Words8 parent_cv(const Words8& left, const Words8& right, const Words8& key, uint8_t mode_flags);
// The parent node itself, for when it may be the root.
detail::Blake3Node parent_node(const Words8& left, const Words8& right, const Words8& key,
                               uint8_t mode_flags);
// The root output (first 32 bytes) of a node.
Blake3Hash root_hash(const detail::Blake3Node& node);

}  // namespace aspen::crypto::internal
