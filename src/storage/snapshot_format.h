// Internal to src/storage: building and reading the chunked snapshot format shared by
// LmdbStore and MemStore.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "aspen/kv.pb.h"
#include "core/error.h"
#include "core/hlc.h"
#include "kv/tables.h"
#include "storage/store.h"

namespace aspen::storage {

inline constexpr size_t kSnapshotChunkBytes = size_t{1} << 20;

// Accumulates records and emits a chunk to `sink` whenever one reaches kSnapshotChunkBytes.
class ChunkWriter {
 public:
  explicit ChunkWriter(const std::function<Status(std::string_view)>& sink) : sink_(sink) {}
  Status add_kv(const kvpb::KeyValue& kv);
  Status add_lease(const kvpb::Lease& lease);
  Status add_lease_key(uint64_t lease_id, std::string_view key);
  Status add_history(const kvpb::HistoryEntry& entry);
  // Every history entry of `tables`, page by page (memory stays bounded).
  Status add_all_history(kv::KvTables& tables);
  // The largest applied stamp (ApplyState::hlc); call before adding records, so it travels
  // in the first chunk.
  void set_applied_hlc(const std::optional<HlcTimestamp>& t);
  Status finish();

 private:
  Status maybe_flush(size_t added_bytes);
  const std::function<Status(std::string_view)>& sink_;
  kvpb::SnapshotChunk chunk_;
  size_t bytes_ = 0;
};

// Parses snapshot data (length-prefixed chunks) and replays every record into `tables`.
// Returns the largest applied stamp the snapshot carries (nullopt: none, as from a version
// before snapshots carried it).
Result<std::optional<HlcTimestamp>> load_snapshot_data(std::string_view data, kv::KvTables& tables);
// The same, reading the data from a file chunk by chunk (never all of it in memory).
Result<std::optional<HlcTimestamp>> load_snapshot_file(const std::string& path, kv::KvTables& tables);
// The snapshot data of `batch`: from its file if it names one, else inline.
Result<std::optional<HlcTimestamp>> load_batch_snapshot(const WriteBatch& batch, kv::KvTables& tables);

}  // namespace aspen::storage
