// Store: the node's durable state — the Raft log, Raft hard state and membership, and the
// key-value state machine — behind one interface with two implementations: LmdbStore
// (production: the log in its own append-only files, the state machine in LMDB) and
// MemStore (tests and simulation, with crash semantics).
//
// A Raft Ready is persisted in two phases, so that a commit waits for one sequential log
// sync and never for the state machine's B-tree:
//   1. write_log(): snapshot, new entries and hard state. Durable when it returns (the one
//      exception: a batch that only moves the commit index, see may_skip_sync). A crash
//      keeps a prefix of it at worst (a new term without its entries, or fewer entries).
//   2. apply(): the committed entries applied to the state machine together with the
//      applied index, atomically. A crash may undo applies until the store next syncs the
//      state machine (compaction does); the node then applies the entries again from the
//      log, which keeps every entry above the durable applied index.
// Messages that depend on the Ready's log (acknowledgements of appends, votes) may leave
// after phase 1.
//
// A Store is also the RaftCore's LogStorage. The writes run on one thread (the storage
// thread); the LogStorage and read methods may run concurrently on another.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "aspen/kv.pb.h"
#include "aspen/raft.pb.h"
#include "core/error.h"
#include "core/hlc.h"
#include "kv/mvcc.h"
#include "raft/log_storage.h"

namespace aspen::storage {

namespace pb = aspen::raftpb;

struct AppliedEntry {
  Index index = 0;
  Term term = 0;
  pb::EntryType type = pb::ENTRY_NORMAL;
  kvpb::CommandResult result;  // ENTRY_NORMAL with a command
};

// What one Ready asks of storage. Pointers may be null / vectors empty.
struct WriteBatch {
  const pb::Snapshot* snapshot = nullptr;               // install first, replacing everything
  // If set, the snapshot's data (length-prefixed SnapshotChunks, the format of
  // pb::Snapshot.data) is read from this file instead: a node receives large snapshots to
  // disk rather than memory.
  const std::string* snapshot_data_path = nullptr;
  const std::vector<pb::Entry>* entries = nullptr;      // append, truncating a conflicting suffix
  const pb::HardState* hard_state = nullptr;
  const std::vector<pb::Entry>* committed = nullptr;    // apply in order (already-applied ones are skipped)
  // False when the batch only applies committed entries and moves the commit index: a
  // crash may then undo it (the entries are re-applied from the durable log on restart), so
  // a store may skip part of its flushing. Atomicity is never relaxed.
  bool is_sync_required = true;
  // If set, apply() calls it once the committed entries are applied and before it commits
  // them, with the applied index they were applied after (every earlier change is below it)
  // and the history entries they wrote, in (revision, position) order; not called if those
  // come to more than limits::kMaxWatchEarlyBytes or no key changed. Those changes are final:
  // the entries are committed, and a crash before the store's commit applies them again to
  // the same result. Called on the applying thread, at most once per apply().
  std::function<void(Index after_index, std::vector<kvpb::HistoryEntry>)> on_history;
  // If set, apply() calls it with the results once the committed entries are applied and
  // before it commits them (after on_history). They are final for the same reason: a crash
  // before the commit, or a failed commit retried, applies the same entries to the same
  // state again. The state machine shows them to readers only once apply() returns. It may
  // take the results' payloads (`result`); apply() then returns them without. Called on the
  // applying thread, at most once per apply().
  std::function<void(std::vector<AppliedEntry>&)> on_results;
};

// Whether a store may commit `batch` without its full flush: only when the batch asks for no
// sync and carries no snapshot and no entries. LmdbStore skips the meta-page sync
// (MDB_NOMETASYNC) then; MemStore models an OS crash undoing it.
inline bool may_skip_sync(const WriteBatch& batch) {
  return !batch.is_sync_required && batch.snapshot == nullptr && (batch.entries == nullptr || batch.entries->empty());
}

// For a store's apply(): hands what `recorder` kept to batch.on_history (nothing when the
// changes overflowed its bound or there were none).
inline void report_history(const WriteBatch& batch, Index after_index, kv::HistoryRecorder& recorder) {
  if (recorder.is_overflowed()) return;
  auto entries = recorder.take();
  if (!entries.empty()) batch.on_history(after_index, std::move(entries));
}

struct WriteOutcome {
  std::vector<AppliedEntry> applied;
  size_t entries_appended = 0;
};

class Store : public raft::LogStorage {
 public:
  // Phase 1: batch.snapshot (installed first, replacing the state machine and the log),
  // batch.entries, batch.hard_state. StorageFull when the disk or map is full (the caller
  // retries the same batch; reads keep working), Corruption on a checksum failure.
  virtual Status write_log(const WriteBatch& batch) = 0;
  // Phase 2: applies batch.committed in order (entries at or below the applied index are
  // skipped) with the new applied index and membership, all or nothing.
  virtual Result<std::vector<AppliedEntry>> apply(const WriteBatch& batch) = 0;
  // Both phases, for callers that send nothing in between.
  Result<WriteOutcome> write(const WriteBatch& batch);

