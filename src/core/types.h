// Small vocabulary types shared by every module.
#pragma once

#include <cstdint>
#include <limits>

namespace aspen {

// A node's numeric id inside one cluster. 0 means "none" (no leader, no vote).
using NodeId = uint64_t;
inline constexpr NodeId kNoNode = 0;

// Raft log position and term.
using Index = uint64_t;
using Term = uint64_t;

inline constexpr uint64_t kNoLimit = std::numeric_limits<uint64_t>::max();

}  // namespace aspen
