#include "node/log_compaction.h"

#include <algorithm>

#include "core/buggify.h"

namespace aspen::node {

Index compaction_point(Index first, Index last, Index applied, uint64_t log_bytes, const Knobs& knobs) {
  if (applied < first || last < first) return 0;
  const uint64_t entries = last - first + 1;
  const bool is_long = applied > first + knobs.compact_threshold_entries;
  const bool is_big = log_bytes > knobs.compact_threshold_bytes;
  if (!is_long && !is_big) {
    // BUGGIFY: compact now, halfway to applied. Any point up to the applied index is legal;
    // followers that need what is gone get a snapshot.
    if (applied > first && ASPEN_BUGGIFY("node.compaction_early")) return first + (applied - first) / 2;
    return 0;
  }
  uint64_t keep = knobs.compact_keep_entries;
  if (is_big) {
    // Entries are assumed of average size; the log ends up near compact_keep_bytes.
    const uint64_t average_bytes = std::max<uint64_t>(1, log_bytes / entries);
    keep = std::min(keep, knobs.compact_keep_bytes / average_bytes);
  }
  if (applied <= first + keep) return 0;  // everything applied is still to be kept
  return applied - keep;
}

}  // namespace aspen::node
