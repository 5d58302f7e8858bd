#include "blob/blob_io.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "core/assert.h"

namespace aspen::blob {

Status read_exact(const BlobReader& reader, uint64_t offset_bytes, std::span<uint8_t> out) {
  size_t done = 0;
  while (done < out.size()) {
    const uint64_t at = offset_bytes + done;
    Result<size_t> n = reader(at, out.subspan(done));
    if (!n) return std::unexpected(n.error());
    ASPEN_ASSERT_MSG(*n <= out.size() - done, "a BlobReader returned more bytes than asked for");
    if (*n == 0) {
      return make_error(ErrorCode::kCorruption, "blob data ends at byte " + std::to_string(at) +
                                                    ", " + std::to_string(out.size() - done) +
                                                    " bytes before the size it was given");
    }
    done += *n;
  }
  return {};
}

BlobReader blob_reader_over(std::span<const uint8_t> bytes) {
  return [bytes](uint64_t offset_bytes, std::span<uint8_t> out) -> Result<size_t> {
    if (offset_bytes >= bytes.size()) return size_t{0};
    const size_t n = std::min<uint64_t>(out.size(), bytes.size() - offset_bytes);
    std::memcpy(out.data(), bytes.data() + offset_bytes, n);
    return n;
  };
}

}  // namespace aspen::blob
