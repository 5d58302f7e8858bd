// BLAKE3: Aspen's content hash (blob addresses, verified streaming, key derivation).
//
// A pure module: no I/O, no globals that change after start-up. Three modes, as the BLAKE3
// specification defines them: plain hash, keyed hash (32-byte key, a MAC/PRF) and derive-key
// (a context string fixed at design time plus key material). Every mode has an extendable
// output: any number of bytes, readable from any offset.
//
// Use the one-shot helpers for data in memory:
//   Blake3Hash h = blake3_hash(bytes);
//   Blake3Hash h = blake3_hash_parallel(bytes, /*num_threads=*/2);   // large inputs
// and a Blake3Hasher for data that arrives in pieces:
//   Blake3Hasher hasher;                 // or Blake3Hasher::keyed(key) / ::for_derive_key(ctx)
//   hasher.update(piece); ...            // any piece sizes; the result does not depend on them
//   Blake3Hash h = hasher.finalize();    // or finalize_xof(offset, out) / finalize_reader()
//
// For verified streaming (an outboard tree over chunk groups), blake3_subtree_cv() gives the
// chaining value of a run of whole chunks and blake3_parent_cv() combines two children; the
// node that covers the whole input must be computed with is_root = true, and then its value
// is the hash. Both work in plain hash mode, the mode content addressing uses.
//
// Speed: the compression of many chunks (and parent nodes) at once uses SSE4.1, AVX2 or
// AVX-512 when the CPU has it, chosen at run time; a portable implementation is the fallback
// and the reference the SIMD paths are tested against.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace aspen::crypto {

inline constexpr size_t kBlake3HashSizeBytes = 32;
inline constexpr size_t kBlake3KeySizeBytes = 32;
inline constexpr size_t kBlake3BlockSizeBytes = 64;
inline constexpr size_t kBlake3ChunkSizeBytes = 1024;

// A digest, or a chaining value (the 32-byte value of an inner node of the tree).
using Blake3Hash = std::array<uint8_t, kBlake3HashSizeBytes>;
using Blake3Key = std::array<uint8_t, kBlake3KeySizeBytes>;

// The compression kernels. kPortable runs everywhere; the others need the CPU feature.
enum class Blake3Backend : uint8_t { kPortable, kSse41, kAvx2, kAvx512 };

bool blake3_backend_is_supported(Blake3Backend backend) noexcept;
// The fastest backend this CPU supports; what every hasher uses unless told otherwise.
Blake3Backend blake3_best_backend() noexcept;
std::string_view blake3_backend_name(Blake3Backend backend) noexcept;

namespace detail {
// The node whose compression produces output: the root when finalizing. Kept whole (not
// just its 32-byte value) because extended output recompresses it with a block counter.
struct Blake3Node {
  std::array<uint32_t, 8> input_cv{};
  std::array<uint8_t, kBlake3BlockSizeBytes> block{};
  uint64_t counter = 0;
  uint8_t block_len_bytes = 0;
  uint8_t flags = 0;
};
}  // namespace detail

// Reads the extended output of a finalized hash, from position 0 or any seeked position.
// The first 32 bytes are the hash. Reading is deterministic: seek(p) then read(n) gives the
// same bytes however the reads before were split.
class Blake3OutputReader {
 public:
  void read(std::span<uint8_t> out);
  void seek(uint64_t position_bytes) noexcept { position_bytes_ = position_bytes; }
  uint64_t position_bytes() const noexcept { return position_bytes_; }

 private:
  friend class Blake3Hasher;
  explicit Blake3OutputReader(const detail::Blake3Node& root) : root_(root) {}

  detail::Blake3Node root_;
  uint64_t position_bytes_ = 0;
};

// Incremental hasher. A value type: copying it forks the state (hash a common prefix once,
// then finish two ways). Finalizing does not change the state, so update() may continue.
class Blake3Hasher {
 public:
  Blake3Hasher();  // plain hash mode
  static Blake3Hasher keyed(const Blake3Key& key);
  // Derive-key mode: `context` should be a hard-coded, globally unique, application-specific
  // string (e.g. "aspen 2026-01-01 blob ticket signing key"); the key material goes in update().
  static Blake3Hasher for_derive_key(std::string_view context);

