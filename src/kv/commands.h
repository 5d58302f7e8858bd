// Validation of client commands and reads at the boundary, before they reach Raft.
//
// Every limit from core/limits.h that a client can hit is checked here and reported with an
// error that names the limit, so a bad request is refused before it costs a log entry.
#pragma once

#include "aspen/kv.pb.h"
#include "core/encoding.h"
#include "core/error.h"

namespace aspen::kv {

Status validate_key(std::string_view key);
Status validate_value(std::string_view value);
// A range's bounds, limit and continuation token (a page's token: kContinuationVersion
// followed by the last key returned, which must lie inside the range).
Status validate_range(const kvpb::RangeRequest& range);
inline constexpr char kContinuationVersion = 1;
// Validates a write command (everything but timestamp_ms, which the leader stamps).
Status validate_command(const kvpb::Command& cmd);

// A versionstamp (kv.proto, Put): the command's revision, 8 bytes big-endian, then the put's
// order within the command, 2 bytes big-endian. Byte order is commit order.
inline constexpr size_t kVersionstampSizeBytes = 10;
// Overwrites bytes[offset, offset + 10) with the stamp; the offset was validated.
void write_versionstamp(std::string& bytes, uint32_t offset, uint64_t revision, uint16_t order);

// A key's value as a counter: a decimal int64 ("" is not one). Add and coord's counters.
Result<int64_t> parse_int64_value(std::string_view value);
// value + delta, or InvalidArgument naming the overflow.
Result<int64_t> checked_add(int64_t value, int64_t delta);

// The range holding exactly `key`: [key, key + NUL). A get is a range read of it.
kvpb::RangeRequest key_range(std::string_view key);

// The smallest key greater than every key with this prefix ("" when there is none).
using aspen::prefix_end;
// Where a range ends (exclusive; "" when it runs to the end of the key space): its prefix's
// end for a prefix range, else its `end`.
inline std::string range_end(const kvpb::RangeRequest& range) {
  return range.is_prefix() ? prefix_end(range.start()) : range.end();
}

}  // namespace aspen::kv
