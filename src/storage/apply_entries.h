// Internal to src/storage: applying committed Raft entries to the state machine tables, the
// part of a write transaction shared by LmdbStore and MemStore.
#pragma once

#include <optional>
#include <vector>

#include "aspen/raft.pb.h"
#include "core/hlc.h"
#include "kv/tables.h"
#include "storage/store.h"

namespace aspen::storage {

struct ApplyState {
  Index applied = 0;
  Term applied_term = 0;
  pb::ConfState conf_state;
  // The largest HLC stamp of the commands applied so far (nullopt: none carried one). Kept
  // with the applied index, in the same transaction, and carried by snapshots: the floor a
  // restarted node's stamps go above when its log holds no stamped entry (node/node_hlc.h).
  std::optional<HlcTimestamp> hlc;
};

// Applies entries after state.applied in order, updating `state`. Entries at or below the
// applied index are skipped (a Ready may repeat them after a snapshot). A gap is Corruption.
Result<std::vector<AppliedEntry>> apply_entries(kv::KvTables& tables, const std::vector<pb::Entry>& entries,
                                                ApplyState& state);

// apply_entries of batch.committed, serving batch.on_history and batch.on_results (store.h):
// the history entries they write are recorded, up to limits::kMaxWatchEarlyBytes, and handed
// over once applied, then the results, both before the caller commits.
Result<std::vector<AppliedEntry>> apply_batch(kv::KvTables& tables, const WriteBatch& batch, ApplyState& state);

}  // namespace aspen::storage