  void update(std::span<const uint8_t> data);
  void update(std::string_view data);

  Blake3Hash finalize() const;
  // Fills `out` with the extended output starting at byte `offset_bytes`.
  void finalize_xof(uint64_t offset_bytes, std::span<uint8_t> out) const;
  Blake3OutputReader finalize_reader() const;

  // Back to an empty input, keeping mode and key.
  void reset();
  // Forces a kernel, for tests and benchmarks. Asserts that the CPU supports it.
  void set_backend(Blake3Backend backend);

 private:
  Blake3Hasher(const std::array<uint32_t, 8>& key_words, uint8_t mode_flags);
  void push_subtree_cv(const std::array<uint32_t, 8>& cv, uint64_t end_chunk);
  void flush_full_chunk();
  detail::Blake3Node chunk_node() const;
  detail::Blake3Node root_node() const;

  // The maximum tree depth: 2^64 bytes are 2^54 chunks.
  static constexpr size_t kMaxStackDepth = 54;

  std::array<uint32_t, 8> key_words_;
  uint8_t mode_flags_;
  Blake3Backend backend_;
  // The chunk being filled: at most kBlake3ChunkSizeBytes; holds the last input byte (a full
  // chunk is compressed only once more input shows it is not the last, so not the root).
  std::array<uint32_t, 8> chunk_cv_;
  uint64_t chunk_counter_ = 0;
  std::array<uint8_t, kBlake3BlockSizeBytes> block_{};
  uint8_t block_len_bytes_ = 0;
  uint8_t blocks_compressed_ = 0;
  // Chaining values of the complete subtrees left of the current chunk, largest first:
  // always the binary decomposition of chunk_counter_ (one entry per set bit).
  std::array<std::array<uint32_t, 8>, kMaxStackDepth> cv_stack_;
  size_t cv_stack_len_ = 0;
};

Blake3Hash blake3_hash(std::span<const uint8_t> data);
Blake3Hash blake3_hash(std::string_view data);
Blake3Hash blake3_keyed_hash(const Blake3Key& key, std::span<const uint8_t> data);
Blake3Hash blake3_derive_key(std::string_view context, std::span<const uint8_t> key_material);

// The plain hash of `data`, computed by up to `num_threads` threads (>= 1), each hashing whole
// subtrees; equal to blake3_hash(data). Small inputs are hashed on the calling thread. Every
// thread started is joined before returning.
Blake3Hash blake3_hash_parallel(std::span<const uint8_t> data, size_t num_threads);

// Chaining value (plain hash mode) of the subtree made of `data`, whose first chunk is chunk
// number `start_chunk` of the whole input. `data` must be either a complete subtree (2^k whole
// chunks, start_chunk a multiple of 2^k, e.g. a 16 KiB chunk group) or the last subtree of the
// input (fewer chunks, the last possibly partial). With is_root, `data` is the whole input
// (start_chunk 0) and the result is its hash.
Blake3Hash blake3_subtree_cv(std::span<const uint8_t> data, uint64_t start_chunk, bool is_root);
// Chaining value of the parent of two subtrees (the left one complete); with is_root, the hash
// of the input they cover together.
Blake3Hash blake3_parent_cv(const Blake3Hash& left, const Blake3Hash& right, bool is_root);

// Chaining values of consecutive subtrees of `subtree_chunks` chunks each (a power of two),
// the first starting at chunk `start_chunk` (a multiple of subtree_chunks): out[i] is
// blake3_subtree_cv of data's i-th run of subtree_chunks * 1 KiB bytes, and the last run may
// be short (it must then be the input's last subtree). out.size() must be that number of
// runs, at least one. Faster than one blake3_subtree_cv per run for small subtrees (chunk
// groups): the chunks and parents of many runs share the wide kernels' lanes.
void blake3_subtree_cvs(std::span<const uint8_t> data, uint64_t start_chunk,
                        uint64_t subtree_chunks, std::span<Blake3Hash> out);

// Lower-case hex, as b3sum prints it.
std::string blake3_to_hex(std::span<const uint8_t> bytes);

}  // namespace aspen::crypto