  // Reads of the applied state machine.
  virtual Result<kvpb::RangeResult> range(const kvpb::RangeRequest& request) const = 0;
  // Leases with ids above after_id, in id order, at most `limit`.
  virtual Result<std::vector<kvpb::Lease>> list_leases(uint64_t after_id, size_t limit) const = 0;
  virtual Result<std::vector<uint64_t>> expired_leases(uint64_t now_ms, size_t limit) const = 0;
  // Entries of the history from (revision, position) on, for watchers (kv::read_history).
  virtual Result<kv::HistoryPage> read_history(Index revision, uint32_t position, size_t limit, size_t max_bytes,
                                               bool with_prev) const = 0;
  // The revision history retention asks to compact to now (kv::retention_target), if any.
  virtual Result<std::optional<Index>> history_retention_target(uint64_t now_ms, uint64_t keep_revisions,
                                                                uint64_t max_age_ms) const = 0;

  virtual Index applied_index() const = 0;
  // The largest HLC stamp among the commands applied (nullopt: none carried one). Written with
  // the applied index and carried by snapshots, so it survives restarts and log compaction:
  // a restarted node's proposals are stamped above it (node/node_hlc.h).
  virtual std::optional<HlcTimestamp> applied_hlc() const = 0;
  virtual pb::ConfState conf_state() const = 0;

  // Writes the founding membership into an empty store (term 1, index 1): the state every
  // founding member of a new cluster starts from. Fails if the store is not empty.
  virtual Status bootstrap(const pb::ConfState& voters) = 0;
  // Discards log entries up to and including `index` (which must be applied).
  virtual Status compact(Index index) = 0;
  // Bytes the Raft log occupies (the entries not compacted away). The node compacts on this
  // as well as on the number of entries: a few huge batches fill a disk as surely as many
  // small entries.
  virtual uint64_t log_size_bytes() const = 0;
  // Bytes the state machine occupies now: what a storage quota is measured against. Space
  // freed by deletes counts as free at once (LMDB reuses it), although the file does not
  // shrink.
  virtual uint64_t state_size_bytes() const = 0;
  // On demand (an operator's "snapshot now"): compacts the log up to the applied index and
  // returns the metadata a snapshot built now would carry. Followers behind that point
  // receive the state as a snapshot.
  Result<pb::SnapshotMetadata> trigger_snapshot();
  // A consistent snapshot of the state machine at the applied index, streamed in chunks of
  // bounded size (each a serialized SnapshotChunk). Returns the snapshot's metadata.
  virtual Result<pb::SnapshotMetadata> stream_snapshot(
      const std::function<Status(std::string_view chunk)>& sink) const = 0;
};

// History entries one retention check may look at (its cost is bounded; a long backlog is
// compacted over several checks).
inline constexpr size_t kRetentionExamined = 10000;

// Builds a whole pb::Snapshot (data = the chunks, length-prefixed) up to max_size_bytes.
Result<pb::Snapshot> build_snapshot(const Store& store, size_t max_size_bytes);

}  // namespace aspen::storage
