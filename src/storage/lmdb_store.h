// LmdbStore: the production Store: the Raft log and hard state in a Wal (`<dir>/wal/`,
// append-only segments, one fdatasync per batch) and the state machine in one LMDB
// environment (`<dir>/data.mdb`).
//
// LMDB's named databases: `meta` (membership, applied and compacted positions), `kv` (key ->
// KeyValue), `leases` and `lease_keys`; `log` is read once, to move a store written by an
// earlier version (log and hard state in LMDB) into the Wal. apply() is one LMDB write
// transaction that skips LMDB's meta-page flush (MDB_NOMETASYNC: an OS crash may undo the
// last applies, which the Wal replays); a snapshot install and a compaction are fully
// synced. Reads use read-only transactions and may run on any thread concurrently with the
// writer.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "core/limits.h"
#include "storage/apply_entries.h"
#include "storage/store.h"
#include "storage/wal.h"

struct MDB_env;
struct MDB_txn;

namespace aspen::storage {

struct LmdbOptions {
  std::string dir;  // created (mode 0700) if missing
  // The most the database may grow to. LMDB reserves address space, not disk.
  uint64_t map_size_bytes = uint64_t{8} << 30;
  // Size of each preallocated log segment.
  uint64_t wal_segment_size_bytes = uint64_t{64} << 20;
  // The largest snapshot snapshot() builds in memory.
  uint64_t max_snapshot_bytes = limits::kMaxSnapshotSizeBytes;
  // snapshot() (what the Raft core puts into a MsgSnap) carries only the metadata: the
  // caller sends the data itself with stream_snapshot, never holding it all in memory. The
  // node does this; its snapshots are then bounded by disk, not max_snapshot_bytes.
  bool is_snapshot_data_streamed = false;
};

class LmdbStore final : public Store {
 public:
  // Opens or creates the store. Corruption if the files are not a valid Aspen store.
  static Result<std::unique_ptr<LmdbStore>> open(const LmdbOptions& options);
  ~LmdbStore() override;

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

  // Size of the data file and the log segments on disk.
  uint64_t file_size_bytes() const;

  struct Dbis;  // internal

 private:
  LmdbStore(MDB_env* env, std::string dir, const LmdbOptions& options);
  // The applied position and membership as of `txn`: a snapshot's metadata.
  Result<pb::SnapshotMetadata> snapshot_metadata(MDB_txn* txn) const;
  Status load_cache();
  // Moves a log and hard state kept in LMDB by an earlier version into the Wal.
  Status migrate_log_to_wal(bool is_wal_new);
  Status install_snapshot(const WriteBatch& batch);

  MDB_env* env_;
  std::string dir_;
  uint64_t max_snapshot_bytes_;
  bool is_snapshot_data_streamed_;
  std::unique_ptr<Dbis> dbi_;

  std::unique_ptr<Wal> wal_;

  // Cache of meta, updated after each successful commit; guarded for concurrent readers.
  mutable std::mutex mu_;
  ApplyState applied_;         // [mu_]
  Index compacted_index_ = 0;  // [mu_]
  Term compacted_term_ = 0;    // [mu_]
};

}  // namespace aspen::storage
