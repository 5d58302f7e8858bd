#include "core/hlc.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>

#include "core/assert.h"

namespace aspen {

std::string HlcTimestamp::to_string() const { return fmt::format("{}.{}@{}", physical_ms, logical, node_id); }

HybridLogicalClock::HybridLogicalClock(NodeId node_id, uint64_t max_offset_ms)
    : node_id_(node_id), max_offset_ms_(max_offset_ms) {
  ASPEN_ASSERT(node_id != kNoNode);
}

HlcTimestamp HybridLogicalClock::set(uint64_t l, uint64_t c) {
  if (c > std::numeric_limits<uint32_t>::max()) {
    ++l;
    c = 0;
  }
  // The clock never goes back.
  ASPEN_ASSERT(l > physical_ms_ || (l == physical_ms_ && c > logical_) || (physical_ms_ == 0 && logical_ == 0));
  physical_ms_ = l;
  logical_ = static_cast<uint32_t>(c);
  return last();
}

HlcTimestamp HybridLogicalClock::now(uint64_t physical_ms) {
  // §3.3 of the paper, send or local event: l' = max(l, pt); c counts events within l'.
  if (physical_ms > physical_ms_) return set(physical_ms, 0);
  return set(physical_ms_, uint64_t{logical_} + 1);
}

Result<HlcTimestamp> HybridLogicalClock::update(const HlcTimestamp& remote, uint64_t physical_ms) {
  if (remote.physical_ms > physical_ms && remote.physical_ms - physical_ms > max_offset_ms_) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("a timestamp {} ms ahead of this node's clock (at most {} ms): {}",
                                  remote.physical_ms - physical_ms, max_offset_ms_, remote.to_string()));
  }
  // Receive event: l' = max(l, l_m, pt); c follows whichever of l and l_m reached l'.
  const uint64_t l = std::max({physical_ms_, remote.physical_ms, physical_ms});
  if (l == physical_ms_ && l == remote.physical_ms) {
    return set(l, uint64_t{std::max(logical_, remote.logical)} + 1);
  }
  if (l == physical_ms_) return set(l, uint64_t{logical_} + 1);
  if (l == remote.physical_ms) return set(l, uint64_t{remote.logical} + 1);
  return set(l, 0);
}

}  // namespace aspen
