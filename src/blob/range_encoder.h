// The sender's side of verified streaming: a byte range of a blob, encoded with the tree
// nodes a receiver needs to check every byte of it against the blob's hash (RangeVerifier).
//
// The encoding of a range of a blob of size S (both sides clamp the range with clamp_range,
// then cover it with whole chunk groups) is a pre-order walk over the nodes of the blob's
// tree (blob/outboard.h) whose groups overlap the covered groups:
//   - a parent: its 64 bytes (left child's chaining value, right child's), as in the outboard;
//   - a group: its data, kBlobChunkGroupBytes, or fewer for the last group of the blob.
// Nothing else: no lengths, no tags, no root. Every frame's size follows from S and the
// range, which the receiver knows before the first byte, so it can check each parent as soon
// as its 64 bytes arrive and each group before it lets a byte of it go. A range over all of
// a blob encodes to S + outboard_size_bytes(S) bytes; an empty range to nothing.
//
//   Status s = encode_range(root, size_bytes, outboard, blob_reader, {start, end},
//                           [&](std::span<const uint8_t> frame) { return stream.send(frame); });
//
// The sender checks what it sends: each parent against the value its parent (or the root)
// gives, each group against its parent's value, before writing it. A corrupt local blob or
// outboard is reported as Corruption naming the node, and nothing from that node on is sent.
#pragma once

#include <cstdint>
#include <span>

#include "blob/blob_io.h"
#include "blob/byte_range.h"
#include "core/error.h"
#include "crypto/blake3.h"

namespace aspen::blob {

// Bytes encode_range writes for `range` of a blob of `size_bytes` (after clamping); the
// errors are clamp_range's.
Result<uint64_t> encoded_range_size_bytes(uint64_t size_bytes, ByteRange range);

// Writes the encoding of `range` of the blob with hash `root` and size `size_bytes`, whose
// outboard is `outboard` (outboard_size_bytes(size_bytes) bytes; a memory-mapped file will
// do) and whose data `reader` reads. Each call to `writer` is one parent or one group.
// Errors: clamp_range's; an outboard of the wrong size (InvalidArgument); a parent or group
// that does not match (Corruption); the reader's and the writer's own.
Status encode_range(const crypto::Blake3Hash& root, uint64_t size_bytes,
                    std::span<const uint8_t> outboard, const BlobReader& reader, ByteRange range,
                    const BlobWriter& writer);

}  // namespace aspen::blob
