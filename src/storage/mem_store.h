// MemStore: the Store in memory, for tests and the simulator.
//
// Crash semantics, as LmdbStore's (see store.h): with auto_sync on (the default) what
// write_log() wrote is durable when it returns, except a hard state that may_skip_sync
// allowed to skip the sync (crash() returns to the last synced hard state). Applies are
// undone by crash() back to the last point the state machine was synced: a snapshot
// install, a compaction, or an apply of a membership change (LmdbStore's MDB_NOMETASYNC
// commits, modelled at their most pessimistic). With auto_sync off, writes are visible but
// not durable until sync(); crash() throws away everything written since the last sync, as
// a power failure would drop an unsynced page cache.
#pragma once

#include <memory>
#include <mutex>
#include <optional>

#include "kv/mem_tables.h"
#include "raft/log_storage.h"
#include "storage/apply_entries.h"
#include "storage/store.h"

namespace aspen::storage {

class MemStore final : public Store {
 public:
  MemStore();

  Status write_log(const WriteBatch& batch) override;
  Result<std::vector<AppliedEntry>> apply(const WriteBatch& batch) override;
  Result<kvpb::RangeResult> range(const kvpb::RangeRequest& request) const override;
  Result<std::vector<kvpb::Lease>> list_leases(uint64_t after_id, size_t limit) const override;
  Result<std::vector<uint64_t>> expired_leases(uint64_t now_ms, size_t limit) const override;
  Result<kv::HistoryPage> read_history(Index revision, uint32_t position, size_t limit, size_t max_bytes,
                                       bool with_prev) const override;
  Result<std::optional<Index>> history_retention_target(uint64_t now_ms, uint64_t keep_revisions,
                                                        uint64_t max_age_ms) const override;
  Index applied_index() const override;
  std::optional<HlcTimestamp> applied_hlc() const override;
  pb::ConfState conf_state() const override;
  Status bootstrap(const pb::ConfState& voters) override;
  Status compact(Index index) override;
  uint64_t log_size_bytes() const override;
  uint64_t state_size_bytes() const override;
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

  struct SmState {
    kv::MemKvTables tables;
    ApplyState applied;
  };
  void mark_sm_synced();  // [mu_]

  mutable std::mutex mu_;
  std::unique_ptr<State> current_;
  std::unique_ptr<State> durable_;  // only with auto_sync off
  // With auto_sync on, what a crash returns to: the state machine as of its last sync, kept
  // only while applies since then are unsynced; the hard state as of the last synced
  // write_log, kept only while later ones skipped their sync.
  std::unique_ptr<SmState> sm_synced_;
  std::optional<pb::HardState> hard_state_synced_;
  bool is_auto_sync_ = true;
};

}  // namespace aspen::storage
