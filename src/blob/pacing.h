// Pacing of a byte stream to a rate: how long after a transfer began a given number of
// bytes may have arrived. Replication fetches (docs/blobs.md) wait until that moment
// before reading more, so a member's background fetches never take more than
// blob_replication_bytes_per_s of its network and disk from Raft and clients. Pure.
#pragma once

#include <cstdint>

#include "core/assert.h"

namespace aspen::blob {

// The highest rate a pace may name (1 TiB/s): far above any link, and low enough that the
// arithmetic below cannot overflow.
inline constexpr uint64_t kMaxPacedBytesPerS = uint64_t{1} << 40;

// Microseconds from the start of a transfer paced at bytes_per_s (0: not paced) until
// bytes_done bytes are due; a transfer that is ahead of this waits, one that is behind
// does not (a slow start is not made up by a burst beyond the network's own speed, as
// the sender is the limit then).
constexpr uint64_t paced_elapsed_us(uint64_t bytes_done, uint64_t bytes_per_s) {
  if (bytes_per_s == 0) return 0;
  ASPEN_ASSERT(bytes_per_s <= kMaxPacedBytesPerS);
  constexpr uint64_t kUsPerS = 1000000;
  // Whole seconds, then the remainder: remainder * 1e6 < 2^40 * 2^20, so no overflow.
  const uint64_t whole_s = bytes_done / bytes_per_s;
  const uint64_t rest = bytes_done % bytes_per_s;
  return whole_s * kUsPerS + rest * kUsPerS / bytes_per_s;
}

}  // namespace aspen::blob
