// When a node compacts its Raft log: a pure policy, applied by the storage thread after each
// write. A log is compacted when it holds too many entries or too many bytes, always well
// behind the applied index, so a follower that lags a little still catches up from entries
// and only one far behind needs a snapshot.
#pragma once

#include <cstdint>

#include "core/types.h"

namespace aspen::node {

// Entries kept behind the applied index when compacting, and how far applied must run ahead
// of the first entry before a compaction.
inline constexpr uint64_t kCompactKeepEntries = 5000;
inline constexpr uint64_t kCompactThresholdEntries = 20000;
// The same in bytes, for logs of few but large entries (bulk SetMulti batches): compact once
// the log passes kCompactThresholdBytes, keeping about kCompactKeepBytes behind applied.
inline constexpr uint64_t kCompactThresholdBytes = uint64_t{64} << 20;
inline constexpr uint64_t kCompactKeepBytes = uint64_t{16} << 20;
static_assert(kCompactKeepBytes < kCompactThresholdBytes && kCompactKeepEntries < kCompactThresholdEntries);

// The index to compact the log up to (inclusive), or 0 for not now. `first` and `last` are
// the log's first and last indexes, `log_bytes` its size on disk.
Index compaction_point(Index first, Index last, Index applied, uint64_t log_bytes);

}  // namespace aspen::node
