// MemStore: the Store in memory, for tests and the simulator.
//
// Crash semantics: with auto_sync on (the default) a write() is durable as soon as it
// returns, like LmdbStore, with LmdbStore's one exception: a batch that needs no sync
// (is_sync_required false, no snapshot, no entries: it only applies entries and moves the
// commit index) becomes durable with the next write or compaction that syncs, and crash()
// undoes it until then, as an OS crash may undo LMDB's last MDB_NOMETASYNC commit. With
// auto_sync off, writes are visible but not durable until sync(); crash() throws away
// everything written since the last sync, as a power failure would drop an unsynced page
// cache.
#pragma once

#include <memory>
#include <mutex>

#include "kv/mem_tables.h"
#include "raft/log_storage.h"
#include "storage/apply_entries.h"
#include "storage/store.h"

namespace aspen::storage {

class MemStore final : public Store {
 public:
  MemStore();

  Result<WriteOutcome> write(const WriteBatch& batch) override;
  Result<kvpb::RangeResult> range(const kvpb::RangeRequest& request) const override;
  Result<std::vector<kvpb::Lease>> list_leases() const override;
  Result<std::vector<uint64_t>> expired_leases(uint64_t now_ms, size_t limit) const override;
  Index applied_index() const override;
  pb::ConfState conf_state() const override;
  Status bootstrap(const pb::ConfState& voters) override;
  Status compact(Index index) override;
  uint64_t log_size_bytes() const override;
  Result<pb::SnapshotMetadata> stream_snapshot(
      const std::function<Status(std::string_view chunk)>& sink) const override;

  raft::InitialState initial_state() const override;
  Result<std::vector<pb::Entry>> entries(Index lo, Index hi, uint64_t max_size_bytes) const override;
  Result<Term> term(Index i) const override;
  Index first_index() const override;
  Index last_index() const override;
  Result<pb::Snapshot> snapshot() const override;

  void set_auto_sync(bool is_on);
  void sync();
  void crash();

 private:
  struct State {
    raft::MemoryLogStorage log;
    kv::MemKvTables tables;
    ApplyState applied;
  };

  mutable std::mutex mu_;
  std::unique_ptr<State> current_;
  std::unique_ptr<State> durable_;  // only with auto_sync off
  // With auto_sync on: the state as of the last synced write, kept only while later writes
  // skipped their sync (what a crash returns to).
  std::unique_ptr<State> last_synced_;
  bool is_auto_sync_ = true;
};

}  // namespace aspen::storage
