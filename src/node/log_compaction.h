// When a node compacts its Raft log: a pure policy, applied by the storage thread after each
// write. A log is compacted when it holds too many entries or too many bytes, always well
// behind the applied index, so a follower that lags a little still catches up from entries
// and only one far behind needs a snapshot.
#pragma once

#include <cstdint>

#include "core/types.h"
#include "node/knobs.h"

namespace aspen::node {

// The index to compact the log up to (inclusive), or 0 for not now. `first` and `last` are
// the log's first and last indexes, `log_bytes` its size on disk. A log is compacted once
// more than knobs.compact_threshold_entries applied entries or compact_threshold_bytes sit
// in it, keeping compact_keep_entries (or about compact_keep_bytes) behind applied.
Index compaction_point(Index first, Index last, Index applied, uint64_t log_bytes, const Knobs& knobs);

}  // namespace aspen::node
