// The BLAKE3 tree: chunks, the incremental hasher, parents, the root and extended output.
#include "crypto/blake3.h"

#include "core/encoding.h"

#include <algorithm>
#include <bit>
#include <cstring>

#include "core/assert.h"
#include "crypto/internal/blake3_impl.h"

namespace aspen::crypto {

using internal::Words8;

namespace internal {

namespace {

// Chunks hashed per batch at the bottom of subtree_cv: a multiple of every kernel's width
// (16 for AVX-512), and small enough that the chaining values stay on the stack (2 KiB).
constexpr size_t kBatchChunks = 64;

size_t num_chunks_of(size_t len_bytes) {
  return (len_bytes + kBlake3ChunkSizeBytes - 1) / kBlake3ChunkSizeBytes;
}

// Chaining value of one chunk shorter than kBlake3ChunkSizeBytes (a last chunk).
Words8 partial_chunk_cv(const uint8_t* data, size_t len_bytes, uint64_t chunk_counter,
                        const Words8& key, uint8_t mode_flags) {
  ASPEN_ASSERT(len_bytes > 0 && len_bytes < kBlake3ChunkSizeBytes);
  Words8 cv = key;
  size_t offset = 0;
  uint8_t block[kBlake3BlockSizeBytes];
  while (true) {
    const size_t take = std::min(kBlake3BlockSizeBytes, len_bytes - offset);
    std::memset(block, 0, sizeof block);
    std::memcpy(block, data + offset, take);
    uint8_t flags = mode_flags;
    if (offset == 0) flags |= kFlagChunkStart;
    if (offset + take == len_bytes) flags |= kFlagChunkEnd;
    compress_in_place(cv, block, static_cast<uint8_t>(take), chunk_counter, flags);
    offset += take;
    if (offset == len_bytes) return cv;
  }
}

// Up to kBatchChunks chunks: all whole chunks through the wide kernel, then the tree above
// them one level at a time. Pairing neighbours from the left and carrying an odd last node
// up unchanged builds exactly BLAKE3's left-balanced tree.
Words8 small_subtree_cv(HashManyFn hash_many, const uint8_t* data, size_t len_bytes,
                        uint64_t start_chunk, const Words8& key, uint8_t mode_flags) {
  const size_t num_chunks = num_chunks_of(len_bytes);
  ASPEN_ASSERT(num_chunks >= 1 && num_chunks <= kBatchChunks);
  alignas(64) uint8_t cvs[kBatchChunks * kBlake3HashSizeBytes];
  alignas(64) uint8_t next[kBatchChunks / 2 * kBlake3HashSizeBytes];
  const size_t num_whole = len_bytes / kBlake3ChunkSizeBytes;
  if (num_whole > 0) {
    hash_many(data, kBlake3ChunkSizeBytes, num_whole, kBlocksPerChunk, key, start_chunk, true,
              mode_flags, kFlagChunkStart, kFlagChunkEnd, cvs);
  }
  if (num_whole < num_chunks) {
    const size_t done = num_whole * kBlake3ChunkSizeBytes;
    store_words8(cvs + num_whole * kBlake3HashSizeBytes,
                 partial_chunk_cv(data + done, len_bytes - done, start_chunk + num_whole, key,
                                  mode_flags));
  }
  size_t n = num_chunks;
  while (n > 1) {
    const size_t pairs = n / 2;
    hash_many(cvs, kBlake3BlockSizeBytes, pairs, 1, key, 0, false, mode_flags | kFlagParent, 0,
              0, next);
    std::memcpy(cvs, next, pairs * kBlake3HashSizeBytes);
    if (n % 2 == 1) {
      std::memmove(cvs + pairs * kBlake3HashSizeBytes, cvs + (n - 1) * kBlake3HashSizeBytes,
                   kBlake3HashSizeBytes);
    }
    n = pairs + n % 2;
  }
  return load_words8(cvs);
}

}  // namespace

Words8 subtree_cv(Blake3Backend backend, const uint8_t* data, size_t len_bytes,
                  uint64_t start_chunk, const Words8& key, uint8_t mode_flags) {
  ASPEN_ASSERT(len_bytes > 0);
  const size_t num_chunks = num_chunks_of(len_bytes);
  if (num_chunks <= kBatchChunks) {
    return small_subtree_cv(hash_many_for(backend), data, len_bytes, start_chunk, key,
                            mode_flags);
  }
  // The left child covers the largest power of two of chunks that leaves some to the right.
  const size_t left_chunks = std::bit_floor(num_chunks - 1);
  const size_t left_len_bytes = left_chunks * kBlake3ChunkSizeBytes;
  const Words8 left = subtree_cv(backend, data, left_len_bytes, start_chunk, key, mode_flags);
  const Words8 right = subtree_cv(backend, data + left_len_bytes, len_bytes - left_len_bytes,
                                  start_chunk + left_chunks, key, mode_flags);
  return parent_cv(left, right, key, mode_flags);
}

detail::Blake3Node parent_node(const Words8& left, const Words8& right, const Words8& key,
                               uint8_t mode_flags) {
  detail::Blake3Node node;
  node.input_cv = key;
  store_words8(node.block.data(), left);
  store_words8(node.block.data() + kBlake3HashSizeBytes, right);
  node.counter = 0;
  node.block_len_bytes = static_cast<uint8_t>(kBlake3BlockSizeBytes);
  node.flags = mode_flags | kFlagParent;
  return node;
}

Words8 parent_cv(const Words8& left, const Words8& right, const Words8& key,
                 uint8_t mode_flags) {
  const detail::Blake3Node node = parent_node(left, right, key, mode_flags);
  Words8 cv = node.input_cv;
  compress_in_place(cv, node.block.data(), node.block_len_bytes, node.counter, node.flags);
  return cv;
}

Blake3Hash root_hash(const detail::Blake3Node& node) {
  uint8_t out[kBlake3BlockSizeBytes];
  compress_xof(node.input_cv, node.block.data(), node.block_len_bytes, 0,
               node.flags | kFlagRoot, out);
  Blake3Hash hash;
  std::memcpy(hash.data(), out, hash.size());
  return hash;
}

}  // namespace internal

// --- extended output ---------------------------------------------------------------------

void Blake3OutputReader::read(std::span<uint8_t> out) {
  // Output block i is the root node compressed with counter i; a read may start mid-block.
  uint64_t block_index = position_bytes_ / kBlake3BlockSizeBytes;
  size_t skip = position_bytes_ % kBlake3BlockSizeBytes;
  size_t written = 0;
  uint8_t block_out[kBlake3BlockSizeBytes];
  while (written < out.size()) {
    internal::compress_xof(root_.input_cv, root_.block.data(), root_.block_len_bytes,
                           block_index, root_.flags | internal::kFlagRoot, block_out);
    const size_t take = std::min(kBlake3BlockSizeBytes - skip, out.size() - written);
    std::memcpy(out.data() + written, block_out + skip, take);
    written += take;
    skip = 0;
    ++block_index;
  }
  position_bytes_ += out.size();
}

// --- the hasher ------------------------------------------------------------------------

Blake3Hasher::Blake3Hasher() : Blake3Hasher(internal::kIv, 0) {}

Blake3Hasher::Blake3Hasher(const std::array<uint32_t, 8>& key_words, uint8_t mode_flags)
    : key_words_(key_words),
      mode_flags_(mode_flags),
      backend_(blake3_best_backend()),
      chunk_cv_(key_words) {}

Blake3Hasher Blake3Hasher::keyed(const Blake3Key& key) {
  return Blake3Hasher(internal::load_words8(key.data()), internal::kFlagKeyedHash);
}

Blake3Hasher Blake3Hasher::for_derive_key(std::string_view context) {
  // The context string is hashed (in its own domain) into the key for the material.
  Blake3Hasher context_hasher(internal::kIv, internal::kFlagDeriveKeyContext);
  context_hasher.update(context);
  const Blake3Hash context_key = context_hasher.finalize();
  return Blake3Hasher(internal::load_words8(context_key.data()),
                      internal::kFlagDeriveKeyMaterial);
}

void Blake3Hasher::reset() {
  chunk_cv_ = key_words_;
  chunk_counter_ = 0;
  block_.fill(0);
  block_len_bytes_ = 0;
  blocks_compressed_ = 0;
  cv_stack_len_ = 0;
}

void Blake3Hasher::set_backend(Blake3Backend backend) {
  ASPEN_ASSERT_MSG(blake3_backend_is_supported(backend), "CPU lacks this BLAKE3 backend");
  backend_ = backend;
}

void Blake3Hasher::update(std::string_view data) {
  update(std::span(reinterpret_cast<const uint8_t*>(data.data()), data.size()));
}

// Called only when more input follows, so the subtree is never the root and may be merged
// with its left neighbours as soon as they form complete pairs.
void Blake3Hasher::push_subtree_cv(const std::array<uint32_t, 8>& cv, uint64_t end_chunk) {
  ASPEN_ASSERT(cv_stack_len_ < kMaxStackDepth);
  cv_stack_[cv_stack_len_++] = cv;
  const size_t wanted_len = static_cast<size_t>(std::popcount(end_chunk));
  while (cv_stack_len_ > wanted_len) {
    ASPEN_ASSERT(cv_stack_len_ >= 2);
    const auto right = cv_stack_[--cv_stack_len_];
    const auto left = cv_stack_[cv_stack_len_ - 1];
    cv_stack_[cv_stack_len_ - 1] = internal::parent_cv(left, right, key_words_, mode_flags_);
  }
}

void Blake3Hasher::flush_full_chunk() {
  const detail::Blake3Node node = chunk_node();
  std::array<uint32_t, 8> cv = node.input_cv;
  internal::compress_in_place(cv, node.block.data(), node.block_len_bytes, node.counter,
                              node.flags);
  push_subtree_cv(cv, chunk_counter_ + 1);
  chunk_cv_ = key_words_;
  ++chunk_counter_;
  block_.fill(0);
  block_len_bytes_ = 0;
  blocks_compressed_ = 0;
}

void Blake3Hasher::update(std::span<const uint8_t> data) {
  const uint8_t* p = data.data();
  size_t n = data.size();
  while (n > 0) {
    const size_t chunk_len_bytes =
        blocks_compressed_ * kBlake3BlockSizeBytes + static_cast<size_t>(block_len_bytes_);
    if (chunk_len_bytes == kBlake3ChunkSizeBytes) {
      flush_full_chunk();
      continue;
    }
    if (chunk_len_bytes == 0 && n > kBlake3ChunkSizeBytes) {
      // At a chunk boundary with more than a chunk to go: hash the largest complete subtree
      // that starts here (aligned to its size) and leaves at least one byte for later.
      uint64_t chunks = std::bit_floor((n - 1) / kBlake3ChunkSizeBytes);
      while ((chunk_counter_ & (chunks - 1)) != 0) chunks /= 2;
      const size_t len_bytes = static_cast<size_t>(chunks) * kBlake3ChunkSizeBytes;
      const auto cv = internal::subtree_cv(backend_, p, len_bytes, chunk_counter_, key_words_,
                                           mode_flags_);
      chunk_counter_ += chunks;
      push_subtree_cv(cv, chunk_counter_);
      p += len_bytes;
      n -= len_bytes;
      continue;
    }
    // Within the chunk: a full block is compressed only when more input shows it is not
    // the chunk's last block.
    if (block_len_bytes_ == kBlake3BlockSizeBytes) {
      const uint8_t flags = mode_flags_ | (blocks_compressed_ == 0 ? internal::kFlagChunkStart : 0);
      internal::compress_in_place(chunk_cv_, block_.data(), block_len_bytes_, chunk_counter_,
                                  flags);
      ++blocks_compressed_;
      block_.fill(0);
      block_len_bytes_ = 0;
    }
    const size_t room_bytes = kBlake3ChunkSizeBytes - chunk_len_bytes;
    const size_t take = std::min({n, room_bytes, kBlake3BlockSizeBytes - block_len_bytes_});
    std::memcpy(block_.data() + block_len_bytes_, p, take);
    block_len_bytes_ = static_cast<uint8_t>(block_len_bytes_ + take);
    p += take;
    n -= take;
  }
}

detail::Blake3Node Blake3Hasher::chunk_node() const {
  detail::Blake3Node node;
  node.input_cv = chunk_cv_;
  node.block = block_;
  node.counter = chunk_counter_;
  node.block_len_bytes = block_len_bytes_;
  node.flags = static_cast<uint8_t>(mode_flags_ | internal::kFlagChunkEnd |
                                    (blocks_compressed_ == 0 ? internal::kFlagChunkStart : 0));
  return node;
}

detail::Blake3Node Blake3Hasher::root_node() const {
  // The current chunk holds the last input byte. Fold it into the stack from the right:
  // each stack entry is the left sibling of everything after it.
  detail::Blake3Node node = chunk_node();
  for (size_t i = cv_stack_len_; i > 0; --i) {
    std::array<uint32_t, 8> right = node.input_cv;
    internal::compress_in_place(right, node.block.data(), node.block_len_bytes, node.counter,
                                node.flags);
    node = internal::parent_node(cv_stack_[i - 1], right, key_words_, mode_flags_);
  }
  return node;
}

Blake3Hash Blake3Hasher::finalize() const { return internal::root_hash(root_node()); }

void Blake3Hasher::finalize_xof(uint64_t offset_bytes, std::span<uint8_t> out) const {
  Blake3OutputReader reader = finalize_reader();
  reader.seek(offset_bytes);
  reader.read(out);
}

Blake3OutputReader Blake3Hasher::finalize_reader() const {
  return Blake3OutputReader(root_node());
}

// --- one-shot helpers ------------------------------------------------------------------

Blake3Hash blake3_hash(std::span<const uint8_t> data) {
  Blake3Hasher hasher;
  hasher.update(data);
  return hasher.finalize();
}

Blake3Hash blake3_hash(std::string_view data) {
  Blake3Hasher hasher;
  hasher.update(data);
  return hasher.finalize();
}

Blake3Hash blake3_keyed_hash(const Blake3Key& key, std::span<const uint8_t> data) {
  Blake3Hasher hasher = Blake3Hasher::keyed(key);
  hasher.update(data);
  return hasher.finalize();
}

Blake3Hash blake3_derive_key(std::string_view context, std::span<const uint8_t> key_material) {
  Blake3Hasher hasher = Blake3Hasher::for_derive_key(context);
  hasher.update(key_material);
  return hasher.finalize();
}

// --- verified-streaming building blocks --------------------------------------------------

Blake3Hash blake3_subtree_cv(std::span<const uint8_t> data, uint64_t start_chunk,
                             bool is_root) {
  if (is_root) {
    ASPEN_ASSERT_MSG(start_chunk == 0, "the root subtree starts at chunk 0");
    return blake3_hash(data);
  }
  ASPEN_ASSERT_MSG(!data.empty(), "a non-root subtree has at least one byte");
  const uint64_t num_chunks = (data.size() + kBlake3ChunkSizeBytes - 1) / kBlake3ChunkSizeBytes;
  ASPEN_ASSERT_MSG(start_chunk % std::bit_ceil(num_chunks) == 0,
                   "a subtree starts at a multiple of its size in chunks");
  const Words8 cv = internal::subtree_cv(blake3_best_backend(), data.data(), data.size(),
                                         start_chunk, internal::kIv, 0);
  Blake3Hash out;
  internal::store_words8(out.data(), cv);
  return out;
}

Blake3Hash blake3_parent_cv(const Blake3Hash& left, const Blake3Hash& right, bool is_root) {
  const Words8 left_words = internal::load_words8(left.data());
  const Words8 right_words = internal::load_words8(right.data());
  if (is_root) {
    return internal::root_hash(internal::parent_node(left_words, right_words, internal::kIv, 0));
  }
  Blake3Hash out;
  internal::store_words8(out.data(),
                         internal::parent_cv(left_words, right_words, internal::kIv, 0));
  return out;
}

void blake3_subtree_cvs(std::span<const uint8_t> data, uint64_t start_chunk,
                        uint64_t subtree_chunks, std::span<Blake3Hash> out) {
  ASPEN_ASSERT(std::has_single_bit(subtree_chunks) && start_chunk % subtree_chunks == 0);
  const uint64_t subtree_bytes = subtree_chunks * kBlake3ChunkSizeBytes;
  ASPEN_ASSERT(!data.empty() && out.size() == (data.size() + subtree_bytes - 1) / subtree_bytes);
  const Blake3Backend backend = blake3_best_backend();
  const internal::HashManyFn hash_many = internal::hash_many_for(backend);
  // Complete subtrees, as many per batch as fit kBatchChunks: all their chunks in one kernel
  // call, then their parents level by level (adjacent pairs never cross a subtree, since
  // every subtree is the same power of two of chunks).
  constexpr uint64_t kBatchChunks = 256;  // 8 KiB of chaining values on the stack
  const size_t whole = data.size() / subtree_bytes;
  size_t done = 0;
  if (subtree_chunks <= kBatchChunks) {
    alignas(64) uint8_t cvs[kBatchChunks * kBlake3HashSizeBytes];
    alignas(64) uint8_t next[kBatchChunks / 2 * kBlake3HashSizeBytes];
    const size_t per_batch = static_cast<size_t>(kBatchChunks / subtree_chunks);
    while (done < whole) {
      const size_t m = std::min(per_batch, whole - done);
      size_t n = static_cast<size_t>(m * subtree_chunks);
      hash_many(data.data() + done * subtree_bytes, kBlake3ChunkSizeBytes, n,
                internal::kBlocksPerChunk, internal::kIv, start_chunk + done * subtree_chunks, true,
                0, internal::kFlagChunkStart, internal::kFlagChunkEnd, cvs);
      while (n > m) {
        hash_many(cvs, kBlake3BlockSizeBytes, n / 2, 1, internal::kIv, 0, false,
                  internal::kFlagParent, 0, 0, next);
        n /= 2;
        std::memcpy(cvs, next, n * kBlake3HashSizeBytes);
      }
      for (size_t i = 0; i < m; ++i) {
        std::memcpy(out[done + i].data(), cvs + i * kBlake3HashSizeBytes, kBlake3HashSizeBytes);
      }
      done += m;
    }
  }
  // Larger subtrees (already wide enough on their own) and a short last one.
  for (; done < out.size(); ++done) {
    const size_t offset = done * subtree_bytes;
    const size_t len = std::min<size_t>(subtree_bytes, data.size() - offset);
    const Words8 cv = internal::subtree_cv(backend, data.data() + offset, len,
                                           start_chunk + done * subtree_chunks, internal::kIv, 0);
    internal::store_words8(out[done].data(), cv);
  }
}

std::string blake3_to_hex(std::span<const uint8_t> bytes) {
  return to_hex(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

}  // namespace aspen::crypto
