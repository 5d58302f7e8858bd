// A requested byte range of a blob, checked against the blob's size.
//
// Both ends of a range transfer (the sender's encode_range and the receiver's RangeVerifier)
// turn a request into the same clamped range with clamp_range, so they agree on which chunk
// groups it covers:
//   Result<ByteRange> r = clamp_range(size_bytes, {start, end});
#pragma once

#include <cstdint>
#include <string>

#include "core/error.h"

namespace aspen::blob {

// Bytes [start_bytes, end_bytes) of a blob.
struct ByteRange {
  uint64_t start_bytes = 0;
  uint64_t end_bytes = 0;

  uint64_t size_bytes() const noexcept { return end_bytes - start_bytes; }
  bool is_empty() const noexcept { return start_bytes == end_bytes; }
  friend bool operator==(const ByteRange&, const ByteRange&) = default;
};

// The range as served for a blob of `size_bytes`: an end past the blob is cut to its size
// (as an HTTP range is), so [0, UINT64_MAX) means "all of it". Errors (InvalidArgument): a
// start after the end, a start past the end of the blob, a size above kMaxBlobSizeBytes. An
// empty result is allowed and is encoded as nothing; it proves nothing either.
Result<ByteRange> clamp_range(uint64_t size_bytes, ByteRange range);

// "[start, end)", for messages.
std::string to_string(const ByteRange& range);

}  // namespace aspen::blob
