#include "blob/byte_range.h"

#include <algorithm>

#include "blob/internal/tree.h"

namespace aspen::blob {

Result<ByteRange> clamp_range(uint64_t size_bytes, ByteRange range) {
  if (Status s = internal::check_blob_size(size_bytes); !s) return std::unexpected(s.error());
  if (range.start_bytes > range.end_bytes) {
    return make_error(ErrorCode::kInvalidArgument,
                      "range " + to_string(range) + " starts after it ends");
  }
  if (range.start_bytes > size_bytes) {
    return make_error(ErrorCode::kInvalidArgument, "range " + to_string(range) +
                                                       " starts past the end of a blob of " +
                                                       std::to_string(size_bytes) + " bytes");
  }
  return ByteRange{range.start_bytes, std::min(range.end_bytes, size_bytes)};
}

std::string to_string(const ByteRange& range) {
  return "[" + std::to_string(range.start_bytes) + ", " + std::to_string(range.end_bytes) + ")";
}

}  // namespace aspen::blob
