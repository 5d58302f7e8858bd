// The seams a blob's bytes move through: src/blob does no I/O of its own.
//
// Whoever holds the bytes (a file, an mmap, a buffer in a test, a store's read path) passes a
// BlobReader; whoever sends them (a QUIC stream, a buffer) passes a BlobWriter. Both are plain
// callables, so a test can inject short reads, failing reads and failing writes.
//
//   BlobReader reader = blob_reader_over(bytes);          // or any callable of that shape
//   Status s = read_exact(reader, offset_bytes, buffer);  // fills all of buffer, or an error
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>

#include "core/error.h"

namespace aspen::blob {

// Reads up to out.size() bytes of the blob starting at `offset_bytes` into `out` and returns
// how many it read: a short read is allowed (read_exact asks again), 0 means the blob ends
// there. Returning more than out.size() is a broken reader (an assert fires).
using BlobReader = std::function<Result<size_t>(uint64_t offset_bytes, std::span<uint8_t> out)>;

// Takes the next piece of a stream (every byte of it, or an error that stops the stream).
using BlobWriter = std::function<Status(std::span<const uint8_t> bytes)>;

// Fills all of `out` from `offset_bytes` on, asking `reader` as often as it takes. A reader
// that ends early gives a Corruption error naming the offset (the blob is shorter than the
// size it was said to have); a reader's own error is passed on unchanged.
Status read_exact(const BlobReader& reader, uint64_t offset_bytes, std::span<uint8_t> out);

// A reader over bytes in memory, which must outlive it.
BlobReader blob_reader_over(std::span<const uint8_t> bytes);

}  // namespace aspen::blob
