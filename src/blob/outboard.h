// Outboards: the BLAKE3 tree of a blob, kept beside the blob, so that any byte range of it
// can be sent with exactly the nodes a receiver needs to check it against the 32-byte hash.
//
// The tree's leaves are chunk groups of kBlobChunkGroupBytes (16 KiB; the last group may be
// short). The outboard holds every parent node above the groups, in pre-order (a node, then
// its left subtree, then its right subtree; see blob/internal/tree.h for the shape), each as
// 64 bytes: the left child's chaining value, then the right child's. Nothing else: no header,
// no length, no root. The blob's size is kept separately and fixes the shape, so parent p of
// a blob is always at bytes [64 p, 64 p + 64) and a blob of n groups has n - 1 parents
// (outboard_size_bytes). A blob of at most one group has an empty outboard; its hash is the
// hash of its data. The root's value is the blob's BLAKE3 hash, as b3sum prints it.
//
//   Result<Outboard> ob = compute_outboard(size_bytes, blob_reader_over(bytes));
//   store(ob->root, ob->size_bytes, ob->parents);   // 1/256 of the data, plus 32 bytes
//
// compute_outboard reads the blob once, front to back, in batches of a few groups: besides
// the outboard it returns, it keeps one batch and one chaining value per tree level.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "blob/blob_io.h"
#include "core/error.h"
#include "crypto/blake3.h"

namespace aspen::blob {

struct Outboard {
  crypto::Blake3Hash root{};     // the blob's BLAKE3 hash
  uint64_t size_bytes = 0;       // the blob's size, which fixes the tree's shape
  std::vector<uint8_t> parents;  // pre-order parent nodes, 64 bytes each
};

// Groups in a blob of `size_bytes` (at least 1: an empty blob is one empty group).
uint64_t num_chunk_groups(uint64_t size_bytes);

// 64 * (num_chunk_groups(size_bytes) - 1): 0 up to one group, then 64 bytes per extra group.
uint64_t outboard_size_bytes(uint64_t size_bytes);

// Reads `size_bytes` of blob through `reader` and returns its hash and outboard. Errors: the
// size above kMaxBlobSizeBytes (InvalidArgument), a reader that ends before `size_bytes`
// (Corruption), the reader's own errors.
Result<Outboard> compute_outboard(uint64_t size_bytes, const BlobReader& reader);

// The same for a blob that is all in memory (or memory-mapped): hashed in place, no copy.
Result<Outboard> compute_outboard(std::span<const uint8_t> data);

}  // namespace aspen::blob
